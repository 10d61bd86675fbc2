/*
 * lib/config/config_yaml.c - read a YAML config file with libyaml's
 * document API: nested mappings become dotted keys, every error names
 * FILE:LINE and the key.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <yaml.h>

#include "config_internal.h"
#include "internal.h"

#define MAX_FILE_BYTES (1024 * 1024)
#define MAX_KEY 128
/* libyaml 0.2.5's scanner is quadratic in the depth of flow collections
 * ("[[[[..."): 40k levels take seconds, 1 MB minutes. A config needs 2. */
#define MAX_FLOW_DEPTH 64

typedef struct {
	aeth_config *cfg;
	yaml_document_t *doc;
	const char *path;
} walker;

static unsigned long line_of(const yaml_node_t *n)
{
	return (unsigned long)n->start_mark.line + 1;
}

static const char *scalar(const yaml_node_t *n)
{
	return (const char *)n->data.scalar.value;
}

/* A scalar that C cannot hold whole: "a\0b" would silently become "a". */
static bool has_nul(const yaml_node_t *n)
{
	return strlen(scalar(n)) != n->data.scalar.length;
}

static const char *kind_of(const yaml_node_t *n)
{
	switch (n->type) {
	case YAML_MAPPING_NODE:
		return "a mapping";
	case YAML_SEQUENCE_NODE:
		return "a list";
	default:
		return n->data.scalar.length ? "a value" : "nothing";
	}
}

/* Plain "key:" with nothing after it (YAML null). */
static bool is_empty(const yaml_node_t *n)
{
	return n->type == YAML_SCALAR_NODE && n->data.scalar.length == 0 &&
	       n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
}

static int nul_error(walker *w, const yaml_node_t *at, const char *key)
{
	return aeth__error_set(AETH_EINVALID,
			       "%s:%lu: key '%s': expected text without NUL "
			       "characters, got a \\0 in it", w->path,
			       line_of(at), key);
}

/* Pair `p` of `map` repeats the key of an earlier pair (YAML says keys are
 * unique; libyaml does not check, and "last wins" hides mistakes). */
static bool duplicate(walker *w, const yaml_node_t *map,
		      const yaml_node_pair_t *p)
{
	const yaml_node_t *k = yaml_document_get_node(w->doc, p->key);

	for (const yaml_node_pair_t *q = map->data.mapping.pairs.start; q < p; q++) {
		const yaml_node_t *o = yaml_document_get_node(w->doc, q->key);

		if (o && o->type == YAML_SCALAR_NODE &&
		    o->data.scalar.length == k->data.scalar.length &&
		    memcmp(o->data.scalar.value, k->data.scalar.value,
			   k->data.scalar.length) == 0)
			return true;
	}
	return false;
}

static int duplicate_error(walker *w, const yaml_node_t *at, const char *key)
{
	return aeth__error_set(AETH_EINVALID,
			       "%s:%lu: key '%s': duplicate key (given twice "
			       "in the same mapping); keep one", w->path,
			       line_of(at), key);
}

/* "backend, accel, ..." : the keys directly under `section.`. */
static void known_under(const char *section, char *out, size_t size)
{
	size_t plen = strlen(section), n = 0;

	out[0] = '\0';
	for (size_t i = 0; i < aeth__cfg_nkeys && n + 1 < size; i++) {
		const char *k = aeth__cfg_keys[i].key;

		if (plen && (strncmp(k, section, plen) != 0 || k[plen] != '.'))
			continue;
		n += (size_t)snprintf(out + n, size - n, "%s%s", n ? ", " : "",
				      plen ? k + plen + 1 : k);
		if (n >= size)
			n = size - 1;
	}
}

