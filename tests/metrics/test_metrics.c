/*
 * lib/metrics: the registry and its Prometheus text (no services).
 * Counters, gauges and histograms from many threads add up exactly;
 * label sets are bounded ("other" past the limit); label values are
 * escaped; the text passes `promtool check metrics` (Debian's prometheus
 * package; without it this test fails, saying so: scripts/setup.sh); and
 * docs/metrics.md lists exactly the metrics of the catalogue, with their
 * types and labels.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "metrics/metrics.h"

#define THREADS 4
#define PER_THREAD 20000

static void *hammer(void *arg)
{
	(void)arg;
	for (int i = 0; i < PER_THREAD; i++) {
		aeth__metric_inc(AETH__M_TASKS, "t:hammer", i % 2 ? "succeeded"
								: "failed");
		aeth__metric_observe(AETH__M_TASK_SECONDS, 0.02, "t:hammer", NULL);
		aeth__metric_inc(AETH__M_REDIS_ERRORS, NULL, NULL);
	}
	return NULL;
}

static char *render(void)
{
	char *text = NULL;
	size_t len = 0;

	assert_int_equal(aeth__metrics_render(&text, &len, AETH__PART_ALL), 0);
	assert_int_equal(strlen(text), len);
	return text;
}

static void test_threads_add_up(void **state)
{
	pthread_t th[THREADS];
	char *text, line[256];

	(void)state;
	for (int i = 0; i < THREADS; i++)
		assert_int_equal(pthread_create(&th[i], NULL, hammer, NULL), 0);
	for (int i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL);
	assert_true(aeth__metric_value(AETH__M_TASKS, "t:hammer", "succeeded") ==
		    THREADS * PER_THREAD / 2);
	assert_true(aeth__metric_value(AETH__M_TASK_SECONDS, "t:hammer", NULL) ==
		    THREADS * PER_THREAD);
	text = render();
	snprintf(line, sizeof(line),
		 "aeth_tasks_total{type=\"t:hammer\",outcome=\"failed\"} %d\n",
		 THREADS * PER_THREAD / 2);
	assert_non_null(strstr(text, line));
	/* cumulative buckets: 0.02 is above 0.01, within 0.025 */
	snprintf(line, sizeof(line), "aeth_task_duration_seconds_bucket{type="
		 "\"t:hammer\",le=\"0.01\"} 0\n");
	assert_non_null(strstr(text, line));
	snprintf(line, sizeof(line), "aeth_task_duration_seconds_bucket{type="
		 "\"t:hammer\",le=\"0.025\"} %d\n", THREADS * PER_THREAD);
	assert_non_null(strstr(text, line));
	snprintf(line, sizeof(line), "aeth_task_duration_seconds_bucket{type="
		 "\"t:hammer\",le=\"+Inf\"} %d\n", THREADS * PER_THREAD);
	assert_non_null(strstr(text, line));
	snprintf(line, sizeof(line), "aeth_task_duration_seconds_count{type="
		 "\"t:hammer\"} %d\n", THREADS * PER_THREAD);
	assert_non_null(strstr(text, line));
	assert_non_null(strstr(text, "# TYPE aeth_tasks_total counter\n"));
	assert_non_null(strstr(text, "# TYPE aeth_task_duration_seconds histogram\n"));
	assert_non_null(strstr(text, "# HELP aeth_vms_running "));
	/* an unlabelled metric shows from the start */
	assert_non_null(strstr(text, "\naeth_agent_reconnects_total 0\n"));
	free(text);
}

static void test_labels_bounded_and_escaped(void **state)
{
	char name[32], *text;

	(void)state;
	for (int i = 0; i < 500; i++) {
		snprintf(name, sizeof(name), "t:many%d", i);
		aeth__metric_inc(AETH__M_TASK_RETRIES, name, NULL);
	}
	/* past the bound: one "other" series holds the rest */
	assert_true(aeth__metric_value(AETH__M_TASK_RETRIES, "other", NULL) ==
		    500 - (AETH__METRIC_MAX_SERIES - 1));
	assert_true(aeth__metric_value(AETH__M_TASK_RETRIES, "t:many499", NULL) == 0);
	aeth__metric_inc(AETH__M_TASKS_DEAD, "we\"ird\\type\nx", NULL);
	/* a counter does not go down; NaN is dropped */
	aeth__metric_add(AETH__M_TASKS_DEAD, -5, "we\"ird\\type\nx", NULL);
	aeth__metric_add(AETH__M_TASKS_DEAD, 0.0 / 0.0, "we\"ird\\type\nx", NULL);
	text = render();
	assert_non_null(strstr(text, "aeth_tasks_dead_total{type=\"we\\\"ird\\\\"
				     "type\\nx\"} 1\n"));
	{
		size_t n = 0;
		for (char *p = text; (p = strstr(p, "aeth_task_retries_total{")); p++)
			n++;
		assert_int_equal(n, AETH__METRIC_MAX_SERIES);
	}
	free(text);
}

/* Collectors run at each render; their gauges start from 0 each time. */
static void collect_two(void *ud)
{
	aeth__metric_add(AETH__M_VMS_RUNNING, *(double *)ud, NULL, NULL);
}

static void test_collectors(void **state)
{
	double a = 2, b = 3;
	char *text;

	(void)state;
	assert_int_equal(aeth__metrics_collector_add(collect_two, &a), 0);
	assert_int_equal(aeth__metrics_collector_add(collect_two, &b), 0);
	for (int i = 0; i < 3; i++) {
		text = render();
		assert_non_null(strstr(text, "\naeth_vms_running 5\n"));
		free(text);
	}
	aeth__metrics_collector_remove(collect_two, &a);
	text = render();
	assert_non_null(strstr(text, "\naeth_vms_running 3\n"));
	free(text);
	aeth__metrics_collector_remove(collect_two, &b);
	text = render();
	assert_non_null(strstr(text, "\naeth_vms_running 0\n"));
	free(text);
}

