/*
 * lib/config/config.c - values, checks, environment overrides, getters.
 * Values are kept as checked text; the getters convert on the way out.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config_internal.h"
#include "internal.h"

static int refresh_derived(aeth_config *cfg);

int aeth__cfg_find(const char *key)
{
	for (size_t i = 0; i < aeth__cfg_nkeys; i++)
		if (strcmp(aeth__cfg_keys[i].key, key) == 0)
			return (int)i;
	return -1;
}

static bool parse_int(const char *s, int64_t *out)
{
	char *end;
	long long v;

	while (isspace((unsigned char)*s))
		s++;
	if (*s == '\0')
		return false;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0')
		return false;
	*out = v;
	return true;
}

static int parse_bool(const char *s)
{
	static const char *const yes[] = {"true", "yes", "on", "1"};
	static const char *const no[] = {"false", "no", "off", "0"};

	for (size_t i = 0; i < AETH__ARRAY_LEN(yes); i++) {
		if (strcasecmp(s, yes[i]) == 0)
			return 1;
		if (strcasecmp(s, no[i]) == 0)
			return 0;
	}
	return -1;
}

static bool enum_has(const char *choices, const char *v)
{
	size_t n = strlen(v);

	for (const char *p = choices; *p;) {
		const char *bar = strchr(p, '|');
		size_t len = bar ? (size_t)(bar - p) : strlen(p);

		if (len == n && n > 0 && strncmp(p, v, n) == 0)
			return true;
		p += len + (bar ? 1 : 0);
	}
	return false;
}

static int bad(const aeth__cfg_key *k, const char *what, const char *value)
{
	return aeth__error_set(AETH_EINVALID, "key '%s': expected %s, got '%.64s%s'",
			       k->key, what, value,
			       strlen(value) > 64 ? "..." : "");
}

/* "a, b,c" -> "a,b,c": items trimmed, none empty, no control bytes. */
static int canon_list(const aeth__cfg_key *k, const char *value, char **canon)
{
	aeth__buf b = AETH__BUF_INIT;

	for (const char *item = value; *item;) {
		size_t n = strcspn(item, ",");
		const char *p = item, *e = item + n;

		while (p < e && isspace((unsigned char)*p))
			p++;
		while (e > p && isspace((unsigned char)e[-1]))
			e--;
		for (const char *c = p; c < e; c++)
			if ((unsigned char)*c < 0x20 || *c == 0x7f) {
				aeth__buf_free(&b);
				return bad(k, "a list of names without control "
					   "characters", value);
			}
		if (e == p) {
			aeth__buf_free(&b);
			return bad(k, "a list without empty items", value);
		}
		aeth__buf_printf(&b, "%s%.*s", b.len ? "," : "", (int)(e - p), p);
		item += n + (item[n] == ',');
	}
	*canon = aeth__buf_detach(&b, NULL);
	return *canon ? 0 : AETH_ENOMEM;
}

/* Check `value` against key `k`; returns the canonical text or NULL. */
static int check(const aeth__cfg_key *k, const char *value, char **canon)
{
	int64_t v;
	int b;

	*canon = NULL;
	if (strlen(value) > AETH__CFG_MAX_VALUE)
		return aeth__error_set(AETH_EINVALID,
				       "key '%s': value longer than %d bytes",
				       k->key, AETH__CFG_MAX_VALUE);
	switch (k->type) {
	case AETH__CFG_INT:
		if (!parse_int(value, &v) || v < k->min || v > k->max) {
			char what[96];

			snprintf(what, sizeof(what), "an integer from %lld to %lld",
				 (long long)k->min, (long long)k->max);
			return bad(k, what, value);
		}
		*canon = aeth__sprintf("%lld", (long long)v);
		break;
	case AETH__CFG_BOOL:
		if ((b = parse_bool(value)) < 0)
			return bad(k, "true or false", value);
		*canon = aeth__strdup(b ? "true" : "false");
		break;
	case AETH__CFG_ENUM:
		if (!enum_has(k->choices, value)) {
			char what[128];

			snprintf(what, sizeof(what), "one of %s", k->choices);
			return bad(k, what, value);
		}
		*canon = aeth__strdup(value);
		break;
	case AETH__CFG_STRING:
		*canon = aeth__strdup(value);
		break;
	case AETH__CFG_LIST:
		return canon_list(k, value, canon);
	}
	return *canon ? 0 : AETH_ENOMEM;
}