static bool is_section(const char *prefix)
{
	size_t plen = strlen(prefix);

	if (strcmp(prefix, "queue.weights") == 0)
		return true;
	for (size_t i = 0; i < aeth__cfg_nsections; i++)
		if (!strncmp(aeth__cfg_sections[i].prefix, prefix, plen) &&
		    aeth__cfg_sections[i].prefix[plen] == '.')
			return true;
	for (size_t i = 0; i < aeth__cfg_nkeys; i++)
		if (strncmp(aeth__cfg_keys[i].key, prefix, plen) == 0 &&
		    aeth__cfg_keys[i].key[plen] == '.')
			return true;
	return false;
}

static int unknown_key(walker *w, const yaml_node_t *at, const char *key)
{
	char section[MAX_KEY], known[512];
	const char *dot = strrchr(key, '.');
	size_t slen = dot ? (size_t)(dot - key) : 0;

	memcpy(section, key, slen);
	section[slen] = '\0';
	known_under(section, known, sizeof(known));
	return aeth__error_set(AETH_EINVALID,
			       "%s:%lu: unknown key '%s'; expected one of: %s",
			       w->path, line_of(at), key, known);
}

static int read_weights(walker *w, const yaml_node_t *map)
{
	int rc;

	if (map->type != YAML_MAPPING_NODE)
		return aeth__error_set(AETH_EINVALID,
				       "%s:%lu: key 'queue.weights': expected a "
				       "mapping of queue name to weight "
				       "(critical: 6)", w->path, line_of(map));
	aeth__cfg_clear_queues(w->cfg);
	for (yaml_node_pair_t *p = map->data.mapping.pairs.start;
	     p < map->data.mapping.pairs.top; p++) {
		yaml_node_t *k = yaml_document_get_node(w->doc, p->key);
		yaml_node_t *v = yaml_document_get_node(w->doc, p->value);

		if (!k || !v || k->type != YAML_SCALAR_NODE ||
		    v->type != YAML_SCALAR_NODE)
			return aeth__error_set(AETH_EINVALID,
					       "%s:%lu: key 'queue.weights': "
					       "expected name: weight pairs",
					       w->path, line_of(k ? k : map));
		if (has_nul(k) || has_nul(v))
			return nul_error(w, k, "queue.weights");
		if (duplicate(w, map, p)) {
			char key[MAX_KEY + 16];

			snprintf(key, sizeof(key), "queue.weights.%.*s", MAX_KEY,
				 scalar(k));
			return duplicate_error(w, k, key);
		}
		if ((rc = aeth__cfg_set_weight(w->cfg, scalar(k), scalar(v))) != 0)
			return aeth__error_wrap(rc, "%s:%lu", w->path, line_of(v));
	}
	if (w->cfg->nqueues == 0)
		return aeth__error_set(AETH_EINVALID,
				       "%s:%lu: key 'queue.weights': at least "
				       "one queue needed", w->path, line_of(map));
	return 0;
}

/*
 * The text of a value: a scalar as it is; for a list key a sequence of
 * scalars joined with ','. malloc'd into *out, or an error naming key.
 */
static int value_text(walker *w, const yaml_node_t *v, const char *key,
		      bool list, char **out)
{
	aeth__buf b = AETH__BUF_INIT;

	*out = NULL;
	if (v->type == YAML_SCALAR_NODE) {
		if (has_nul(v))
			return nul_error(w, v, key);
		*out = aeth__strdup(scalar(v));
		return *out ? 0 : AETH_ENOMEM;
	}
	if (!list || v->type != YAML_SEQUENCE_NODE)
		return aeth__error_set(AETH_EINVALID, "%s:%lu: key '%s': expected "
				       "%s, got %s", w->path, line_of(v), key,
				       list ? "a list of values" : "a single value",
				       kind_of(v));
	for (yaml_node_item_t *i = v->data.sequence.items.start;
	     i < v->data.sequence.items.top; i++) {
		yaml_node_t *it = yaml_document_get_node(w->doc, *i);

		if (!it || it->type != YAML_SCALAR_NODE || has_nul(it) ||
		    strchr(scalar(it), ',')) {
			aeth__buf_free(&b);
			return aeth__error_set(AETH_EINVALID, "%s:%lu: key '%s': "
					       "expected a list of single values "
					       "without commas", w->path,
					       line_of(it ? it : v), key);
		}
		aeth__buf_printf(&b, "%s%s", b.len ? "," : "", scalar(it));
	}
	*out = aeth__buf_detach(&b, NULL);
	return *out ? 0 : AETH_ENOMEM;
}