static void test_promtool(void **state)
{
	char path[] = "/tmp/aeth-metrics-XXXXXX", cmd[256], *text;
	FILE *f;
	int fd, rc;

	(void)state;
	if (system("command -v promtool >/dev/null 2>&1") != 0)
		fail_msg("promtool not found: install Debian's prometheus package "
			 "(scripts/setup.sh)");
	aeth__metric_observe(AETH__M_VM_BOOT_SECONDS, 2.5, "cold", NULL);
	aeth__metric_inc(AETH__M_VM_BOOTS, "cold", "ok");
	aeth__metric_inc(AETH__M_QUEUE_SCRAPE_ERRORS, NULL, NULL);
	aeth__metric_set(AETH__M_QUEUE_TASKS, 7, "default", "pending");
	aeth__metric_add3(AETH__M_GW_REQUESTS, 1, "POST", "/v1/vms", "4xx");
	aeth__metric_observe(AETH__M_GW_REQUEST_SECONDS, 0.003, "/v1/vms", NULL);
	aeth__metric_set(AETH__M_POOL_VMS, 2, "small", "ready");
	text = render();
	fd = mkstemp(path);
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	fputs(text, f);
	fclose(f);
	free(text);
	snprintf(cmd, sizeof(cmd), "promtool check metrics < %s", path);
	rc = system(cmd);
	if (rc != 0) {
		snprintf(cmd, sizeof(cmd), "cat %s >&2", path);
		(void)!system(cmd);
	}
	unlink(path);
	assert_int_equal(rc, 0);
}

/* Three labels, and each program's /metrics shows its own rows only. */
static void test_parts_and_three_labels(void **state)
{
	char *text = NULL;
	size_t len = 0;

	(void)state;
	aeth__metric_add3(AETH__M_GW_REQUESTS, 1, "GET", "/v1/vms/{id}", "2xx");
	aeth__metric_add3(AETH__M_GW_REQUESTS, 2, "GET", "/v1/vms/{id}", "2xx");
	aeth__metric_add3(AETH__M_GW_REQUESTS, 1, "GET", "/v1/vms/{id}", "4xx");
	assert_true(aeth__metric_value3(AETH__M_GW_REQUESTS, "GET",
					"/v1/vms/{id}", "2xx") == 3);
	aeth__metric_inc(AETH__M_TASKS, "t:parts", "succeeded");
	assert_int_equal(aeth__metrics_render(&text, &len, AETH__PART_GATEWAY), 0);
	assert_non_null(strstr(text, "aeth_gateway_requests_total{method=\"GET\","
				     "route=\"/v1/vms/{id}\",status=\"2xx\"} 3\n"));
	assert_non_null(strstr(text, "\naeth_gateway_connections 0\n"));
	assert_null(strstr(text, "aeth_tasks_total"));
	assert_null(strstr(text, "aeth_vms_running"));
	free(text);
	assert_int_equal(aeth__metrics_render(&text, &len, AETH__PART_WORKER), 0);
	assert_non_null(strstr(text, "aeth_tasks_total{type=\"t:parts\""));
	assert_null(strstr(text, "aeth_gateway_"));
	free(text);
}

/* docs/metrics.md has a table row "| `name` | type | labels | ..." for
 * each metric of the catalogue, and no other. */
static void test_docs_list_the_catalogue(void **state)
{
	const char *root = getenv("AETH_SOURCE_ROOT");
	static const char *const types[] = {"counter", "gauge", "histogram"};
	char path[512], line[1024];
	bool seen[AETH__M_COUNT] = {false};
	FILE *f;
	int rows = 0;

	(void)state;
	snprintf(path, sizeof(path), "%s/docs/metrics.md", root ? root : ".");
	f = fopen(path, "r");
	if (!f)
		fail_msg("cannot read %s", path);
	while (fgets(line, sizeof(line), f)) {
		char name[128], type[32], labels[128];
		size_t id;
		if (sscanf(line, "| `%127[a-z_]` | %31[a-z] | %127[^|]|", name,
			   type, labels) != 3)
			continue;
		rows++;
		for (id = 0; id < AETH__M_COUNT; id++)
			if (!strcmp(aeth__metric_defs[id].name, name))
				break;
		if (id == AETH__M_COUNT)
			fail_msg("docs/metrics.md lists %s, which the library does "
				 "not export (lib/metrics/catalog.c)", name);
		seen[id] = true;
		if (strcmp(type, types[aeth__metric_defs[id].type]))
			fail_msg("docs/metrics.md: %s is a %s, not a %s", name,
				 types[aeth__metric_defs[id].type], type);
		for (size_t l = 0; l < AETH__METRIC_MAX_LABELS; l++)
			if (aeth__metric_defs[id].labels[l] &&
			    !strstr(labels, aeth__metric_defs[id].labels[l]))
				fail_msg("docs/metrics.md: %s lacks its label %s",
					 name, aeth__metric_defs[id].labels[l]);
	}
	fclose(f);
	for (size_t id = 0; id < AETH__M_COUNT; id++)
		if (!seen[id])
			fail_msg("docs/metrics.md does not list %s",
				 aeth__metric_defs[id].name);
	assert_int_equal(rows, AETH__M_COUNT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_threads_add_up),
		cmocka_unit_test(test_labels_bounded_and_escaped),
		cmocka_unit_test(test_collectors),
		cmocka_unit_test(test_parts_and_three_labels),
		cmocka_unit_test(test_promtool),
		cmocka_unit_test(test_docs_list_the_catalogue),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
