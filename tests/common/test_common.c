/* Unit tests of lib/common: errors, buffers, UUIDs, directories. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "aetherium/aetherium.h"
#include "internal.h"

static void test_strerror_covers_every_code(void **state)
{
	(void)state;
	for (int c = AETH_OK; c >= AETH_ESTATE; c--)
		assert_string_not_equal(aeth_strerror(c), "unknown error");
	assert_string_equal(aeth_strerror(AETH_ESTATE - 1), "unknown error");
	assert_string_equal(aeth_strerror(1), "unknown error");
}

static void test_error_last_is_per_call(void **state)
{
	(void)state;
	aeth_error_clear();
	assert_string_equal(aeth_error_last(), "no error");
	assert_int_equal(aeth__error_set(AETH_ENOTFOUND, "vm %s not found", "x"),
			 AETH_ENOTFOUND);
	assert_string_equal(aeth_error_last(), "vm x not found");
	assert_int_equal(aeth_error_last_code(), AETH_ENOTFOUND);
	aeth__error_wrap(AETH_ETIMEOUT, "while waiting");
	assert_string_equal(aeth_error_last(), "while waiting: vm x not found");
	aeth_error_clear();
	assert_int_equal(aeth_error_last_code(), AETH_OK);
}

static void test_buf_limit_truncates(void **state)
{
	aeth__buf b = AETH__BUF_INIT;
	size_t len;
	char *s;

	(void)state;
	b.limit = 5;
	assert_int_equal(aeth__buf_append(&b, "abc", 3), 0);
	assert_false(b.truncated);
	assert_int_equal(aeth__buf_append(&b, "defgh", 5), 0);
	assert_true(b.truncated);
	s = aeth__buf_detach(&b, &len);
	assert_int_equal(len, 5);
	assert_string_equal(s, "abcde");
	free(s);
}

static void test_uuid(void **state)
{
	char a[37], b[37];

	(void)state;
	aeth__uuid_new(a);
	aeth__uuid_new(b);
	assert_true(aeth__uuid_valid(a));
	assert_string_not_equal(a, b);
	assert_false(aeth__uuid_valid("not-a-uuid"));
	assert_false(aeth__uuid_valid(NULL));
}

static void test_mkdir_rm(void **state)
{
	char tmpl[] = "/tmp/aeth-test-XXXXXX";
	char *deep, *file;
	struct stat st;
	FILE *f;

	(void)state;
	assert_non_null(mkdtemp(tmpl));
	deep = aeth__sprintf("%s/a/b/c", tmpl);
	assert_int_equal(aeth__mkdir_p(deep, 0700), 0);
	file = aeth__sprintf("%s/a/b/file", tmpl);
	f = fopen(file, "w");
	assert_non_null(f);
	fclose(f);
	assert_int_equal(aeth__rm_rf(tmpl), 0);
	assert_int_not_equal(stat(tmpl, &st), 0);
	free(deep);
	free(file);
}

static void test_version(void **state)
{
	int maj, min, pat;

	(void)state;
	aeth_version_numbers(&maj, &min, &pat);
	assert_int_equal(maj, AETH_VERSION_MAJOR);
	assert_string_equal(aeth_version(), AETH_VERSION_STRING);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_strerror_covers_every_code),
		cmocka_unit_test(test_error_last_is_per_call),
		cmocka_unit_test(test_buf_limit_truncates),
		cmocka_unit_test(test_uuid),
		cmocka_unit_test(test_mkdir_rm),
		cmocka_unit_test(test_version),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
