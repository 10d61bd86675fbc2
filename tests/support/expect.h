/*
 * tests/support/expect.h - checks on aetherium calls shared by the cmocka
 * tests (header only): a failing call fails the test with the call's
 * text, its code and the library's message.
 */
#ifndef AETH_TEST_EXPECT_H
#define AETH_TEST_EXPECT_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "aetherium/error.h"
#include "aetherium/log.h"

/* Fail unless `call` returns 0. */
#define OK(call)                                                            \
	do {                                                                \
		int rc_ = (call);                                           \
		if (rc_ != 0)                                               \
			fail_msg("%s: %d %s", #call, rc_, aeth_error_last()); \
	} while (0)

/* Fail unless the last error message contains `part`. */
static inline void expect_msg(const char *part)
{
	if (!strstr(aeth_error_last(), part))
		fail_msg("'%s' not in message: %s", part, aeth_error_last());
}

/* Fail when `text` (a message, a log line, named by `where`) holds one of
 * the NULL-terminated `secrets` (passwords in every form a test wrote
 * them). */
static inline void expect_no_secret(const char *text, const char *where,
				    const char *const *secrets)
{
	for (size_t i = 0; secrets[i]; i++)
		if (strstr(text, secrets[i]))
			fail_msg("%s shows a password (%s): %s", where, secrets[i], text);
}

/* A log callback that checks every library log line the same way:
 * aeth_log_set(expect_no_secret_log, AETH_LOG_DEBUG, (void *)secrets). */
static inline void expect_no_secret_log(aeth_log_level level, const char *message,
					void *secrets)
{
	(void)level;
	expect_no_secret(message, "a log line", (const char *const *)secrets);
}

#endif
