/* Unit tests of the task payload parsers and result builders. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "aetherium/aetherium.h"
#include "internal.h"
#include "task/task.h"

#define VMID "0b6f3f0e-4a43-4c1e-9d55-3c2f1e0a9b7d"

static int create(const char *json, aeth__create_payload *p)
{
	return aeth__create_payload_parse(json, strlen(json), p);
}

static int execute(const char *json, aeth__execute_payload *p)
{
	return aeth__execute_payload_parse(json, strlen(json), p);
}

static void expect_invalid(const char *type, const char *json, const char *words)
{
	int rc = aeth_task_payload_validate(type, json, strlen(json));

	assert_true(rc == AETH_EINVALID || rc == AETH_ETOOBIG);
	if (!strstr(aeth_error_last(), words))
		fail_msg("message \"%s\" lacks \"%s\"", aeth_error_last(), words);
}

static void test_create_seed(void **state)
{
	aeth__create_payload p;

	(void)state;
	assert_int_equal(create("{\"name\": \"my-vm\", \"vcpus\": 1, \"memory_mb\": 256}", &p), 0);
	assert_string_equal(p.name, "my-vm");
	assert_int_equal(p.vcpus, 1);
	assert_int_equal(p.memory_mb, 256);
	aeth__create_payload_clear(&p);
	/* defaults (0) when absent; unknown fields ignored like the Go demo */
	assert_int_equal(create("{\"name\":\"x\",\"extra\":[1,2]}", &p), 0);
	assert_int_equal(p.vcpus, 0);
	assert_int_equal(p.memory_mb, 0);
	aeth__create_payload_clear(&p);
}

static void test_create_invalid(void **state)
{
	(void)state;
	expect_invalid("vm:create", "{}", "\"name\" is missing");
	expect_invalid("vm:create", "{\"name\":\"\"}", "\"name\" is empty");
	expect_invalid("vm:create", "{\"name\":5}", "\"name\" must be a string");
	expect_invalid("vm:create", "{\"name\":\"a\",\"vcpus\":0}", "\"vcpus\" must be a whole number from 1 to 64");
	expect_invalid("vm:create", "{\"name\":\"a\",\"vcpus\":1.5}", "\"vcpus\"");
	expect_invalid("vm:create", "{\"name\":\"a\",\"vcpus\":\"2\"}", "\"vcpus\" must be a number");
	expect_invalid("vm:create", "{\"name\":\"a\",\"memory_mb\":8}", "\"memory_mb\"");
	expect_invalid("vm:create", "{\"name\":\"a\"", "not valid JSON");
	expect_invalid("vm:create", "[1]", "must be a JSON object");
	expect_invalid("vm:create", "{\"name\":\"a\"} x", "trailing data");
	expect_invalid("vm:create", "", "empty");
	/* names reach logs and tables: no control characters */
	expect_invalid("vm:create", "{\"name\":\"a\\nb\"}", "control characters");
	expect_invalid("vm:create", "{\"name\":\"a\\u001b[2Kb\"}", "control characters");
	expect_invalid("vm:create", "{\"name\":\"a\\u0085b\"}", "control characters");
	expect_invalid("vm:create", "{\"name\":\"a\\u202eb\"}", "control characters");
	expect_invalid("vm:create", "{\"name\":\"a\xff\"}", "control characters");
	/* nothing names a host path */
	expect_invalid("vm:create", "{\"name\":\"a\",\"rootfs\":\"/dev/sda\"}",
		       "takes true or false, not a path");
	expect_invalid("vm:create", "{\"name\":\"a\",\"image\":\"/etc\"}",
		       "\"image\" must be the name");
	expect_invalid("vm:create", "{\"name\":\"a\",\"network\":\"a b\"}",
		       "\"network\" must be");
	expect_invalid("vm:create", "{\"name\":\"a\",\"ttl\":0}",
		       "\"ttl\" must be a whole number from 1");
}

/* The new fields: image, a profile name, ttl; clean UTF-8 names pass. */
static void test_create_catalogue(void **state)
{
	aeth__create_payload p;

	(void)state;
	assert_int_equal(create("{\"name\":\"é-vm ✓\",\"image\":\"debian\","
				"\"network\":\"git\",\"rootfs\":true,\"ttl\":600}", &p), 0);
	assert_string_equal(p.name, "é-vm ✓");
	assert_string_equal(p.image, "debian");
	assert_int_equal(p.network, AETH__NET_PROFILE);
	assert_string_equal(p.profile, "git");
	assert_string_equal(aeth__create_network_name(&p), "git");
	assert_int_equal(p.rootfs, AETH__ROOTFS_ON);
	assert_int_equal(p.ttl_s, 600);
	aeth__create_payload_clear(&p);
	assert_int_equal(create("{\"name\":\"x\",\"network\":\"tap\",\"tap\":\"tap0\"}",
				&p), 0);
	assert_int_equal(p.network, AETH__NET_TAP);
	assert_string_equal(aeth__create_network_name(&p), "tap");
	aeth__create_payload_clear(&p);
}

