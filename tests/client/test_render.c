/*
 * aeth-submit's text (aetherium/unstable/client.h): tables and task
 * summaries from the client's JSON. No services.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "aetherium/aetherium.h"
#define AETH_UNSTABLE
#include "aetherium/unstable/client.h"

#define VMID "0b6f3f0e-4a43-4c1e-9d55-3c2f1e0a9b7d"

/* Tables for humans: a value cut to its column ends in '~'; one that
 * fits is shown whole. */
static void test_render_cut_marked(void **state)
{
	char err[400], json[800], *text = NULL, *line;

	(void)state;
	memset(err, 'e', sizeof(err) - 1);
	err[sizeof(err) - 1] = '\0';
	snprintf(json, sizeof(json), "[{\"id\": \"%s\", \"type\": "
		 "\"a-very-long-custom-type\", \"status\": \"failed\", "
		 "\"retry_count\": 0, \"error\": \"%s\"}, {\"id\": \"%s\", "
		 "\"type\": \"vm:execute\", \"status\": \"completed\", "
		 "\"error\": \"short\"}]", VMID, err, VMID);
	assert_int_equal(aeth_client_render(&text, json, "tasks"), 0);
	line = strchr(text, '\n') + 1;
	/* TYPE is 10 wide: 9 characters and the mark */
	assert_non_null(strstr(line, "  a-very-lo~  failed"));
	/* the last column keeps 254 characters and the mark */
	assert_non_null(strstr(line, "  eeee"));
	assert_int_equal(strchr(line, '\n')[-1], '~');
	assert_int_equal(strchr(line, '\n') - strstr(line, "  eeee") - 2, 255);
	line = strchr(line, '\n') + 1;
	assert_non_null(strstr(line, "  vm:execute  completed"));
	assert_non_null(strstr(line, "  short\n"));
	aeth_free(text);
}

/* -status of a vm:execute: what the result adds to the seed's fields
 * (timed out, signal, duration, cut or binary output) is shown. */
static void test_render_execute_flags(void **state)
{
	char *text = NULL;
	const char *json = "{\"id\": \"" VMID "\", \"type\": \"vm:execute\", "
		"\"status\": \"completed\", \"result\": {\"vm_id\": \"" VMID "\", "
		"\"exit_code\": 143, \"stdout\": \"a\\ufffdb\", \"stderr\": \"\", "
		"\"stdout_truncated\": true, \"stderr_truncated\": false, "
		"\"timed_out\": true, \"signal\": 15, \"duration_ms\": 1040, "
		"\"stdout_b64\": \"Yf9i\"}}";

	(void)state;
	assert_int_equal(aeth_client_render(&text, json, "task"), 0);
	assert_non_null(strstr(text, "  Exit code: 143 (timed out) (signal 15), 1040 ms\n"));
	assert_non_null(strstr(text, "[stdout cut: the worker keeps 256 KiB]"));
	assert_non_null(strstr(text, "[stdout is not UTF-8: -json has its bytes in stdout_b64]"));
	assert_null(strstr(text, "[stderr"));
	aeth_free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_render_cut_marked),
		cmocka_unit_test(test_render_execute_flags),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
