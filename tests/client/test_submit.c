/*
 * aeth_client_submit()'s checks of the task type and payload, against a
 * real PostgreSQL (fresh database, tests/support/pg.h) and Redis (own key
 * namespace, tests/support/redis.h): any valid type name a live worker
 * registered (the worker registry) reaches the queue, the built-in
 * types' payloads are still checked field by field, and what is refused
 * is recorded (or not) as task.h says. Needs
 * AETH_TEST_DATABASE_URL (scripts/services.sh env); fails without it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "aetherium/aetherium.h"
#define AETH_UNSTABLE
#include "aetherium/unstable/store.h"
#include "client_fixture.h"
#include "expect.h"

static size_t task_rows(fixture *f)
{
	aeth_store_task **list;
	size_t n;

	OK(aeth_store_task_list(&list, &n, f->store, NULL));
	aeth_store_task_list_free(list);
	return n;
}

/* A custom type goes to the queue asked for, as given, and is recorded. */
static void test_custom_type_enqueued(void **state)
{
	fixture *f = *state;
	aeth_submit_options so = AETH_SUBMIT_OPTIONS_INIT;
	aeth_store_task *row;
	aeth_queue_task *qt;
	char id[37], *queue = NULL;

	so.queue = "builds";
	/* no live worker handles it yet: refused (worker registry) */
	assert_int_equal(aeth_client_submit(id, NULL, f->client,
					    "app:build.v2_x-y", "{}",
					    &so), AETH_EINVALID);
	expect_msg("no live worker handles it");
	OK(aeth_queue_worker_register(f->queue, "w", "{\"types\": [\"app:build.v2_x-y\", "
				      "\"py:add\", \"app:vm-report\", \"x\"], \"queues\": "
				      "[\"builds\", \"default\"]}", 60000));
	OK(aeth_client_submit(id, &queue, f->client, "app:build.v2_x-y",
			      "{\"ref\": \"main\"}", &so));
	assert_string_equal(queue, "builds");
	aeth_free(queue);
	OK(aeth_store_task_get(&row, f->store, id));
	assert_string_equal(row->type, "app:build.v2_x-y");
	assert_string_equal(row->status, "pending");
	assert_string_equal(row->queue, "builds");
	assert_string_equal(row->vm_id, "");
	aeth_store_task_free(row);
	OK(aeth_queue_get(&qt, f->queue, "builds", id));
	assert_string_equal(qt->type, "app:build.v2_x-y");
	assert_non_null(strstr(qt->payload, "main"));
	assert_int_equal(qt->state, AETH_QUEUE_PENDING);
	aeth_queue_task_free(qt);

	/* NULL payload: "{}"; no queue: "default"; a vm_id field is not
	 * routed for types other than the built-in ones that act on a VM. */
	OK(aeth_client_submit(id, &queue, f->client, "py:add", NULL, NULL));
	assert_string_equal(queue, "default");
	aeth_free(queue);
	OK(aeth_client_submit(id, &queue, f->client, "app:vm-report",
			      "{\"vm_id\": \"7d0c1a52-9a0e-4c1e-9d1f-0123456789ab\"}",
			      NULL));
	assert_string_equal(queue, "default");
	aeth_free(queue);
	OK(aeth_client_submit(id, NULL, f->client, "x", "[1, 2]", NULL));
}

/* Names a handler cannot have are refused before anything is written. */
static void test_bad_type_names(void **state)
{
	fixture *f = *state;
	const char *bad[] = {"", "app build", "a/b", "vm:create\n", "ä:b", "a;b"};
	char longest[101], over[102], id[37];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(aeth_client_submit(id, NULL, f->client, bad[i],
						    "{}", NULL), AETH_EINVALID);
		expect_msg("is not valid: 1 to 100 characters of A-Z a-z 0-9 _ : . -");
	}
	memset(longest, 'a', sizeof(longest));
	longest[100] = '\0';
	{ /* a live worker handles it (worker registry) */
		char info[256];

		snprintf(info, sizeof(info), "{\"types\": [\"%s\"], \"queues\": "
			 "[\"default\"]}", longest);
		OK(aeth_queue_worker_register(f->queue, "w", info, 60000));
	}
	OK(aeth_client_submit(id, NULL, f->client, longest, "{}", NULL));
	memset(over, 'c', sizeof(over));
	over[101] = '\0';
	assert_int_equal(aeth_client_submit(id, NULL, f->client, over, "{}",
					    NULL),
			 AETH_EINVALID);
	expect_msg("is not valid");
	assert_int_equal(aeth_client_submit(id, NULL, f->client, NULL, "{}",
					    NULL),
			 AETH_EINVALID);
	assert_int_equal(task_rows(f), 1); /* the 100 characters one */
}