static void test_execute_seed(void **state)
{
	aeth__execute_payload p;

	(void)state;
	assert_int_equal(execute("{\"vm_id\":\"" VMID "\",\"command\":\"git\","
				 "\"args\":[\"clone\",\"https://github.com/user/repo\"]}", &p), 0);
	assert_string_equal(p.vm_id, VMID);
	assert_int_equal(p.argc, 3);
	assert_string_equal(p.argv[0], "git");
	assert_string_equal(p.argv[1], "clone");
	assert_string_equal(p.argv[2], "https://github.com/user/repo");
	assert_null(p.argv[3]);
	assert_null(p.env);
	assert_null(p.cwd);
	aeth__execute_payload_clear(&p);
	/* args may be absent */
	assert_int_equal(execute("{\"vm_id\":\"" VMID "\",\"command\":\"ls\"}", &p), 0);
	assert_int_equal(p.argc, 1);
	aeth__execute_payload_clear(&p);
}

static void test_execute_extras(void **state)
{
	aeth__execute_payload p;

	(void)state;
	assert_int_equal(execute("{\"vm_id\":\"" VMID "\",\"command\":\"sh\",\"args\":[],"
				 "\"env\":{\"LANG\":\"C\",\"X\":\"a=b\"},\"cwd\":\"/tmp\","
				 "\"timeout_ms\":5000,\"stdin\":\"hi\\n\"}", &p), 0);
	assert_string_equal(p.env[0], "LANG=C");
	assert_string_equal(p.env[1], "X=a=b");
	assert_null(p.env[2]);
	assert_string_equal(p.cwd, "/tmp");
	assert_int_equal(p.timeout_ms, 5000);
	assert_int_equal(p.stdin_len, 3);
	assert_memory_equal(p.stdin_data, "hi\n", 3);
	aeth__execute_payload_clear(&p);
}

static void test_execute_invalid(void **state)
{
	(void)state;
	expect_invalid("vm:execute", "{\"command\":\"ls\"}", "\"vm_id\" is missing");
	expect_invalid("vm:execute", "{\"vm_id\":\"nope\",\"command\":\"ls\"}", "is not a VM id");
	expect_invalid("vm:execute", "{\"vm_id\":\"" VMID "\"}", "\"command\" is missing");
	expect_invalid("vm:execute", "{\"vm_id\":\"" VMID "\",\"command\":\"\"}", "\"command\" is empty");
	expect_invalid("vm:execute", "{\"vm_id\":\"" VMID "\",\"command\":\"ls\",\"args\":\"-la\"}", "\"args\" must be an array");
	expect_invalid("vm:execute", "{\"vm_id\":\"" VMID "\",\"command\":\"ls\",\"args\":[1]}", "\"args\"[0] must be a string");
	expect_invalid("vm:execute", "{\"vm_id\":\"" VMID "\",\"command\":\"ls\",\"env\":[\"A=B\"]}", "\"env\" must be an object");
	expect_invalid("vm:execute", "{\"vm_id\":\"" VMID "\",\"command\":\"ls\",\"env\":{\"A=\":\"B\"}}", "bad variable name");
	expect_invalid("vm:execute", "{\"vm_id\":\"" VMID "\",\"command\":\"ls\",\"cwd\":\"tmp\"}", "absolute path");
	expect_invalid("vm:execute", "{\"vm_id\":\"" VMID "\",\"command\":\"ls\",\"timeout_ms\":-1}", "\"timeout_ms\"");
}

static void test_delete_and_types(void **state)
{
	aeth__delete_payload d;
	const char *j = "{\"vm_id\":\"" VMID "\"}";
	char *id;

	(void)state;
	assert_int_equal(aeth__delete_payload_parse(j, strlen(j), &d), 0);
	assert_string_equal(d.vm_id, VMID);
	aeth__delete_payload_clear(&d);
	expect_invalid("vm:delete", "{}", "\"vm_id\" is missing");
	expect_invalid("vm:reboot", "{}", "unknown task type \"vm:reboot\"");
	assert_true(aeth__task_type_builtin("vm:execute"));
	assert_false(aeth__task_type_builtin("vm:executes"));
	id = aeth__payload_vm_id(j, strlen(j));
	assert_string_equal(id, VMID);
	free(id);
	assert_null(aeth__payload_vm_id("{\"name\":\"x\"}", 12));
}