int aeth__cfg_set_index(aeth_config *cfg, int i, const char *value)
{
	char *canon;
	int rc;

	if ((rc = check(&aeth__cfg_keys[i], value, &canon)) != 0)
		return rc;
	free(cfg->values[i]);
	cfg->values[i] = canon;
	return 0;
}

void aeth__cfg_clear_queues(aeth_config *cfg)
{
	for (size_t i = 0; i < cfg->nqueues; i++)
		free(cfg->queues[i].name);
	cfg->nqueues = 0;
}

static bool queue_name_ok(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > AETH__CFG_MAX_QUEUE_NAME)
		return false;
	for (const char *p = name; *p; p++)
		if (!isalnum((unsigned char)*p) && !strchr("_-:.", *p))
			return false;
	return true;
}

int aeth__cfg_set_weight(aeth_config *cfg, const char *name, const char *value)
{
	int64_t w;
	size_t i;

	if (!queue_name_ok(name))
		return aeth__error_set(AETH_EINVALID,
				       "queue name '%.80s': expected 1 to %d of "
				       "letters, digits, '_', '-', ':', '.'",
				       name, AETH__CFG_MAX_QUEUE_NAME);
	if (!parse_int(value, &w) || w < 1 || w > AETH__CFG_MAX_WEIGHT)
		return aeth__error_set(AETH_EINVALID,
				       "key 'queue.weights.%s': expected an "
				       "integer from 1 to %d, got '%.64s'",
				       name, AETH__CFG_MAX_WEIGHT, value);
	for (i = 0; i < cfg->nqueues; i++)
		if (strcmp(cfg->queues[i].name, name) == 0)
			break;
	if (i == cfg->nqueues) {
		if (i == AETH__CFG_MAX_QUEUES)
			return aeth__error_set(AETH_EINVALID,
					       "queue.weights: more than %d queues",
					       AETH__CFG_MAX_QUEUES);
		if (!(cfg->queues[i].name = aeth__strdup(name)))
			return AETH_ENOMEM;
		cfg->nqueues++;
	}
	cfg->queues[i].weight = (int)w;
	return 0;
}

/* "critical=6,high=5" replaces the whole map; on error the map is kept. */
static int set_weights_list(aeth_config *cfg, const char *list)
{
	char *copy = aeth__strdup(list), *save = NULL, *item;
	aeth__cfg_queue old[AETH__CFG_MAX_QUEUES];
	size_t nold = cfg->nqueues;
	int rc = 0;

	if (!copy)
		return AETH_ENOMEM;
	memcpy(old, cfg->queues, sizeof(old));
	cfg->nqueues = 0; /* the names now belong to old[] */
	for (item = strtok_r(copy, ",", &save); item && rc == 0;
	     item = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(item, '=');

		while (isspace((unsigned char)*item))
			item++;
		if (!eq) {
			rc = aeth__error_set(AETH_EINVALID,
					     "key 'queue.weights': expected "
					     "name=weight[,name=weight...], got '%.64s'",
					     item);
			break;
		}
		*eq = '\0';
		rc = aeth__cfg_set_weight(cfg, item, eq + 1);
	}
	free(copy);
	if (rc == 0 && cfg->nqueues == 0)
		rc = aeth__error_set(AETH_EINVALID,
				     "key 'queue.weights': at least one queue needed");
	if (rc != 0) { /* put the old map back */
		aeth__cfg_clear_queues(cfg);
		memcpy(cfg->queues, old, sizeof(old));
		cfg->nqueues = nold;
		return rc;
	}
	for (size_t i = 0; i < nold; i++)
		free(old[i].name);
	return 0;
}

