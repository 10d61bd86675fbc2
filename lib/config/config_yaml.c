/*
 * lib/config/config_yaml.c - read a YAML config file with libyaml's
 * document API: nested mappings become dotted keys, every error names
 * FILE:LINE and the key.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <yaml.h>

#include "config_internal.h"
#include "internal.h"

#define MAX_FILE_BYTES (1024 * 1024)
#define MAX_KEY 128

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
		if ((rc = aeth__cfg_set_weight(w->cfg, scalar(k), scalar(v))) != 0)
			return aeth__error_wrap(rc, "%s:%lu", w->path, line_of(v));
	}
	if (w->cfg->nqueues == 0)
		return aeth__error_set(AETH_EINVALID,
				       "%s:%lu: key 'queue.weights': at least "
				       "one queue needed", w->path, line_of(map));
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
		if (strcmp(key, "queue.weights") == 0) {
			if ((rc = read_weights(w, v)) != 0)
				return rc;
			continue;
		}
		if (v->type == YAML_MAPPING_NODE) {
			if (!is_section(key))
				return unknown_key(w, k, key);
			if ((rc = walk(w, v, key)) != 0)
				return rc;
			continue;
		}
		if ((i = aeth__cfg_find(key)) < 0)
			return is_section(key)
				? aeth__error_set(AETH_EINVALID,
						  "%s:%lu: key '%s': expected a "
						  "mapping (a section), got a value",
						  w->path, line_of(v), key)
				: unknown_key(w, k, key);
		if (v->type != YAML_SCALAR_NODE)
			return aeth__error_set(AETH_EINVALID,
					       "%s:%lu: key '%s': expected a single "
					       "value, got a list", w->path,
					       line_of(v), key);
		if ((rc = aeth__cfg_set_index(w->cfg, i, scalar(v))) != 0)
			return aeth__error_wrap(rc, "%s:%lu", w->path, line_of(v));
	}
	return 0;
}

static int parse(aeth_config *cfg, FILE *f, const char *path)
{
	yaml_parser_t parser;
	yaml_document_t doc;
	yaml_node_t *root;
	walker w = {cfg, &doc, path};
	int rc = 0;

	if (!yaml_parser_initialize(&parser))
		return aeth__error_oom();
	yaml_parser_set_input_file(&parser, f);
	if (!yaml_parser_load(&parser, &doc)) {
		rc = aeth__error_set(AETH_EINVALID,
				     "%s:%lu:%lu: YAML syntax error: %s%s%s",
				     path,
				     (unsigned long)parser.problem_mark.line + 1,
				     (unsigned long)parser.problem_mark.column + 1,
				     parser.problem ? parser.problem : "unknown",
				     parser.context ? " " : "",
				     parser.context ? parser.context : "");
		yaml_parser_delete(&parser);
		return rc;
	}
	root = yaml_document_get_root_node(&doc);
	if (root && root->type != YAML_MAPPING_NODE &&
	    !(root->type == YAML_SCALAR_NODE && root->data.scalar.length == 0))
		rc = aeth__error_set(AETH_EINVALID,
				     "%s:%lu: expected a mapping of sections "
				     "(database:, redis:, queue:, vmm:, worker:, "
				     "logging:) at the top", path, line_of(root));
	else if (root && root->type == YAML_MAPPING_NODE)
		rc = walk(&w, root, "");
	yaml_document_delete(&doc);
	yaml_parser_delete(&parser);
	return rc;
}

int aeth__cfg_load_yaml(aeth_config *cfg, const char *path)
{
	struct stat st;
	FILE *f;
	int rc;

	f = fopen(path, "rb");
	if (!f)
		return aeth__error_errno(errno == ENOENT ? AETH_ENOTFOUND : AETH_EIO,
					 "cannot open config file '%s'", path);
	if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode) ||
	    st.st_size > MAX_FILE_BYTES) {
		fclose(f);
		return aeth__error_set(AETH_EINVALID,
				       "config file '%s' is not a regular file "
				       "of at most %d bytes", path, MAX_FILE_BYTES);
	}
	rc = parse(cfg, f, path);
	fclose(f);
	return rc;
}