/* "images:" / "network.profiles:": NAME: {field: value, ...} */
static int read_entries(walker *w, const yaml_node_t *map, size_t sec,
			const char *key)
{
	const aeth__cfg_section *s = &aeth__cfg_sections[sec];
	int rc;

	if (is_empty(map))
		return 0;
	if (map->type != YAML_MAPPING_NODE)
		return aeth__error_set(AETH_EINVALID, "%s:%lu: key '%s': expected a "
				       "mapping of %s names to their settings",
				       w->path, line_of(map), key, s->what);
	for (yaml_node_pair_t *p = map->data.mapping.pairs.start;
	     p < map->data.mapping.pairs.top; p++) {
		yaml_node_t *k = yaml_document_get_node(w->doc, p->key);
		yaml_node_t *v = yaml_document_get_node(w->doc, p->value);
		char name[2 * MAX_KEY];

		if (!k || !v || k->type != YAML_SCALAR_NODE || has_nul(k))
			return aeth__error_set(AETH_EINVALID, "%s:%lu: key '%s': "
					       "expected %s names", w->path,
					       line_of(k ? k : map), key, s->what);
		snprintf(name, sizeof(name), "%.*s.%.*s", MAX_KEY / 2, key,
			 AETH__CFG_MAX_ENTRY_NAME + 8, scalar(k));
		if (duplicate(w, map, p))
			return duplicate_error(w, k, name);
		if (v->type != YAML_MAPPING_NODE)
			return aeth__error_set(AETH_EINVALID, "%s:%lu: key '%s': "
					       "expected a mapping of its settings, "
					       "got %s", w->path, line_of(v), name,
					       kind_of(v));
		for (yaml_node_pair_t *q = v->data.mapping.pairs.start;
		     q < v->data.mapping.pairs.top; q++) {
			yaml_node_t *fk = yaml_document_get_node(w->doc, q->key);
			yaml_node_t *fv = yaml_document_get_node(w->doc, q->value);
			char full[MAX_KEY * 3];
			bool list = false;
			char *text;

			if (!fk || !fv || fk->type != YAML_SCALAR_NODE || has_nul(fk))
				return aeth__error_set(AETH_EINVALID, "%s:%lu: key "
						       "'%s': expected plain keys",
						       w->path, line_of(v), name);
			snprintf(full, sizeof(full), "%s.%s", name, scalar(fk));
			if (duplicate(w, v, q))
				return duplicate_error(w, fk, full);
			for (size_t f = 0; f < s->nfields; f++)
				if (!strcmp(s->fields[f].key, scalar(fk)))
					list = s->fields[f].type == AETH__CFG_LIST;
			if ((rc = value_text(w, fv, full, list, &text)) != 0)
				return rc;
			rc = aeth__cfg_set_entry(w->cfg, sec, scalar(k), scalar(fk),
						 text);
			free(text);
			if (rc != 0)
				return aeth__error_wrap(rc, "%s:%lu", w->path,
							line_of(fk));
		}
	}
	return 0;
}