int aeth__cfg_find_section(const char *key, const char **rest)
{
	for (size_t i = 0; i < aeth__cfg_nsections; i++) {
		size_t n = strlen(aeth__cfg_sections[i].prefix);

		if (!strncmp(key, aeth__cfg_sections[i].prefix, n) && key[n] == '.') {
			*rest = key + n + 1;
			return (int)i;
		}
	}
	return -1;
}

static bool entry_name_ok(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > AETH__CFG_MAX_ENTRY_NAME)
		return false;
	for (const char *p = name; *p; p++)
		if (!isalnum((unsigned char)*p) && *p != '_' && *p != '-')
			return false;
	return true;
}

static aeth__cfg_entry *find_entry(const aeth_config *cfg, size_t sec,
				   const char *name, size_t len)
{
	for (size_t i = 0; i < cfg->nentries; i++) {
		const aeth__cfg_entry *e = &cfg->entries[i];

		if (e->section == sec && strlen(e->name) == len &&
		    !strncmp(e->name, name, len))
			return (aeth__cfg_entry *)e;
	}
	return NULL;
}

static int field_index(const aeth__cfg_section *s, const char *field)
{
	for (size_t i = 0; i < s->nfields; i++)
		if (!strcmp(s->fields[i].key, field))
			return (int)i;
	return -1;
}

int aeth__cfg_set_entry(aeth_config *cfg, size_t sec, const char *name,
			const char *field, const char *value)
{
	const aeth__cfg_section *s = &aeth__cfg_sections[sec];
	aeth__cfg_entry *e;
	char *canon = NULL;
	int f = field_index(s, field), rc;

	if (!entry_name_ok(name))
		return aeth__error_set(AETH_EINVALID, "%s name '%.80s': expected 1 to "
				       "%d of letters, digits, '_' and '-'", s->what,
				       name, AETH__CFG_MAX_ENTRY_NAME);
	if (f < 0) {
		char known[256] = "";

		for (size_t i = 0; i < s->nfields; i++)
			snprintf(known + strlen(known), sizeof(known) - strlen(known),
				 "%s%s", i ? ", " : "", s->fields[i].key);
		return aeth__error_set(AETH_ENOTFOUND, "unknown key '%s.%s.%.40s' "
				       "(%s fields: %s)", s->prefix, name, field,
				       s->what, known);
	}
	if ((rc = check(&s->fields[f], value, &canon)) != 0)
		return aeth__error_wrap(rc, "%s '%s'", s->what, name);
	if (s->check && (rc = s->check(field, canon)) != 0) {
		free(canon);
		return aeth__error_wrap(rc, "%s '%s'", s->what, name);
	}
	e = find_entry(cfg, sec, name, strlen(name));
	if (!e) {
		if (cfg->nentries == AETH__CFG_MAX_ENTRIES) {
			free(canon);
			return aeth__error_set(AETH_EINVALID, "more than %d images, "
					       "network profiles and pools",
					       AETH__CFG_MAX_ENTRIES);
		}
		e = &cfg->entries[cfg->nentries];
		e->section = sec;
		e->name = aeth__strdup(name);
		e->values = calloc(s->nfields, sizeof(char *));
		for (size_t i = 0; e->values && i < s->nfields; i++)
			if (!(e->values[i] = aeth__strdup(s->fields[i].def)))
				break;
		if (!e->name || !e->values || !e->values[s->nfields - 1]) {
			free(canon);
			free(e->name);
			for (size_t i = 0; e->values && i < s->nfields; i++)
				free(e->values[i]);
			free(e->values);
			memset(e, 0, sizeof(*e));
			return aeth__error_oom();
		}
		cfg->nentries++;
	}
	free(e->values[f]);
	e->values[f] = canon;
	return 0;
}

/* "images.NAME.field" into section, name and field; -1 if not such. */
static int split_entry_key(const char *key, size_t *sec, char *name,
			   const char **field)
{
	const char *rest, *dot;
	int i = aeth__cfg_find_section(key, &rest);

	if (i < 0 || !(dot = strchr(rest, '.')) ||
	    (size_t)(dot - rest) > AETH__CFG_MAX_ENTRY_NAME)
		return -1;
	*sec = (size_t)i;
	memcpy(name, rest, (size_t)(dot - rest));
	name[dot - rest] = '\0';
	*field = dot + 1;
	return 0;
}

