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

/* ---- vm:file_put / vm:file_get ------------------------------------------- */

static int file_put(const char *json, aeth__file_payload *p)
{
	return aeth__file_put_payload_parse(json, strlen(json), p);
}

static void test_file_put(void **state)
{
	aeth__file_payload p;

	(void)state;
	/* "AAEC/w==": 00 01 02 ff; mode defaults to 0644 */
	assert_int_equal(file_put("{\"vm_id\":\"" VMID "\",\"path\":\"/tmp/a b\","
				  "\"data\":\"AAEC/w==\"}", &p), 0);
	assert_string_equal(p.vm_id, VMID);
	assert_string_equal(p.path, "/tmp/a b");
	assert_int_equal(p.mode, 0644);
	assert_int_equal(p.len, 4);
	assert_memory_equal(p.data, "\x00\x01\x02\xff", 4);
	aeth__file_payload_clear(&p);
	/* an empty file, a mode, null mode = default, unknown fields ignored */
	assert_int_equal(file_put("{\"vm_id\":\"" VMID "\",\"path\":\"/x\","
				  "\"data\":\"\",\"mode\":493,\"new\":1}", &p), 0);
	assert_int_equal(p.len, 0);
	assert_non_null(p.data);
	assert_int_equal(p.mode, 0755);
	aeth__file_payload_clear(&p);
	assert_int_equal(file_put("{\"vm_id\":\"" VMID "\",\"path\":\"/x\","
				  "\"data\":\"YQ==\",\"mode\":null}", &p), 0);
	assert_int_equal(p.mode, 0644);
	assert_int_equal(p.len, 1);
	aeth__file_payload_clear(&p);
	/* the route the submitter takes: the VM it targets */
	assert_true(aeth__task_type_builtin("vm:file_put"));
	assert_true(aeth__task_type_targets_vm("vm:file_get"));
	assert_false(aeth__task_type_targets_vm("vm:create"));
	assert_false(aeth__task_type_targets_vm("vm:file_gets"));
}

#define PUT(rest) "{\"vm_id\":\"" VMID "\"," rest "}"

static void test_file_put_invalid(void **state)
{
	aeth__file_payload p;
	char *big, *json;
	size_t n;

	(void)state;
	expect_invalid("vm:file_put", PUT("\"data\":\"\""), "\"path\" is missing");
	expect_invalid("vm:file_put", PUT("\"path\":\"/x\""), "\"data\" is missing");
	expect_invalid("vm:file_put", PUT("\"path\":\"/x\",\"data\":5"),
		       "\"data\" must be a string");
	expect_invalid("vm:file_put", PUT("\"path\":\"x\",\"data\":\"\""),
		       "must be an absolute path");
	expect_invalid("vm:file_put", PUT("\"path\":\"\",\"data\":\"\""),
		       "\"path\" is empty");
	expect_invalid("vm:file_put", PUT("\"path\":\"/a\\u0000/etc\",\"data\":\"\""),
		       "NUL character");
	expect_invalid("vm:file_put", PUT("\"path\":\"/a\\nb\",\"data\":\"\""),
		       "control characters");
	expect_invalid("vm:file_put", PUT("\"path\":5,\"data\":\"\""),
		       "\"path\" must be a string");
	expect_invalid("vm:file_put", PUT("\"path\":\"/x\",\"data\":\"YQ=\""),
		       "not a multiple of 4");
	expect_invalid("vm:file_put", PUT("\"path\":\"/x\",\"data\":\"Y!==\""),
		       "not of its alphabet");
	expect_invalid("vm:file_put", PUT("\"path\":\"/x\",\"data\":\"Y=Q=\""),
		       "not of its alphabet");
	expect_invalid("vm:file_put", PUT("\"path\":\"/x\",\"data\":\"====\""),
		       "not of its alphabet");
	expect_invalid("vm:file_put", PUT("\"path\":\"/x\",\"data\":\"\",\"mode\":4096"),
		       "\"mode\" must be a whole number from 0 to 4095");
	expect_invalid("vm:file_put", PUT("\"path\":\"/x\",\"data\":\"\",\"mode\":\"644\""),
		       "\"mode\" must be a number");
	expect_invalid("vm:file_put", "{\"path\":\"/x\",\"data\":\"\"}",
		       "\"vm_id\" is missing");
	expect_invalid("vm:file_put", "[]", "must be a JSON object");
	expect_invalid("vm:file_put", PUT("\"path\":\"/x\""" \"data\":\"\""),
		       "not valid JSON");
	/* an escaped backslash before u0000 is not a NUL */
	assert_int_equal(file_put(PUT("\"path\":\"/a\\\\u0000\",\"data\":\"\""), &p), 0);
	assert_string_equal(p.path, "/a\\u0000");
	aeth__file_payload_clear(&p);

	/* a path longer than the limit */
	big = malloc(AETH__GUEST_PATH_MAX + 2);
	assert_non_null(big);
	memset(big, 'a', AETH__GUEST_PATH_MAX + 1);
	big[0] = '/';
	big[AETH__GUEST_PATH_MAX + 1] = '\0';
	json = aeth__sprintf(PUT("\"path\":\"%s\",\"data\":\"\""), big);
	assert_int_equal(aeth__payload_validate("vm:file_put", json, strlen(json)),
			 AETH_ETOOBIG);
	free(json);
	free(big);

	/* one byte more than AETH__FILE_MAX decoded: too big, not decoded */
	n = (AETH__FILE_MAX + 1 + 2) / 3 * 4; /* 8 MiB + 1 = 3 * k: no padding */
	big = malloc(n + 1);
	assert_non_null(big);
	memset(big, 'A', n);
	big[n] = '\0';
	json = aeth__sprintf(PUT("\"path\":\"/x\",\"data\":\"%s\""), big);
	assert_int_equal(file_put(json, &p), AETH_ETOOBIG);
	assert_non_null(strstr(aeth_error_last(), "more than the limit"));
	assert_null(p.data);
	free(json);
	/* exactly AETH__FILE_MAX: fine, and a payload over 4 MiB is taken */
	n = (size_t)AETH__FILE_MAX / 3 * 4 + 4; /* 8 MiB = 3 * k + 2: one '=' */
	big[n - 1] = '=';
	big[n] = '\0';
	json = aeth__sprintf(PUT("\"path\":\"/x\",\"data\":\"%s\""), big);
	assert_int_equal(file_put(json, &p), 0);
	assert_int_equal(p.len, AETH__FILE_MAX);
	aeth__file_payload_clear(&p);
	free(json);
	free(big);
	/* a text past even the file payload's limit is refused unparsed */
	n = AETH__FILE_PAYLOAD_MAX + 1;
	big = malloc(n);
	assert_non_null(big);
	memset(big, ' ', n);
	assert_int_equal(aeth__file_put_payload_parse(big, n, &p), AETH_ETOOBIG);
	free(big);
}