static int walk(walker *w, const yaml_node_t *map, const char *prefix)
{
	int rc;

	for (yaml_node_pair_t *p = map->data.mapping.pairs.start;
	     p < map->data.mapping.pairs.top; p++) {
		yaml_node_t *k = yaml_document_get_node(w->doc, p->key);
		yaml_node_t *v = yaml_document_get_node(w->doc, p->value);
		char key[MAX_KEY];
		int i;

		if (!k || !v || k->type != YAML_SCALAR_NODE)
			return aeth__error_set(AETH_EINVALID,
					       "%s:%lu: expected a plain key",
					       w->path, line_of(k ? k : map));
		if ((size_t)snprintf(key, sizeof(key), "%s%s%s", prefix,
				     *prefix ? "." : "", scalar(k)) >= sizeof(key))
			return aeth__error_set(AETH_EINVALID,
					       "%s:%lu: key too long", w->path,
					       line_of(k));
		if (has_nul(k))
			return nul_error(w, k, key);
		if (duplicate(w, map, p))
			return duplicate_error(w, k, key);
		if (strcmp(key, "queue.weights") == 0) {
			if ((rc = read_weights(w, v)) != 0)
				return rc;
			continue;
		}
		for (size_t sec = 0; sec < aeth__cfg_nsections; sec++)
			if (!strcmp(key, aeth__cfg_sections[sec].prefix)) {
				if ((rc = read_entries(w, v, sec, key)) != 0)
					return rc;
				goto next;
			}
		i = aeth__cfg_find(key);
		if (i < 0 && is_section(key)) {
			if (is_empty(v)) /* "logging:" with its keys commented out */
				continue;
			if (v->type != YAML_MAPPING_NODE)
				return aeth__error_set(AETH_EINVALID,
						       "%s:%lu: key '%s': expected a "
						       "mapping (a section), got %s",
						       w->path, line_of(v), key,
						       kind_of(v));
			if ((rc = walk(w, v, key)) != 0)
				return rc;
			continue;
		}
		if (i < 0)
			return unknown_key(w, k, key);
		{
			char *text;

			if ((rc = value_text(w, v, key, aeth__cfg_keys[i].type ==
					     AETH__CFG_LIST, &text)) != 0)
				return rc;
			rc = aeth__cfg_set_index(w->cfg, i, text);
			free(text);
			if (rc != 0)
				return aeth__error_wrap(rc, "%s:%lu", w->path,
							line_of(v));
		}
next:;
	}
	return 0;
}

/* Line (1-based) of byte `offset` of the text. */
static unsigned long line_at(const char *text, size_t len, size_t offset)
{
	unsigned long line = 1;

	for (size_t i = 0; i < offset && i < len; i++)
		line += text[i] == '\n';
	return line;
}

static int syntax_error(const yaml_parser_t *parser, const char *text,
			size_t len, const char *path)
{
	unsigned long line = (unsigned long)parser->problem_mark.line + 1;
	unsigned long col = (unsigned long)parser->problem_mark.column + 1;

	/* reader errors (bad UTF-8...) only know the byte offset */
	if (parser->error == YAML_READER_ERROR) {
		line = line_at(text, len, parser->problem_offset);
		return aeth__error_set(AETH_EINVALID,
				       "%s:%lu: YAML syntax error: %s (byte %zu); "
				       "the file must be UTF-8 text", path, line,
				       parser->problem ? parser->problem : "unknown",
				       parser->problem_offset);
	}
	return aeth__error_set(AETH_EINVALID, "%s:%lu:%lu: YAML syntax error: %s%s%s",
			       path, line, col,
			       parser->problem ? parser->problem : "unknown",
			       parser->context ? " " : "",
			       parser->context ? parser->context : "");
}

/*
 * Refuse flow collections nested deeper than MAX_FLOW_DEPTH before libyaml
 * sees them. Brackets in quoted or plain scalars count too: a real config
 * never has 64 of them open.
 */
static int check_depth(const char *text, size_t len, const char *path)
{
	long depth = 0;

	for (size_t i = 0; i < len; i++) {
		if (text[i] == '[' || text[i] == '{')
			depth++;
		else if ((text[i] == ']' || text[i] == '}') && depth > 0)
			depth--;
		if (depth > MAX_FLOW_DEPTH)
			return aeth__error_set(AETH_EINVALID,
					       "%s:%lu: [ ] or { } nested more than "
					       "%d deep; a config file needs 2",
					       path, line_at(text, len, i),
					       MAX_FLOW_DEPTH);
	}
	return 0;
}

