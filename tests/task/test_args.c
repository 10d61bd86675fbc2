/* Unit tests of aeth_args_split(): shell-like word splitting of -args. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "aetherium/aetherium.h"

/* Split `line` and compare with the NULL-terminated `want`. */
static void expect_words(const char *line, const char *const *want)
{
	char **argv = NULL;
	size_t argc = 99, n = 0;

	assert_int_equal(aeth_args_split(&argv, &argc, line), 0);
	assert_non_null(argv);
	while (want[n])
		n++;
	assert_int_equal(argc, n);
	for (size_t i = 0; i < n; i++)
		assert_string_equal(argv[i], want[i]);
	assert_null(argv[n]);
	aeth_strarray_free(argv);
}

static void expect_error(const char *line, int code, const char *words)
{
	char **argv = (char **)1;

	assert_int_equal(aeth_args_split(&argv, NULL, line), code);
	assert_null(argv);
	assert_non_null(strstr(aeth_error_last(), words));
}

#define W(...) ((const char *const[]){__VA_ARGS__, NULL})

static void test_seed_examples(void **state)
{
	(void)state;
	expect_words("Hello from VM", W("Hello", "from", "VM"));
	expect_words("clone https://github.com/torvalds/linux",
		     W("clone", "https://github.com/torvalds/linux"));
	expect_words("-la", W("-la"));
	expect_words("install -y git", W("install", "-y", "git"));
	expect_words("-la linux", W("-la", "linux"));
}

static void test_blank(void **state)
{
	char **argv = NULL;
	size_t argc = 5;

	(void)state;
	assert_int_equal(aeth_args_split(&argv, &argc, ""), 0);
	assert_int_equal(argc, 0);
	assert_null(argv[0]);
	aeth_strarray_free(argv);
	assert_int_equal(aeth_args_split(&argv, &argc, " \t\n "), 0);
	assert_int_equal(argc, 0);
	aeth_strarray_free(argv);
	assert_int_equal(aeth_args_split(&argv, &argc, NULL), 0);
	assert_int_equal(argc, 0);
	aeth_strarray_free(argv);
}

static void test_quotes(void **state)
{
	(void)state;
	expect_words("'a b' c", W("a b", "c"));
	expect_words("\"a b\" c", W("a b", "c"));
	expect_words("a'b c'd", W("ab cd"));
	expect_words("'' x \"\"", W("", "x", ""));
	expect_words("'it'\\''s'", W("it's"));
	expect_words("\"say \\\"hi\\\"\"", W("say \"hi\""));
	expect_words("'no \\escape'", W("no \\escape"));
	expect_words("\"keep \\n and \\\\\"", W("keep \\n and \\"));
	expect_words("\"$HOME\" '*' ~ $x", W("$HOME", "*", "~", "$x"));
	expect_words("sh -c 'echo \"a  b\"'", W("sh", "-c", "echo \"a  b\""));
}

static void test_backslash(void **state)
{
	(void)state;
	expect_words("a\\ b c", W("a b", "c"));
	expect_words("\\'x", W("'x"));
	expect_words("a\\\nb", W("ab"));
	expect_words("\\\\", W("\\"));
	expect_words("x \"a\\\nb\"", W("x", "ab"));
}

static void test_errors(void **state)
{
	(void)state;
	expect_error("echo 'oops", AETH_EINVALID, "unterminated single quote at column 6");
	expect_error("\"oops", AETH_EINVALID, "unterminated double quote at column 1");
	expect_error("x \"a\\\"", AETH_EINVALID, "unterminated double quote");
	expect_error("trailing\\", AETH_EINVALID, "lone backslash");
	assert_int_equal(aeth_args_split(NULL, NULL, "x"), AETH_EINVALID);
}

static void test_limits(void **state)
{
	char *many = malloc(4097 * 2 + 1);
	char **argv = NULL;

	(void)state;
	for (int i = 0; i < 4097; i++)
		memcpy(many + 2 * i, "a ", 2);
	many[4097 * 2] = '\0';
	assert_int_equal(aeth_args_split(&argv, NULL, many), AETH_ETOOBIG);
	many[4096 * 2] = '\0';
	assert_int_equal(aeth_args_split(&argv, NULL, many), 0);
	aeth_strarray_free(argv);
	free(many);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_seed_examples),
		cmocka_unit_test(test_blank),
		cmocka_unit_test(test_quotes),
		cmocka_unit_test(test_backslash),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_limits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
