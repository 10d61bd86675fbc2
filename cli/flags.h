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
} cli_flag;

/* Parse argv; 0, or 2 after printing the problem (usage error). *help is
 * set for -h / -help / --help. */
int cli_parse(int argc, char **argv, cli_flag *flags, bool *help);

/* Parse a non-negative number flag; 2 after printing the problem. */
int cli_uint(const char *flag, const char *text, unsigned int *out);

#endif