static void test_results(void **state)
{
	char *s;

	(void)state;
	s = aeth__create_result(VMID, "my-vm", "pool", 7);
	assert_string_equal(s, "{\"vm_id\":\"" VMID "\",\"name\":\"my-vm\",\"status\":"
			    "\"running\",\"origin\":\"pool\",\"ready_ms\":7}");
	free(s);
	{
		aeth__exec_fields f = {0, "Hello from VM\n", "", 14, 0, false,
				       false, false, 0, 12};

		s = aeth__execute_result(VMID, &f);
	}
	/* the seed's four fields as they were, then what ExecResult adds */
	assert_string_equal(s, "{\"vm_id\":\"" VMID "\",\"exit_code\":0,"
			    "\"stdout\":\"Hello from VM\\n\",\"stderr\":\"\","
			    "\"stdout_truncated\":false,\"stderr_truncated\":false,"
			    "\"timed_out\":false,\"signal\":null,\"duration_ms\":12}");
	free(s);
	/* NUL and invalid UTF-8 become U+FFFD; valid multi-byte stays; the
	 * raw bytes are in stdout_b64 (only for the stream that needs it) */
	{
		aeth__exec_fields f = {137, "a\0b\xff\xc3\xa9", "ok", 6, 2, true,
				       false, true, 9, 5000};

		s = aeth__execute_result(VMID, &f);
	}
	assert_non_null(strstr(s, "\"stdout\":\"a\xef\xbf\xbd" "b\xef\xbf\xbd\xc3\xa9\""));
	assert_non_null(strstr(s, "\"exit_code\":137"));
	assert_non_null(strstr(s, "\"stdout_b64\":\"YQBi/8Op\""));
	assert_null(strstr(s, "stderr_b64"));
	assert_non_null(strstr(s, "\"stdout_truncated\":true,\"stderr_truncated\":false,"
			       "\"timed_out\":true,\"signal\":9,\"duration_ms\":5000"));
	free(s);
	s = aeth__delete_result(VMID);
	assert_string_equal(s, "{\"vm_id\":\"" VMID "\",\"status\":\"deleted\"}");
	free(s);
}

/* A built tree, printed (and freed). */
static char *print_tree(cJSON *o)
{
	char *s;

	assert_non_null(o);
	s = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	return s;
}

static void test_payload_builders(void **state)
{
	const char *args[] = {"Hello", "from VM", NULL};
	char *s, *vm_id = NULL;
	cJSON *o;

	(void)state;
	o = aeth__execute_payload_tree(VMID, "echo", args);
	assert_int_equal(aeth__payload_check_tree(&vm_id, "vm:execute", o), 0);
	assert_string_equal(vm_id, VMID);
	free(vm_id);
	s = print_tree(o);
	assert_string_equal(s, "{\"vm_id\":\"" VMID "\",\"command\":\"echo\","
			    "\"args\":[\"Hello\",\"from VM\"]}");
	assert_int_equal(aeth_task_payload_validate("vm:execute", s, strlen(s)), 0);
	free(s);
	s = print_tree(aeth__delete_payload_tree(VMID));
	assert_string_equal(s, "{\"vm_id\":\"" VMID "\"}");
	free(s);
}

/* One parse tells the checks, the VM a task targets and whether a
 * rejected payload was JSON at all. */
static void test_payload_check(void **state)
{
	const char *exec = "{\"vm_id\":\"" VMID "\",\"command\":\"ls\"}";
	char *vm_id = NULL;
	bool json = false;

	(void)state;
	assert_int_equal(aeth__payload_check(&vm_id, &json, "vm:execute", exec,
					     strlen(exec)), 0);
	assert_true(json);
	assert_string_equal(vm_id, VMID);
	free(vm_id);
	assert_int_equal(aeth__payload_check(&vm_id, &json, "vm:execute",
					     "{\"vm_id\":1}", 11), AETH_EINVALID);
	assert_true(json);
	assert_null(vm_id);
	assert_int_equal(aeth__payload_check(&vm_id, &json, "app:x", "nope", 4),
			 AETH_EINVALID);
	assert_false(json);
	assert_int_equal(aeth__payload_check(NULL, &json, "app:x", "[1,2]", 5), 0);
	assert_true(json);
	assert_int_equal(aeth__payload_check(NULL, &json, "vm:delete", "[1]", 3),
			 AETH_EINVALID);
	assert_true(json);
}

static void test_utf8_sanitize(void **state)
{
	char *s;

	(void)state;
	/* overlong '/', surrogate, truncated sequence */
	s = aeth__utf8_sanitize("\xc0\xaf|\xed\xa0\x80|\xe2\x82", 10);
	assert_non_null(s);
	assert_null(strchr(s, '\xc0'));
	assert_null(strstr(s, "\xed\xa0"));
	free(s);
	s = aeth__utf8_sanitize("\xf0\x9f\x98\x80 ok", 7);
	assert_string_equal(s, "\xf0\x9f\x98\x80 ok");
	free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_create_seed),
		cmocka_unit_test(test_create_invalid),
		cmocka_unit_test(test_create_catalogue),
		cmocka_unit_test(test_execute_seed),
		cmocka_unit_test(test_execute_extras),
		cmocka_unit_test(test_execute_invalid),
		cmocka_unit_test(test_delete_and_types),
		cmocka_unit_test(test_results),
		cmocka_unit_test(test_payload_builders),
		cmocka_unit_test(test_payload_check),
		cmocka_unit_test(test_utf8_sanitize),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
