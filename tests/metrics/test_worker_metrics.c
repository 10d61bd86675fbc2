/*
 * A real worker with metrics.listen and logging.format json, real Redis
 * and PostgreSQL: it runs 25 tasks that succeed and 3 that fail for
 * good; then its GET /metrics passes `promtool check metrics` and shows
 * those counts and its queue's depths, /healthz says ready, every
 * progress line is a JSON object with the worker and (for a task's
 * lines) the task id; and a real Prometheus (Debian's package) scraping
 * the worker every second returns, through its query API, the task
 * counter that matches what ran. Suite services; needs the prometheus
 * package (scripts/setup.sh) and fails saying so without it.
 */
#include "../queue/qtest.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/wait.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>

#include "internal.h"
#include "metrics/metrics.h"
#include "pg.h"
#include "port.h"
#include "worker/worker_internal.h"

#define N_OK 25
#define N_FAIL 3

static pthread_mutex_t lines_mu = PTHREAD_MUTEX_INITIALIZER;
static aeth__buf lines = AETH__BUF_INIT;

static void on_event(const char *task_id, const char *line, void *userdata)
{
	(void)task_id;
	(void)userdata;
	pthread_mutex_lock(&lines_mu);
	aeth__buf_printf(&lines, "%s\n", line);
	pthread_mutex_unlock(&lines_mu);
}

static int h_ok(aeth_task *t, void *ud)
{
	(void)ud;
	return aeth_task_set_result(t, "{\"ok\":true}");
}

static int h_fail(aeth_task *t, void *ud)
{
	(void)ud;
	return aeth_task_fail(t, 0, "told to fail");
}

static void *run_worker(void *w)
{
	if (aeth_worker_run(w) != 0)
		fprintf(stderr, "aeth_worker_run: %s\n", aeth_error_last());
	return NULL;
}

static size_t on_body(char *d, size_t s, size_t n, void *ud)
{
	aeth__buf_append(ud, d, s * n);
	return s * n;
}

static long http_get(const char *url, aeth__buf *body)
{
	CURL *c = curl_easy_init();
	long status = -1;

	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, body);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
	if (curl_easy_perform(c) == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(c);
	return status;
}

static bool wait_counts(int64_t ms)
{
	int64_t until = aeth__now_ms() + ms;

	while (aeth__now_ms() < until) {
		if (aeth__metric_value(AETH__M_TASKS, "m:ok", "succeeded") == N_OK &&
		    aeth__metric_value(AETH__M_TASKS, "m:fail", "failed") == N_FAIL)
			return true;
		aeth__sleep_ms(50);
	}
	return false;
}

static void check_json_lines(void)
{
	int n = 0, with_task = 0;
	char *save = NULL, *copy;

	pthread_mutex_lock(&lines_mu);
	copy = strdup(lines.data ? lines.data : "");
	pthread_mutex_unlock(&lines_mu);
	for (char *l = strtok_r(copy, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		cJSON *o = cJSON_Parse(l);
		const char *worker, *task, *msg, *time, *level;

		if (!o)
			fail_msg("progress line is not JSON: %s", l);
		time = cJSON_GetStringValue(cJSON_GetObjectItem(o, "time"));
		level = cJSON_GetStringValue(cJSON_GetObjectItem(o, "level"));
		worker = cJSON_GetStringValue(cJSON_GetObjectItem(o, "worker"));
		task = cJSON_GetStringValue(cJSON_GetObjectItem(o, "task_id"));
		msg = cJSON_GetStringValue(cJSON_GetObjectItem(o, "message"));
		assert_non_null(time);
		assert_true(strlen(time) == 24 && time[23] == 'Z');
		assert_string_equal(level, "info");
		assert_string_equal(worker, "wmetrics");
		assert_non_null(msg);
		if (strstr(msg, "completed in") || strstr(msg, "failed after")) {
			assert_non_null(task);
			assert_true(aeth__uuid_valid(task));
			assert_non_null(strstr(msg, task));
			with_task++;
		}
		n++;
		cJSON_Delete(o);
	}
	free(copy);
	assert_true(n > N_OK);
	assert_int_equal(with_task, N_OK + N_FAIL);
}

static void check_promtool(const char *text)
{
	char path[] = "/tmp/aeth-wmetrics-XXXXXX", cmd[256];
	int fd = mkstemp(path), rc;

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	snprintf(cmd, sizeof(cmd), "promtool check metrics < %s", path);
	rc = system(cmd);
	unlink(path);
	assert_int_equal(rc, 0);
}

/* Prometheus scrapes the worker; its query API must show N_OK. */
static void check_prometheus(int worker_port)
{
	char dir[] = "/tmp/aeth-prom-XXXXXX", cfg[128], data[128], addr[64];
	char url[512], flag_cfg[160], flag_data[160], flag_addr[96];
	int prom_port = aeth_test_free_port();
	int64_t until;
	bool seen = false;
	pid_t pid;
	FILE *f;

	assert_non_null(mkdtemp(dir));
	snprintf(cfg, sizeof(cfg), "%s/prometheus.yml", dir);
	snprintf(data, sizeof(data), "%s/data", dir);
	f = fopen(cfg, "w");
	assert_non_null(f);
	fprintf(f, "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
		"scrape_configs:\n  - job_name: aeth\n    static_configs:\n"
		"      - targets: ['127.0.0.1:%d']\n", worker_port);
	fclose(f);
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", prom_port);
	snprintf(flag_cfg, sizeof(flag_cfg), "--config.file=%s", cfg);
	snprintf(flag_data, sizeof(flag_data), "--storage.tsdb.path=%s", data);
	snprintf(flag_addr, sizeof(flag_addr), "--web.listen-address=%s", addr);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		execlp("prometheus", "prometheus", flag_cfg, flag_data, flag_addr,
		       "--log.level=warn", (char *)NULL);
		_exit(127);
	}
	snprintf(url, sizeof(url), "http://%s/api/v1/query?query="
		 "aeth_tasks_total%%7Btype%%3D%%22m%%3Aok%%22%%2Coutcome%%3D"
		 "%%22succeeded%%22%%7D", addr);
	until = aeth__now_ms() + 120000;
	while (!seen && aeth__now_ms() < until) {
		aeth__buf body = AETH__BUF_INIT;
		if (http_get(url, &body) == 200 && body.data) {
			cJSON *o = cJSON_Parse(body.data);
			cJSON *res = cJSON_GetObjectItem(cJSON_GetObjectItem(o, "data"),
							 "result");
			cJSON *v = cJSON_GetArrayItem(cJSON_GetObjectItem(
				cJSON_GetArrayItem(res, 0), "value"), 1);
			const char *val = cJSON_GetStringValue(v);
			if (val) {
				char want[16];
				snprintf(want, sizeof(want), "%d", N_OK);
				assert_string_equal(val, want);
				seen = true;
			}
			cJSON_Delete(o);
		}
		aeth__buf_free(&body);
		if (!seen)
			aeth__sleep_ms(500);
	}
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
	aeth__rm_rf(dir);
	if (!seen)
		fail_msg("Prometheus at %s never showed aeth_tasks_total for m:ok",
			 addr);
}