/* A custom type's payload must be JSON; a refused one is recorded failed. */
static void test_custom_payload_not_json(void **state)
{
	fixture *f = *state;
	aeth_store_task *row;
	char id[37];

	assert_int_equal(aeth_client_submit(id, NULL, f->client, "app:build",
					    "{\"ref\": ", NULL), AETH_EINVALID);
	expect_msg("app:build payload is not valid JSON");
	OK(aeth_store_task_get(&row, f->store, id));
	assert_string_equal(row->status, "failed");
	assert_non_null(strstr(row->error, "not valid JSON"));
	aeth_store_task_free(row);
}

/* The built-in types are checked as before. */
static void test_builtin_still_checked(void **state)
{
	fixture *f = *state;
	aeth_store_task *row;
	char id[37];

	assert_int_equal(aeth_client_submit(id, NULL, f->client, "vm:create",
					    "{\"vcpus\": 1}",
					    NULL), AETH_EINVALID);
	expect_msg("\"name\" is missing");
	OK(aeth_store_task_get(&row, f->store, id));
	assert_string_equal(row->status, "failed");
	aeth_store_task_free(row);
	assert_int_equal(aeth_client_submit(id, NULL, f->client, "vm:execute",
					    "{\"vm_id\": \"7d0c1a52-9a0e-4c1e-9d1f-" "0123456789ab\", \"command\": \"ls\"}",
					    NULL), AETH_ENOTFOUND);
	expect_msg("does not exist");
	assert_int_equal(aeth_client_submit(id, NULL, f->client, "vm:delete",
					    "{}", NULL), AETH_EINVALID);
	OK(aeth_client_submit(id, NULL, f->client, "vm:create",
			      "{\"name\": \"v\"}", NULL));
}

/* aeth_client_submit_create_ex(): the payload carries network, image, ttl
 * and rootfs as true/false; a rootfs path is refused (disks come from the
 * worker's image catalogue). */
static void test_create_ex_payload(void **state)
{
	fixture *f = *state;
	aeth_create_options vm = AETH_CREATE_OPTIONS_INIT;
	aeth_store_task *row;
	char id[37];

	vm.name = "g";
	vm.network = "user";
	vm.image = "debian";
	vm.ttl_s = 600;
	vm.rootfs = "disk.ext4";
	assert_int_equal(aeth_client_submit_create_ex(id, f->client, &vm, NULL),
			 AETH_EINVALID);
	expect_msg("give default (the image's root disk) or none");
	vm.rootfs = "/etc/shadow";
	assert_int_equal(aeth_client_submit_create_ex(id, f->client, &vm, NULL),
			 AETH_EINVALID);
	expect_msg("catalogue");

	vm.rootfs = "default";
	OK(aeth_client_submit_create_ex(id, f->client, &vm, NULL));
	OK(aeth_store_task_get(&row, f->store, id));
	assert_non_null(strstr(row->payload, "\"rootfs\": true"));
	assert_non_null(strstr(row->payload, "\"network\": \"user\""));
	assert_non_null(strstr(row->payload, "\"image\": \"debian\""));
	assert_non_null(strstr(row->payload, "\"ttl\": 600"));
	aeth_store_task_free(row);

	vm.rootfs = "";
	assert_int_equal(aeth_client_submit_create_ex(id, f->client, &vm, NULL),
			 AETH_EINVALID);
	expect_msg("give default");
	vm.name = NULL;
	assert_int_equal(aeth_client_submit_create_ex(id, f->client, &vm, NULL),
			 AETH_EINVALID);
	expect_msg("needs a name");
}

/* aeth_client_submit_execute_ex(): env, cwd, timeout, stdin and the
 * idempotency key reach the payload; a bad env entry is refused. Then
 * aeth_client_cancel() on that queued task, twice, and on nothing. */
