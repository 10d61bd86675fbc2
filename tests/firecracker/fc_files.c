/* tests/firecracker/fc_files.c - see fc_files.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "fc_files.h"

char *fc_slurp(const char *path)
{
	FILE *f = fopen(path, "re");
	aeth__buf b = AETH__BUF_INIT;
	char chunk[4096];
	size_t n;

	if (!f)
		return strdup("");
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		aeth__buf_append(&b, chunk, n);
	fclose(f);
	return b.data ? aeth__buf_detach(&b, NULL) : strdup("");
}

void fc_write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "we");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}
