/*
 * One rule for task type names (aeth_task_type_valid()): a worker cannot
 * register a type that no client could submit, nor the other way round.
 * The same names go through aeth_worker_handle() and the public rule; the
 * submit client and the queue use that rule too (client_submit and
 * queue_basic test their refusals against real servers). No services.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "aetherium/aetherium.h"

static int handler(aeth_task *t, void *ud)
{
	(void)t;
	(void)ud;
	return 0;
}

static void test_worker_and_client_agree(void **state)
{
	char long_ok[101], long_bad[102];
	const char *names[] = {
		"vm:create", "app:build.v2_x-y", "x", long_ok,
		/* refused by both */
		"", "a b", "app/build", "ünï", "tab\there", "semi;colon", "quote\"",
		long_bad, "{hash}", "$(id)",
	};
	aeth_worker_options o = AETH_WORKER_OPTIONS_INIT;
	aeth_worker *w = NULL;

	(void)state;
	memset(long_ok, 'a', 100);
	long_ok[100] = '\0';
	memset(long_bad, 'b', 101);
	long_bad[101] = '\0';
	o.id = "types-test";
	assert_int_equal(aeth_worker_new(&w, &o), 0);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		int client = aeth_task_type_valid(names[i]);
		int rc = aeth_worker_handle(w, names[i], handler, NULL);

		if (client != (rc == 0))
			fail_msg("type \"%s\": the worker %s it, the client rule %s it",
				 names[i], rc == 0 ? "registers" : "refuses",
				 client ? "accepts" : "refuses");
		if (rc != 0) {
			assert_int_equal(rc, AETH_EINVALID);
			assert_non_null(strstr(aeth_error_last(),
					       "1 to 100 characters of A-Z a-z 0-9"));
		}
		assert_int_equal(client, i < 4);
	}
	assert_int_equal(aeth_task_type_valid(NULL), 0);
	aeth_worker_free(w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_worker_and_client_agree),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
