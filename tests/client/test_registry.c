/*
 * tests/client/test_registry.c - the submit-side checks against the worker
 * registry (lib/client/registry.c): custom types need a live worker on the
 * queue, a VM's owner must not be stopped or dead. Needs Redis (suite
 * 'redis': AETH_TEST_REDIS_URL, else a private redis-server).
 */
#include "../queue/qtest.h"

#include "client/client_internal.h"

static const char *demo = "{\"types\":[\"demo:echo\"],\"queues\":[\"worker:d\",\"demo\"]}";

static void test_type_check(void **state)
{
	qtest *t = *state;

	assert_int_equal(aeth__type_check(t->q, "demo:echo", "demo"), AETH_EINVALID);
	assert_non_null(strstr(aeth_error_last(), "unknown task type 'demo:echo': no "
			       "live worker handles it (built-in types: vm:create, "
			       "vm:execute, vm:delete, vm:file_put, vm:file_get; "
			       "live workers handle: nothing"));
	assert_int_equal(aeth_queue_worker_register(t->q, "d", demo, 5000), 0);
	assert_int_equal(aeth_queue_worker_register(t->q, "b", "{\"types\":[\"vm:create\"],"
						    "\"queues\":[\"default\"]}", 5000), 0);
	assert_int_equal(aeth__type_check(t->q, "demo:echo", "demo"), 0);
	assert_int_equal(aeth__type_check(t->q, "demo:echo", "default"), AETH_EINVALID);
	assert_non_null(strstr(aeth_error_last(), "only on queue(s) demo, not on 'default'"));
	assert_int_equal(aeth__type_check(t->q, "vm:reboot", "default"), AETH_EINVALID);
	assert_non_null(strstr(aeth_error_last(), "live workers handle: vm:create, demo:echo)") ||
			strstr(aeth_error_last(), "live workers handle: demo:echo, vm:create)"));
	/* a stopped worker does not count */
	assert_int_equal(aeth_queue_worker_unregister(t->q, "d"), 0);
	assert_int_equal(aeth__type_check(t->q, "demo:echo", "demo"), AETH_EINVALID);
}

static void test_owner_check(void **state)
{
	qtest *t = *state;
	const char *vm = "0b9f6a8e-0000-4000-8000-000000000001";

	/* unknown to the registry: let through (the task waits as before) */
	assert_int_equal(aeth__owner_check(t->q, vm, "w"), 0);
	assert_int_equal(aeth_queue_worker_register(t->q, "w", "{}", 5000), 0);
	assert_int_equal(aeth__owner_check(t->q, vm, "w"), 0);
	assert_int_equal(aeth_queue_worker_unregister(t->q, "w"), 0);
	assert_int_equal(aeth__owner_check(t->q, vm, "w"), AETH_ESTATE);
	assert_non_null(strstr(aeth_error_last(), "VM 0b9f6a8e-0000-4000-8000-000000000001 "
			       "is owned by worker w, which is not running (stopped, "
			       "last seen "));
	assert_non_null(strstr(aeth_error_last(), "start it again with -id w so it "
			       "re-attaches its VMs"));
	assert_int_equal(aeth_queue_worker_register(t->q, "w", "{}", 50), 0);
	usleep(300 * 1000);
	assert_int_equal(aeth__owner_check(t->q, vm, "w"), AETH_ESTATE);
	assert_non_null(strstr(aeth_error_last(), "(no heartbeat, last seen "));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_type_check, qtest_setup, qtest_teardown),
		cmocka_unit_test_setup_teardown(test_owner_check, qtest_setup, qtest_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
