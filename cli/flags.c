/* cli/flags.c - see flags.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flags.h"

static cli_flag *find(cli_flag *flags, const char *name, size_t len)
{
	for (cli_flag *f = flags; f->name; f++)
		if (strlen(f->name) == len && !strncmp(f->name, name, len))
			return f;
	return NULL;
}

/* cli_parse(), or with `next` cli_parse_head(). */
static int parse(int argc, char **argv, cli_flag *flags, bool *help, int *next)
{
	*help = false;
	if (next)
		*next = argc;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *eq;
		cli_flag *f;
		size_t len;

		if ((a[0] != '-' || a[1] == '\0') && next) {
			*next = i;
			return 0;
		}
		if (a[0] != '-' || a[1] == '\0') {
			fprintf(stderr, "error: unexpected argument \"%s\" (flags start "
				"with -; see --help)\n", a);
			return 2;
		}
		a += a[1] == '-' ? 2 : 1;
		eq = strchr(a, '=');
		len = eq ? (size_t)(eq - a) : strlen(a);
		if ((len == 1 && a[0] == 'h') || (len == 4 && !strncmp(a, "help", 4))) {
			*help = true;
			continue;
		}
		if (!(f = find(flags, a, len)) && next) {
			*next = i;
			return 0;
		}
		if (!f) {
			fprintf(stderr, "error: unknown flag \"%s\" (see --help)\n", argv[i]);
			return 2;
		}
		if (f->is_bool) {
			*f->set = !eq || strcmp(eq + 1, "false") != 0;
			continue;
		}
		if (!eq && i + 1 >= argc) {
			fprintf(stderr, "error: flag -%s needs a value (see --help)\n",
				f->name);
			return 2;
		}
		if (!f->list) {
			*f->value = eq ? eq + 1 : argv[++i];
		} else if (*f->list_n < f->list_max) {
			f->list[(*f->list_n)++] = eq ? eq + 1 : argv[++i];
			f->list[*f->list_n] = NULL;
		} else {
			fprintf(stderr, "error: more than %zu -%s flags\n",
				f->list_max, f->name);
			return 2;
		}
	}
	return 0;
}

int cli_parse(int argc, char **argv, cli_flag *flags, bool *help)
{
	return parse(argc, argv, flags, help, NULL);
}

int cli_parse_head(int argc, char **argv, cli_flag *flags, bool *help,
		   int *next)
{
	return parse(argc, argv, flags, help, next);
}

bool cli_number(const char *text, long min, long max, long *out)
{
	char *end = NULL;
	long v;

	errno = 0;
	v = strtol(text, &end, 10);
	if (errno || end == text || *end || v < min || v > max)
		return false;
	*out = v;
	return true;
}

int cli_uint(const char *flag, const char *text, unsigned int *out)
{
	long v;

	/* digits only: strtol would take " 5" and "+5" */
	if (text[0] < '0' || text[0] > '9' || !cli_number(text, 0, 0x7fffffff, &v)) {
		fprintf(stderr, "error: -%s \"%s\" is not a whole number\n", flag, text);
		return 2;
	}
	*out = (unsigned int)v;
	return 0;
}

void cli_log_setup(const aeth_config *cfg, const char *level)
{
	const char *from_cfg = NULL;
	int l;

	if (!level && aeth_config_get_string(&from_cfg, cfg, "logging.level") == 0)
		level = from_cfg;
	l = level ? aeth_log_level_parse(level) : -1;
	aeth_log_set(aeth_log_stderr, l >= 0 ? (aeth_log_level)l : AETH_LOG_INFO,
		     NULL);
}