static void test_file_get(void **state)
{
	aeth__file_payload p;
	const char *j = "{\"vm_id\":\"" VMID "\",\"path\":\"/etc/hostname\"}";
	char *id = NULL;
	bool is_json;

	(void)state;
	assert_int_equal(aeth__file_get_payload_parse(j, strlen(j), &p), 0);
	assert_string_equal(p.path, "/etc/hostname");
	assert_null(p.data);
	aeth__file_payload_clear(&p);
	assert_int_equal(aeth__payload_check(&id, &is_json, "vm:file_get", j,
					     strlen(j)), 0);
	assert_string_equal(id, VMID);
	free(id);
	expect_invalid("vm:file_get", "{\"vm_id\":\"" VMID "\"}", "\"path\" is missing");
	expect_invalid("vm:file_get", "{\"vm_id\":\"" VMID "\",\"path\":\"etc\"}",
		       "absolute path");
	expect_invalid("vm:file_get", "{\"vm_id\":\"nope\",\"path\":\"/etc\"}",
		       "is not a VM id");
	expect_invalid("vm:file_get", "{\"vm_id\":\"" VMID "\",\"path\":\"/\\u0000\"}",
		       "NUL character");
}

static void test_file_results(void **state)
{
	unsigned char all[256], *back = NULL;
	size_t len = 0;
	cJSON *o, *d;
	char *s;

	(void)state;
	for (int i = 0; i < 256; i++)
		all[i] = (unsigned char)i;
	s = aeth__file_get_result(VMID, "/bin.dat", all, sizeof(all), 0100600);
	o = cJSON_Parse(s);
	assert_non_null(o);
	assert_int_equal(cJSON_GetObjectItem(o, "size")->valuedouble, 256);
	assert_int_equal(cJSON_GetObjectItem(o, "mode")->valuedouble, 0600);
	assert_string_equal(cJSON_GetObjectItem(o, "path")->valuestring, "/bin.dat");
	d = cJSON_GetObjectItem(o, "data");
	assert_int_equal(aeth__base64_decode(&back, &len, "data", d->valuestring,
					     strlen(d->valuestring), 256), 0);
	assert_int_equal(len, 256);
	assert_memory_equal(back, all, 256);
	free(back);
	/* one byte under the size it holds: too big */
	assert_int_equal(aeth__base64_decode(&back, &len, "data", d->valuestring,
					     strlen(d->valuestring), 255),
			 AETH_ETOOBIG);
	assert_null(back);
	cJSON_Delete(o);
	free(s);
	/* every length mod 3 round trips */
	for (size_t n = 0; n < 7; n++) {
		s = aeth__base64(all + 250, n);
		assert_int_equal(strlen(s), (n + 2) / 3 * 4);
		assert_int_equal(aeth__base64_decode(&back, &len, "x", s, strlen(s),
						     16), 0);
		assert_int_equal(len, n);
		assert_memory_equal(back, all + 250, n);
		free(back);
		free(s);
	}
	s = aeth__file_put_result(VMID, "/x", 3, 0755);
	assert_string_equal(s, "{\"vm_id\":\"" VMID "\",\"path\":\"/x\",\"size\":3,"
			    "\"mode\":493}");
	free(s);
	/* the failure codes the gateway maps */
	assert_string_equal(aeth__file_error_code("vm:file_get: not_found: /x: "
						  "no such file"), "not_found");
	assert_string_equal(aeth__file_error_code("vm:file_put: too_large: x"),
			    "too_large");
	assert_string_equal(aeth__file_error_code("vm:file_get: is_a_directory: /"),
			    "is_a_directory");
	assert_null(aeth__file_error_code("vm:file_get: VM x does not exist"));
	assert_null(aeth__file_error_code("vm:execute: not_found: x"));
	assert_null(aeth__file_error_code("vm:file_get: not_founds: x"));
	assert_null(aeth__file_error_code(NULL));
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
		cmocka_unit_test(test_file_put),
		cmocka_unit_test(test_file_put_invalid),
		cmocka_unit_test(test_file_get),
		cmocka_unit_test(test_file_results),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