int aeth_config_names(char ***names_out, const aeth_config *cfg,
		      const char *section)
{
	size_t n = 0, sec;
	char **v;

	if (!cfg || !section || !names_out)
		return aeth__error_set(AETH_EINVALID, "aeth_config_names: NULL "
				       "argument");
	*names_out = NULL;
	for (sec = 0; sec < aeth__cfg_nsections; sec++)
		if (!strcmp(aeth__cfg_sections[sec].prefix, section))
			break;
	if (sec == aeth__cfg_nsections)
		return aeth__error_set(AETH_ENOTFOUND, "no section '%.80s' (sections: "
				       "images, network.profiles, pool)", section);
	if (!(v = calloc(cfg->nentries + 1, sizeof(char *))))
		return aeth__error_oom();
	for (size_t i = 0; i < cfg->nentries; i++)
		if (cfg->entries[i].section == sec &&
		    !(v[n++] = aeth__strdup(cfg->entries[i].name))) {
			aeth_strarray_free(v);
			return AETH_ENOMEM;
		}
	*names_out = v;
	return 0;
}

int aeth_config_set(aeth_config *cfg, const char *key, const char *value)
{
	int i = -1, rc;

	if (!cfg || !key || !value)
		return aeth__error_set(AETH_EINVALID,
				       "aeth_config_set: NULL argument");
	if (strcmp(key, "queue.weights") == 0)
		return set_weights_list(cfg, value);
	if (strncmp(key, "queue.weights.", 14) == 0)
		return aeth__cfg_set_weight(cfg, key + 14, value);
	{
		char name[AETH__CFG_MAX_ENTRY_NAME + 1];
		const char *field;
		size_t sec;

		if (split_entry_key(key, &sec, name, &field) == 0)
			return aeth__cfg_set_entry(cfg, sec, name, field, value);
	}
	if ((i = aeth__cfg_find(key)) < 0)
		return aeth__error_set(AETH_ENOTFOUND,
				       "unknown configuration key '%.80s' "
				       "(see docs/config.md)", key);
	if ((rc = aeth__cfg_set_index(cfg, i, value)) != 0)
		return rc;
	return refresh_derived(cfg);
}

/* AETH_ + the key upper-cased with '.' as '_'. */
static void env_name(const char *key, char *out, size_t size)
{
	size_t n = (size_t)snprintf(out, size, "AETH_");

	for (const char *p = key; *p && n + 1 < size; p++)
		out[n++] = *p == '.' ? '_' : (char)toupper((unsigned char)*p);
	out[n] = '\0';
}

static int apply_env(aeth_config *cfg)
{
	char name[128];
	const char *v;
	int rc;

	for (size_t i = 0; i < aeth__cfg_nkeys; i++) {
		env_name(aeth__cfg_keys[i].key, name, sizeof(name));
		v = getenv(name);
		if (!v)
			continue;
		if ((rc = aeth__cfg_set_index(cfg, (int)i, v)) != 0)
			return aeth__error_wrap(rc, "environment variable %s",
						name);
	}
	v = getenv("AETH_QUEUE_WEIGHTS");
	if (v && (rc = set_weights_list(cfg, v)) != 0)
		return aeth__error_wrap(rc, "environment variable AETH_QUEUE_WEIGHTS");
	return 0;
}

/* Defaults that depend on the environment; the same as lib/vm's. */
static char *computed_default(const char *key)
{
	const char *e;

	if (strcmp(key, "vmm.image_dir") == 0) {
		const char *home = getenv("HOME");

		if ((e = getenv("AETH_IMAGE_DIR")) && *e)
			return aeth__strdup(e);
		return aeth__sprintf("%s/.cache/aetherium/image",
				     home && *home ? home : "/root");
	}
	if (strcmp(key, "vmm.state_dir") == 0)
		return aeth__vmm_default_state_dir();
	return aeth__strdup("");
}

