/*
 * lib/config/config_internal.h - the key table and the parts of
 * aeth_config shared by config.c (values, env) and yaml.c (the file).
 */
#ifndef AETH_CONFIG_INTERNAL_H
#define AETH_CONFIG_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "aetherium/config.h"

typedef enum {
	AETH__CFG_STRING,
	AETH__CFG_INT,
	AETH__CFG_BOOL,
	AETH__CFG_ENUM,
	AETH__CFG_LIST   /* items joined with ',' (a YAML list, or "a,b") */
} aeth__cfg_type;

typedef struct {
	const char *key;
	aeth__cfg_type type;
	const char *def;     /* default as text; NULL = computed (see config.c) */
	int64_t min, max;    /* AETH__CFG_INT */
	const char *choices; /* AETH__CFG_ENUM: "a|b|c" */
} aeth__cfg_key;

extern const aeth__cfg_key aeth__cfg_keys[];
extern const size_t aeth__cfg_nkeys;

/*
 * A section of named entries, each with the same fields: "images.NAME.
 * kernel", "network.profiles.NAME.allow". Entries come from the file or
 * aeth_config_set() (not from the environment: a name is not a variable).
 */
typedef struct {
	const char *prefix;              /* "images" */
	const char *what;                /* "image", for messages */
	const aeth__cfg_key *fields;     /* key = the field name */
	size_t nfields;
	/* check a field's canonical value; 0 or AETH_EINVALID saying why */
	int (*check)(const char *field, const char *value);
} aeth__cfg_section;

extern const aeth__cfg_section aeth__cfg_sections[];
extern const size_t aeth__cfg_nsections;

#define AETH__CFG_MAX_ENTRIES 64
#define AETH__CFG_MAX_ENTRY_NAME 64

typedef struct {
	size_t section;  /* index in aeth__cfg_sections */
	char *name;
	char **values;   /* one per field; "" when unset */
} aeth__cfg_entry;

#define AETH__CFG_MAX_VALUE 4096
#define AETH__CFG_MAX_QUEUES 64
#define AETH__CFG_MAX_QUEUE_NAME 64
#define AETH__CFG_MAX_WEIGHT 1000

typedef struct {
	char *name;
	int weight;
} aeth__cfg_queue;

struct aeth_config {
	char **values;  /* one per aeth__cfg_keys entry */
	char **derived; /* cache for values computed from others */
	aeth__cfg_queue queues[AETH__CFG_MAX_QUEUES];
	size_t nqueues;
	aeth__cfg_entry entries[AETH__CFG_MAX_ENTRIES];
	size_t nentries;
	char *path;
};

/* The section whose prefix `key` starts with ("images.x.kernel" ->
 * images), with *rest pointing after "prefix."; -1 if none. */
int aeth__cfg_find_section(const char *key, const char **rest);

/* Set field `field` of entry `name` of section `sec` (the entry is made
 * when new), checked. */
int aeth__cfg_set_entry(aeth_config *cfg, size_t sec, const char *name,
			const char *field, const char *value);

/* Index of `key` in the table, or -1. */
int aeth__cfg_find(const char *key);

/*
 * Check `value` for key index `i` and store it. On failure returns
 * AETH_EINVALID with "key 'K': expected ..., got '...'" (the caller adds
 * where the value came from).
 */
int aeth__cfg_set_index(aeth_config *cfg, int i, const char *value);

/* Set one queue's weight (adding the queue if new), checked. */
int aeth__cfg_set_weight(aeth_config *cfg, const char *name, const char *value);

/* Forget all queues (before a file or env var gives a whole new map). */
void aeth__cfg_clear_queues(aeth_config *cfg);

/* Read the YAML file into cfg (config_yaml.c). */
int aeth__cfg_load_yaml(aeth_config *cfg, const char *path);

#endif
