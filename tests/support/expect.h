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

#endif