static int set_defaults(aeth_config *cfg)
{
	static const struct {
		const char *name;
		const char *weight;
	} queues[] = {{"critical", "6"}, {"high", "5"}, {"default", "3"},
		      {"low", "1"}};
	int rc;

	for (size_t i = 0; i < aeth__cfg_nkeys; i++) {
		const char *d = aeth__cfg_keys[i].def;

		cfg->values[i] = d ? aeth__strdup(d)
				   : computed_default(aeth__cfg_keys[i].key);
		if (!cfg->values[i])
			return AETH_ENOMEM;
	}
	for (size_t i = 0; i < AETH__ARRAY_LEN(queues); i++)
		if ((rc = aeth__cfg_set_weight(cfg, queues[i].name,
					       queues[i].weight)) != 0)
			return rc;
	return 0;
}

int aeth_config_load(aeth_config **out, const char *path)
{
	aeth_config *cfg;
	int rc;

	if (!out)
		return aeth__error_set(AETH_EINVALID, "aeth_config_load: out is NULL");
	*out = NULL;
	cfg = calloc(1, sizeof(*cfg));
	if (!cfg)
		return aeth__error_oom();
	cfg->values = calloc(aeth__cfg_nkeys, sizeof(char *));
	cfg->derived = calloc(aeth__cfg_nkeys, sizeof(char *));
	if (!cfg->values || !cfg->derived) {
		aeth_config_free(cfg);
		return aeth__error_oom();
	}
	rc = set_defaults(cfg);
	if (rc == 0 && path) {
		if (!(cfg->path = aeth__strdup(path)))
			rc = AETH_ENOMEM;
		else
			rc = aeth__cfg_load_yaml(cfg, path);
	}
	if (rc == 0)
		rc = apply_env(cfg);
	if (rc == 0)
		rc = refresh_derived(cfg);
	if (rc != 0) {
		aeth_config_free(cfg);
		return rc;
	}
	*out = cfg;
	return 0;
}

static int lookup(const aeth_config *cfg, const char *key, int *index)
{
	if (!cfg || !key)
		return aeth__error_set(AETH_EINVALID, "config getter: NULL argument");
	if ((*index = aeth__cfg_find(key)) < 0)
		return aeth__error_set(AETH_ENOTFOUND,
				       "unknown configuration key '%.80s' "
				       "(see docs/config.md)", key);
	return 0;
}

/*
 * vmm.kernel/initrd/rootfs left empty mean "<vmm.image_dir>/<file>".
 * Computed after every change so that the getters only read.
 */
static int refresh_derived(aeth_config *cfg)
{
	static const struct {
		const char *key;
		const char *file;
	} files[] = {{"vmm.kernel", "vmlinux"},
		     {"vmm.initrd", "initrd.cpio"},
		     {"vmm.rootfs", "rootfs.ext4"}};
	const char *dir = cfg->values[aeth__cfg_find("vmm.image_dir")];

	for (size_t f = 0; f < AETH__ARRAY_LEN(files); f++) {
		int i = aeth__cfg_find(files[f].key);

		free(cfg->derived[i]);
		cfg->derived[i] = aeth__sprintf("%s/%s", dir, files[f].file);
		if (!cfg->derived[i])
			return AETH_ENOMEM;
	}
	return 0;
}

int aeth_config_get_string(const char **out, const aeth_config *cfg,
			   const char *key)
{
	char name[AETH__CFG_MAX_ENTRY_NAME + 1];
	const char *v, *field;
	size_t sec;
	int i = -1, rc;

	if (cfg && key && split_entry_key(key, &sec, name, &field) == 0) {
		const aeth__cfg_section *s = &aeth__cfg_sections[sec];
		const aeth__cfg_entry *e = find_entry(cfg, sec, name, strlen(name));
		int f = field_index(s, field);

		if (!e || f < 0)
			return aeth__error_set(AETH_ENOTFOUND, "no %s '%s' with a "
					       "field '%.40s' in the configuration",
					       s->what, name, field);
		*out = e->values[f];
		return 0;
	}
	if ((rc = lookup(cfg, key, &i)) != 0)
		return rc;
	v = cfg->values[i];
	if (*v == '\0' && cfg->derived[i])
		v = cfg->derived[i];
	*out = v;
	return 0;
}

