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
#include <unistd.h>

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

/* Text from submitters and guests reaches logs as one visible line. */
static void test_escape_text(void **state)
{
	char out[256];

	(void)state;
	aeth__escape_text(out, sizeof(out), "plain ✓ text", false);
	assert_string_equal(out, "plain ✓ text");
	aeth__escape_text(out, sizeof(out), "a\nb\rc\td\x1b[2Ke\x7f", false);
	assert_string_equal(out, "a\\nb\\rc\\td\\x1b[2Ke\\x7f");
	aeth__escape_text(out, sizeof(out), "line1\nline2", true);
	assert_string_equal(out, "line1\n  | line2");
	/* C1 NEL (U+0085) and RLO (U+202E): visible, not acted on */
	aeth__escape_text(out, sizeof(out), "x\xc2\x85y\xe2\x80\xaez", false);
	assert_string_equal(out, "x\\u0085y\\u202ez");
	/* cut whole: never half an escape, always terminated */
	aeth__escape_text(out, 6, "ab\x1b" "cd", false);
	assert_string_equal(out, "ab");
}

/* A private dir: made 0700; another's, an open one or a link refused. */
static void test_private_dir(void **state)
{
	char tmpl[] = "/tmp/aeth-priv-XXXXXX", *d, *l;
	struct stat st;

	(void)state;
	assert_non_null(mkdtemp(tmpl));
	d = aeth__sprintf("%s/state", tmpl);
	l = aeth__sprintf("%s/link", tmpl);
	assert_int_equal(aeth__private_dir(d, "state dir"), 0);
	assert_int_equal(stat(d, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	assert_int_equal(aeth__private_dir(d, "state dir"), 0); /* again: fine */
	assert_int_equal(chmod(d, 0755), 0);
	assert_int_equal(aeth__private_dir(d, "state dir"), AETH_EINVALID);
	assert_non_null(strstr(aeth_error_last(), "has mode 0755"));
	assert_int_equal(chmod(d, 0700), 0);
	assert_int_equal(symlink(d, l), 0);
	assert_int_equal(aeth__private_dir(l, "state dir"), AETH_EINVALID);
	assert_non_null(strstr(aeth_error_last(), "symbolic link"));
	if (geteuid() == 0) {
		assert_int_equal(chown(d, 65534, 65534), 0);
		assert_int_equal(aeth__private_dir(d, "state dir"), AETH_EINVALID);
		assert_non_null(strstr(aeth_error_last(), "belongs to uid 65534"));
	}
	assert_int_equal(aeth__rm_rf(tmpl), 0);
	free(d);
	free(l);
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
		cmocka_unit_test(test_escape_text),
		cmocka_unit_test(test_private_dir),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
