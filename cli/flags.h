/*
 * cli/flags.h - Go-style flags for the two CLIs: -name value, -name=value,
 * and the same with two dashes; boolean flags take no value.
 */
#ifndef AETH_CLI_FLAGS_H
#define AETH_CLI_FLAGS_H

#include <stdbool.h>

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

/* Parse a non-negative number flag; 2 after printing the problem. */
int cli_uint(const char *flag, const char *text, unsigned int *out);

#endif