static int check_root(walker *w, yaml_node_t *root)
{
	if (!root || is_empty(root))
		return 0;
	if (root->type != YAML_MAPPING_NODE)
		return aeth__error_set(AETH_EINVALID,
				       "%s:%lu: expected a mapping of sections "
				       "(database:, redis:, queue:, vmm:, worker:, "
				       "logging:) at the top, got %s", w->path,
				       line_of(root), kind_of(root));
	return walk(w, root, "");
}

/* One document only: a second one ("---") would be silently ignored. */
static int check_single(yaml_parser_t *parser, const char *text, size_t len,
			const char *path)
{
	yaml_document_t next;
	yaml_node_t *root;
	int rc = 0;

	if (!yaml_parser_load(parser, &next))
		return syntax_error(parser, text, len, path);
	root = yaml_document_get_root_node(&next);
	if (root)
		rc = aeth__error_set(AETH_EINVALID,
				     "%s:%lu: a second YAML document; expected "
				     "one (remove the '---' line and merge the "
				     "settings)", path,
				     (unsigned long)next.start_mark.line + 1);
	yaml_document_delete(&next);
	return rc;
}

static int parse(aeth_config *cfg, const char *text, size_t len,
		 const char *path)
{
	yaml_parser_t parser;
	yaml_document_t doc;
	walker w = {cfg, &doc, path};
	int rc;

	if ((rc = check_depth(text, len, path)) != 0)
		return rc;
	if (!yaml_parser_initialize(&parser))
		return aeth__error_oom();
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	if (!yaml_parser_load(&parser, &doc)) {
		rc = syntax_error(&parser, text, len, path);
		yaml_parser_delete(&parser);
		return rc;
	}
	rc = check_single(&parser, text, len, path);
	if (rc == 0)
		rc = check_root(&w, yaml_document_get_root_node(&doc));
	yaml_document_delete(&doc);
	yaml_parser_delete(&parser);
	return rc;
}

/* The whole file, at most MAX_FILE_BYTES (checked while reading: a file
 * may grow after fstat). */
static int read_all(const char *path, char **text, size_t *len)
{
	struct stat st;
	char *buf = NULL;
	size_t n = 0;
	FILE *f;
	int rc = 0;

	*text = NULL;
	f = fopen(path, "rb");
	if (!f)
		return aeth__error_errno(errno == ENOENT ? AETH_ENOTFOUND : AETH_EIO,
					 "cannot open config file '%s'", path);
	if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode) ||
	    st.st_size > MAX_FILE_BYTES)
		goto too_big;
	if (!(buf = malloc(MAX_FILE_BYTES + 2))) {
		fclose(f);
		return aeth__error_oom();
	}
	n = fread(buf, 1, MAX_FILE_BYTES + 1, f);
	if (ferror(f)) {
		rc = aeth__error_errno(AETH_EIO, "cannot read config file '%s'", path);
		goto out;
	}
	if (n > MAX_FILE_BYTES)
		goto too_big;
	buf[n] = '\0';
	*text = buf;
	*len = n;
	buf = NULL;
	goto out;
too_big:
	rc = aeth__error_set(AETH_EINVALID,
			     "config file '%s' is not a regular file "
			     "of at most %d bytes", path, MAX_FILE_BYTES);
out:
	free(buf);
	fclose(f);
	return rc;
}

int aeth__cfg_load_yaml(aeth_config *cfg, const char *path)
{
	char *text;
	size_t len = 0;
	int rc;

	if ((rc = read_all(path, &text, &len)) != 0)
		return rc;
	rc = parse(cfg, text, len, path);
	free(text);
	return rc;
}