static void test_execute_ex_and_cancel(void **state)
{
	fixture *f = *state;
	aeth_store_vm vm = AETH_STORE_VM_INIT;
	aeth_execute_options x = AETH_EXECUTE_OPTIONS_INIT;
	const char *env[] = {"A=1", "B=x=y", NULL}, *bad[] = {"NOEQ", NULL};
	const char *args[] = {"-c", "true", NULL};
	aeth_store_task *row;
	char id[37];

	vm.name = "x";
	vm.orchestrator = "qemu";
	vm.status = "running";
	vm.owner_worker = "nobody-runs-me";
	OK(aeth_store_vm_insert(f->store, &vm));
	x.env = env;
	x.cwd = "/tmp";
	x.timeout_ms = 1500;
	x.stdin_data = "in";
	x.idempotency_key = "k1";
	OK(aeth_client_submit_execute_ex(id, f->client, vm.id, "sh", args, &x, NULL));
	OK(aeth_store_task_get(&row, f->store, id));
	assert_non_null(strstr(row->payload, "\"env\": {\"A\": \"1\", \"B\": \"x=y\"}"));
	assert_non_null(strstr(row->payload, "\"cwd\": \"/tmp\""));
	assert_non_null(strstr(row->payload, "\"timeout_ms\": 1500"));
	assert_non_null(strstr(row->payload, "\"stdin\": \"in\""));
	assert_non_null(strstr(row->payload, "\"idempotency_key\": \"k1\""));
	aeth_store_task_free(row);

	OK(aeth_client_cancel(f->client, id));
	OK(aeth_store_task_get(&row, f->store, id));
	assert_string_equal(row->status, "failed");
	assert_string_equal(row->error, "cancelled before it ran");
	aeth_store_task_free(row);
	assert_int_equal(aeth_client_cancel(f->client, id), AETH_ESTATE);
	expect_msg("has ended already");
	assert_int_equal(aeth_client_cancel(f->client,
					    "00000000-0000-4000-8000-000000000000"),
			 AETH_ENOTFOUND);
	assert_int_equal(aeth_client_cancel(f->client, "nope"), AETH_EINVALID);

	x.env = bad;
	assert_int_equal(aeth_client_submit_execute_ex(id, f->client, vm.id, "sh",
						       args, &x, NULL), AETH_EINVALID);
	expect_msg("is not KEY=VALUE");
	x.env = NULL;
	x.cwd = "relative";
	assert_int_equal(aeth_client_submit_execute_ex(id, f->client, vm.id, "sh",
						       args, &x, NULL), AETH_EINVALID);
	expect_msg("absolute path");
}

/* The one version rule (docs/api.md) for the submit and create options:
 * 1..current accepted, others refused naming the range. */
static void test_option_versions(void **state)
{
	fixture *f = *state;
	aeth_create_options vm = AETH_CREATE_OPTIONS_INIT;
	aeth_submit_options so = AETH_SUBMIT_OPTIONS_INIT;
	char id[37];

	so.version = AETH_SUBMIT_OPTIONS_VERSION + 1;
	assert_int_equal(aeth_client_submit(id, NULL, f->client, "vm:create",
					    "{\"name\":\"a\"}",
					    &so), AETH_EINVALID);
	expect_msg("aeth_submit_options.version is 3; this library");
	expect_msg("knows versions 1..2");
	so.version = 0;
	assert_int_equal(aeth_client_submit_delete(id, f->client, "x", &so),
			 AETH_EINVALID);
	expect_msg("aeth_submit_options.version is 0");
	vm.name = "v";
	vm.version = AETH_CREATE_OPTIONS_VERSION + 1;
	assert_int_equal(aeth_client_submit_create_ex(id, f->client, &vm, NULL),
			 AETH_EINVALID);
	expect_msg("aeth_create_options.version");
	{
		aeth_execute_options x = AETH_EXECUTE_OPTIONS_INIT;

		x.version = AETH_EXECUTE_OPTIONS_VERSION + 1;
		assert_int_equal(aeth_client_submit_execute_ex(id, f->client, "x",
							       "true", NULL, &x,
							       NULL), AETH_EINVALID);
		expect_msg("aeth_execute_options.version is 2");
	}
	/* version 1 (no image, no ttl_s) is still taken */
	assert_int_equal(aeth_create_options_init(&vm, 1), 0);
	vm.name = "v1";
	vm.image = "must-not-be-read"; /* a version 2 field */
	OK(aeth_client_submit_create_ex(id, f->client, &vm, NULL));
	{
		aeth_store_task *row;

		OK(aeth_store_task_get(&row, f->store, id));
		assert_null(strstr(row->payload, "must-not-be-read"));
		aeth_store_task_free(row);
	}
	assert_int_equal(task_rows(f), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_custom_type_enqueued, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_type_names, setup, teardown),
		cmocka_unit_test_setup_teardown(test_custom_payload_not_json, setup, teardown),
		cmocka_unit_test_setup_teardown(test_builtin_still_checked, setup, teardown),
		cmocka_unit_test_setup_teardown(test_create_ex_payload, setup, teardown),
		cmocka_unit_test_setup_teardown(test_option_versions, setup, teardown),
		cmocka_unit_test_setup_teardown(test_execute_ex_and_cancel, setup, teardown),
	};
	char *probe = NULL;

	if (aeth_test_pg_fresh(&probe) != 0) {
		fprintf(stderr, "FAIL: %s\n", aeth_test_pg_error());
		return 1;
	}
	aeth_test_pg_drop(probe);
	free(probe);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
