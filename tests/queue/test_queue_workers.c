/*
 * tests/queue/test_queue_workers.c - the worker registry: register, list,
 * get, dead after 3 missed intervals, stopped after unregister, refused
 * input.
 */
#include "qtest.h"

#include <cjson/cJSON.h>

static cJSON *get(aeth_queue *q, const char *id)
{
	char *json = NULL;
	cJSON *j;

	if (aeth_queue_worker_get(&json, q, id) != 0)
		fail_msg("aeth_queue_worker_get %s: %s", id, aeth_error_last());
	j = cJSON_Parse(json);
	aeth_free(json);
	assert_non_null(j);
	return j;
}

static const char *field(cJSON *j, const char *key)
{
	cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);

	return cJSON_IsString(v) ? v->valuestring : "";
}

static void test_register_list_get(void **state)
{
	qtest *t = *state;
	char *json = NULL;
	cJSON *j, *types;

	assert_int_equal(aeth_queue_worker_register(t->q, "w-b",
		"{\"host\":\"h1\",\"types\":[\"demo:echo\"],\"id\":\"spoofed\"}", 5000), 0);
	assert_int_equal(aeth_queue_worker_register(t->q, "w-a", NULL, 5000), 0);
	j = get(t->q, "w-b");
	assert_string_equal(field(j, "id"), "w-b");
	assert_string_equal(field(j, "host"), "h1");
	assert_string_equal(field(j, "state"), "alive");
	assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "alive")));
	types = cJSON_GetObjectItemCaseSensitive(j, "types");
	assert_string_equal(cJSON_GetArrayItem(types, 0)->valuestring, "demo:echo");
	assert_true(strlen(field(j, "last_seen")) == 24);
	cJSON_Delete(j);

	assert_int_equal(aeth_queue_worker_list(&json, t->q), 0);
	j = cJSON_Parse(json);
	aeth_free(json);
	assert_int_equal(cJSON_GetArraySize(j), 2);
	assert_string_equal(field(cJSON_GetArrayItem(j, 0), "id"), "w-a"); /* sorted */
	assert_string_equal(field(cJSON_GetArrayItem(j, 1), "id"), "w-b");
	cJSON_Delete(j);
}

static void test_dead_stopped_again(void **state)
{
	qtest *t = *state;
	cJSON *j;

	assert_int_equal(aeth_queue_worker_register(t->q, "w1", "{}", 100), 0);
	usleep(450 * 1000); /* > 3 intervals */
	j = get(t->q, "w1");
	assert_string_equal(field(j, "state"), "dead");
	assert_true(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(j, "alive")));
	cJSON_Delete(j);

	assert_int_equal(aeth_queue_worker_register(t->q, "w1", "{}", 5000), 0);
	assert_int_equal(aeth_queue_worker_unregister(t->q, "w1"), 0);
	j = get(t->q, "w1");
	assert_string_equal(field(j, "state"), "stopped");
	cJSON_Delete(j);
	/* registering again (a restart with the same id) makes it alive */
	assert_int_equal(aeth_queue_worker_register(t->q, "w1", "{}", 5000), 0);
	j = get(t->q, "w1");
	assert_string_equal(field(j, "state"), "alive");
	assert_null(cJSON_GetObjectItemCaseSensitive(j, "stopped_ms"));
	cJSON_Delete(j);
	/* unregistering an unknown worker is not an error */
	assert_int_equal(aeth_queue_worker_unregister(t->q, "nobody"), 0);
}

static void test_refused(void **state)
{
	qtest *t = *state;
	char *json = (char *)"x";
	char big[300];

	assert_int_equal(aeth_queue_worker_get(&json, t->q,
					       "nobody"), AETH_ENOTFOUND);
	assert_null(json);
	assert_non_null(strstr(aeth_error_last(), "nobody"));
	assert_int_equal(aeth_queue_worker_register(t->q, "w", "[1]", 5000), AETH_EINVALID);
	assert_int_equal(aeth_queue_worker_register(t->q, "w", "{", 5000), AETH_EINVALID);
	assert_int_equal(aeth_queue_worker_register(t->q, "w", "{}", 0), AETH_EINVALID);
	assert_int_equal(aeth_queue_worker_register(t->q, "", "{}", 10), AETH_EINVALID);
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(aeth_queue_worker_register(t->q, big, "{}", 10), AETH_EINVALID);
	assert_int_equal(aeth_queue_worker_list(&json, t->q), 0);
	assert_string_equal(json, "[]");
	aeth_free(json);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_register_list_get, qtest_setup,
						qtest_teardown),
		cmocka_unit_test_setup_teardown(test_dead_stopped_again, qtest_setup,
						qtest_teardown),
		cmocka_unit_test_setup_teardown(test_refused, qtest_setup,
						qtest_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
