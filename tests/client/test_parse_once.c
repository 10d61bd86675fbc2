/*
 * The submit client parses a payload at most once: its checks, the VM a
 * task targets and whether a rejected payload was JSON at all all come
 * from that one parse, and the store does not parse it again (modules
 * hand each other what they found, not JSON text). Every cJSON parse the
 * library's objects make is counted (the linker's --wrap), and those of
 * the payload text (it carries a marker) must number at most one in the
 * client, plus one in the queue, which checks the text it is handed.
 * Needs PostgreSQL and Redis (tests/support).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "aetherium/aetherium.h"
#include "client_fixture.h"
#include "expect.h"

#define MARK "parse-once-marker"
#define VM "7d0c1a52-9a0e-4c1e-9d1f-0123456789ab"

static int parses; /* parses of text holding MARK */

static void count(const char *value, size_t len)
{
	if (value && memmem(value, len, MARK, strlen(MARK)))
		parses++;
}

cJSON *__real_cJSON_Parse(const char *value);
cJSON *__real_cJSON_ParseWithLength(const char *value, size_t len);
cJSON *__real_cJSON_ParseWithOpts(const char *value, const char **end,
				  cJSON_bool nul);
cJSON *__real_cJSON_ParseWithLengthOpts(const char *value, size_t len,
					const char **end, cJSON_bool nul);
cJSON *__wrap_cJSON_Parse(const char *value);
cJSON *__wrap_cJSON_ParseWithLength(const char *value, size_t len);
cJSON *__wrap_cJSON_ParseWithOpts(const char *value, const char **end,
				  cJSON_bool nul);
cJSON *__wrap_cJSON_ParseWithLengthOpts(const char *value, size_t len,
					const char **end, cJSON_bool nul);

cJSON *__wrap_cJSON_Parse(const char *value)
{
	count(value, value ? strlen(value) : 0);
	return __real_cJSON_Parse(value);
}

cJSON *__wrap_cJSON_ParseWithLength(const char *value, size_t len)
{
	count(value, len);
	return __real_cJSON_ParseWithLength(value, len);
}

cJSON *__wrap_cJSON_ParseWithOpts(const char *value, const char **end,
				  cJSON_bool nul)
{
	count(value, value ? strlen(value) : 0);
	return __real_cJSON_ParseWithOpts(value, end, nul);
}

cJSON *__wrap_cJSON_ParseWithLengthOpts(const char *value, size_t len,
					const char **end, cJSON_bool nul)
{
	count(value, len);
	return __real_cJSON_ParseWithLengthOpts(value, len, end, nul);
}

/* A vm:execute for a VM that does not exist: checked, routed, rejected
 * and recorded as failed, all from one parse. */
static void test_rejected_execute(void **state)
{
	fixture *f = *state;
	const char *p = "{\"vm_id\": \"" VM "\", \"command\": \"echo\", "
			"\"args\": [\"" MARK "\"]}";
	char id[37];

	parses = 0;
	assert_int_equal(aeth_client_submit(id, NULL, f->client, "vm:execute",
					    p, NULL), AETH_ENOTFOUND);
	assert_int_equal(parses, 1);
}

/* A payload that is not JSON: one failed parse says so, and the row keeps
 * it as a JSON string without another. */
static void test_rejected_not_json(void **state)
{
	fixture *f = *state;
	char id[37];

	parses = 0;
	assert_int_equal(aeth_client_submit(id, NULL, f->client, "app:x",
					    "not json " MARK,
					    NULL), AETH_EINVALID);
	assert_int_equal(parses, 1);
}

/* An accepted custom task: the client's check, then the queue's own check
 * of the text it is given (aeth_queue_enqueue() takes JSON text from any
 * caller); the store writes what the client checked. */
static void test_accepted_custom(void **state)
{
	fixture *f = *state;
	char id[37];

	OK(aeth_queue_worker_register(f->queue, "w", "{\"types\": [\"app:x\"], "
				      "\"queues\": [\"default\"]}", 60000));
	parses = 0;
	OK(aeth_client_submit(id, NULL, f->client, "app:x",
			      "{\"m\": \"" MARK "\"}", NULL));
	assert_int_equal(parses, 2);
}

/* The helpers build a tree, check it and print it: no parse in the
 * client at all. */
static void test_built_execute(void **state)
{
	fixture *f = *state;
	const char *args[] = {MARK, NULL};
	char id[37];

	parses = 0;
	assert_int_equal(aeth_client_submit_execute(id, f->client, VM, "echo",
						    args,
						    NULL), AETH_ENOTFOUND);
	assert_int_equal(parses, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_rejected_execute, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rejected_not_json, setup, teardown),
		cmocka_unit_test_setup_teardown(test_accepted_custom, setup, teardown),
		cmocka_unit_test_setup_teardown(test_built_execute, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