static void test_worker_metrics(void **state)
{
	qtest *q = NULL;
	void *qs = NULL;
	char *db = NULL, url[128], line[160];
	aeth_worker_options o = AETH_WORKER_OPTIONS_INIT;
	aeth_queue_enqueue_options eo = AETH_QUEUE_ENQUEUE_OPTIONS_INIT;
	aeth_config *cfg = NULL;
	aeth_worker *w = NULL;
	aeth__buf body = AETH__BUF_INIT;
	pthread_t th;
	int port;

	(void)state;
	if (system("command -v promtool >/dev/null && command -v prometheus "
		   ">/dev/null") != 0)
		fail_msg("promtool/prometheus not found: install Debian's "
			 "prometheus package (scripts/setup.sh)");
	qtest_setup(&qs);
	q = qs;
	if (aeth_test_pg_fresh(&db) != 0)
		fail_msg("%s", aeth_test_pg_error());
	assert_int_equal(aeth_config_load(&cfg, NULL), 0);
	assert_int_equal(aeth_config_set(cfg, "metrics.listen", "127.0.0.1:0"), 0);
	assert_int_equal(aeth_config_set(cfg, "logging.format", "json"), 0);
	o.config = cfg;
	o.id = "wmetrics";
	o.database_url = db;
	o.redis_url = q->url;
	o.redis_ns = q->ns;
	o.queues = "mq";
	o.concurrency = 2;
	o.migrate = 1;
	o.on_event = on_event;
	assert_int_equal(aeth_worker_new(&w, &o), 0);
	assert_int_equal(aeth_worker_handle(w, "m:ok", h_ok, NULL), 0);
	assert_int_equal(aeth_worker_handle(w, "m:fail", h_fail, NULL), 0);
	assert_int_equal(pthread_create(&th, NULL, run_worker, w), 0);
	assert_int_equal(aeth_worker_wait_ready(w, 60000), 0);
	port = aeth__worker_metrics_port(w);
	assert_true(port > 0);

	eo.queue = "mq";
	eo.max_retries = 0;
	for (int i = 0; i < N_OK + N_FAIL; i++) {
		char id[37];
		assert_int_equal(aeth_queue_enqueue(id, q->q, i < N_OK ? "m:ok" :
						    "m:fail", "{}", &eo), 0);
	}
	assert_true(wait_counts(60000));

	snprintf(url, sizeof(url), "http://127.0.0.1:%d/metrics", port);
	assert_int_equal(http_get(url, &body), 200);
	snprintf(line, sizeof(line), "aeth_tasks_total{type=\"m:ok\",outcome="
		 "\"succeeded\"} %d\n", N_OK);
	assert_non_null(strstr(body.data, line));
	snprintf(line, sizeof(line), "aeth_tasks_dead_total{type=\"m:fail\"} %d\n",
		 N_FAIL);
	assert_non_null(strstr(body.data, line));
	snprintf(line, sizeof(line), "aeth_task_duration_seconds_count{type="
		 "\"m:ok\"} %d\n", N_OK);
	assert_non_null(strstr(body.data, line));
	assert_non_null(strstr(body.data, "aeth_queue_tasks{queue=\"mq\",state="
					  "\"pending\"} 0\n"));
	assert_non_null(strstr(body.data, "aeth_queue_tasks{queue=\"worker:wmetrics\","
					  "state=\"active\"} 0\n"));
	assert_non_null(strstr(body.data, "\naeth_worker_slots 2\n"));
	check_promtool(body.data);
	aeth__buf_free(&body);

	snprintf(url, sizeof(url), "http://127.0.0.1:%d/healthz", port);
	assert_int_equal(http_get(url, &body), 200);
	assert_non_null(strstr(body.data, "\"state\":\"ready\""));
	aeth__buf_free(&body);

	check_json_lines();
	check_prometheus(port);

	aeth_worker_stop(w);
	pthread_join(th, NULL);
	/* the endpoint goes with the run */
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/metrics", port);
	assert_true(http_get(url, &body) < 0);
	aeth__buf_free(&body);
	aeth_worker_free(w);
	aeth_config_free(cfg);
	aeth_test_pg_drop(db);
	free(db);
	qtest_teardown(&qs);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_worker_metrics),
	};

	curl_global_init(CURL_GLOBAL_DEFAULT);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
