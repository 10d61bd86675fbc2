/*
 * cli/flags.h - Go-style flags for the two CLIs: -name value, -name=value,
 * and the same with two dashes; boolean flags take no value.
 */
#ifndef AETH_CLI_FLAGS_H
#define AETH_CLI_FLAGS_H

#include <stdbool.h>

#include "aetherium/aetherium.h"

typedef struct {
	const char *name;
	bool is_bool;
	const char **value; /* string flags */
	bool *set;          /* boolean flags */
	/* repeatable string flags (value NULL): each value appended to
	 * list, at most list_max, NULL-terminated (list has list_max + 1) */
	const char **list;
	size_t list_max;
	size_t *list_n;
} cli_flag;

#define CLI_STR(name, value) { name, false, value, NULL, NULL, 0, NULL }
#define CLI_BOOL(name, set) { name, true, NULL, set, NULL, 0, NULL }
#define CLI_LIST(name, list, max, n) { name, false, NULL, NULL, list, max, n }
#define CLI_END { NULL, false, NULL, NULL, NULL, 0, NULL }

/* Parse argv; 0, or 2 after printing the problem (usage error). *help is
 * set for -h / -help / --help. */
int cli_parse(int argc, char **argv, cli_flag *flags, bool *help);

/* As cli_parse, for flags before a command (aeth-gateway -config F keys
 * list): stops at the first argument that is not one of `flags` (nor a
 * help flag) and gives its index in *next (argc: there is none). */
int cli_parse_head(int argc, char **argv, cli_flag *flags, bool *help,
		   int *next);

/* `text` as a whole number from min to max: true and *out, or false
 * (nothing printed: the caller says what is expected). */
bool cli_number(const char *text, long min, long max, long *out);

/* Parse a non-negative number flag; 2 after printing the problem. */
int cli_uint(const char *flag, const char *text, unsigned int *out);

/* The library's log on stderr at logging.level of `cfg`, or at `level`
 * when given (a name aeth_log_level_parse() takes). */
void cli_log_setup(const aeth_config *cfg, const char *level);

#endif