int aeth_config_get_int(int64_t *out, const aeth_config *cfg, const char *key)
{
	int i = -1, rc;

	if ((rc = lookup(cfg, key, &i)) != 0)
		return rc;
	if (aeth__cfg_keys[i].type != AETH__CFG_INT)
		return aeth__error_set(AETH_EINVALID,
				       "configuration key '%s' is not an integer",
				       key);
	return parse_int(cfg->values[i], out) ? 0 : AETH_EINVALID;
}

int aeth_config_get_bool(bool *out, const aeth_config *cfg, const char *key)
{
	int i = -1, rc;

	if ((rc = lookup(cfg, key, &i)) != 0)
		return rc;
	if (aeth__cfg_keys[i].type != AETH__CFG_BOOL)
		return aeth__error_set(AETH_EINVALID,
				       "configuration key '%s' is not a boolean",
				       key);
	*out = parse_bool(cfg->values[i]) == 1;
	return 0;
}

size_t aeth_config_queue_count(const aeth_config *cfg)
{
	return cfg ? cfg->nqueues : 0;
}

int aeth_config_queue_get(const char **name, int *weight,
			  const aeth_config *cfg, size_t index)
{
	if (!cfg || index >= cfg->nqueues)
		return aeth__error_set(AETH_EINVALID,
				       "queue index %zu out of range (%zu queues)",
				       index, cfg ? cfg->nqueues : 0);
	if (name)
		*name = cfg->queues[index].name;
	if (weight)
		*weight = cfg->queues[index].weight;
	return 0;
}

int aeth_config_dup(aeth_config **out, const aeth_config *cfg)
{
	aeth_config *c;
	int rc = 0;

	if (!out || !cfg)
		return aeth__error_set(AETH_EINVALID, "aeth_config_dup: NULL argument");
	*out = NULL;
	if ((rc = aeth_config_load(&c, NULL)) != 0) /* defaults, then overwritten */
		return rc;
	for (size_t i = 0; i < aeth__cfg_nkeys && rc == 0; i++) {
		free(c->values[i]);
		if (!(c->values[i] = aeth__strdup(cfg->values[i])))
			rc = AETH_ENOMEM;
	}
	aeth__cfg_clear_queues(c);
	for (size_t i = 0; i < cfg->nqueues && rc == 0; i++) {
		char w[16];

		snprintf(w, sizeof(w), "%d", cfg->queues[i].weight);
		rc = aeth__cfg_set_weight(c, cfg->queues[i].name, w);
	}
	for (size_t i = 0; i < cfg->nentries && rc == 0; i++) {
		const aeth__cfg_entry *e = &cfg->entries[i];
		const aeth__cfg_section *s = &aeth__cfg_sections[e->section];

		for (size_t f = 0; f < s->nfields && rc == 0; f++)
			rc = aeth__cfg_set_entry(c, e->section, e->name,
						 s->fields[f].key, e->values[f]);
	}
	if (rc == 0 && cfg->path && !(c->path = aeth__strdup(cfg->path)))
		rc = AETH_ENOMEM;
	if (rc == 0)
		rc = refresh_derived(c);
	if (rc != 0) {
		aeth_config_free(c);
		return rc;
	}
	*out = c;
	return 0;
}

const char *aeth_config_path(const aeth_config *cfg)
{
	return cfg ? cfg->path : NULL;
}

void aeth_config_free(aeth_config *cfg)
{
	if (!cfg)
		return;
	for (size_t i = 0; i < aeth__cfg_nkeys; i++) {
		if (cfg->values)
			free(cfg->values[i]);
		if (cfg->derived)
			free(cfg->derived[i]);
	}
	free(cfg->values);
	free(cfg->derived);
	aeth__cfg_clear_queues(cfg);
	for (size_t i = 0; i < cfg->nentries; i++) {
		for (size_t f = 0; f < aeth__cfg_sections[cfg->entries[i].section].nfields;
		     f++)
			free(cfg->entries[i].values[f]);
		free(cfg->entries[i].values);
		free(cfg->entries[i].name);
	}
	free(cfg->path);
	free(cfg);
}
