/*
 * bench/e2e - what the distributed path adds to a vm:execute: time from
 * aeth_client_submit_execute() to the result back in aeth_client_wait(),
 * minus the time the worker spent in the exec itself (executions.duration_ms,
 * measured around the exec by the worker). Runs an in-process worker (one
 * slot) and one TCG guest. Prints a table and, with -json, JSON.
 *
 * Needs AETH_DATABASE_URL and AETH_REDIS_URL (scripts/services.sh env) and
 * the guest image. Usage: bench_e2e [-n N] [-json]
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cJSON.h>
#include <libpq-fe.h>

#include "aetherium/aetherium.h"

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void *run_worker(void *w)
{
	aeth_worker_run(w);
	return NULL;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double pct(double *v, int n, double p)
{
	return v[(int)((n - 1) * p + 0.5)];
}

/* result.<key> of a task's JSON as a new string, or NULL. */
static char *result_field(const char *json, const char *key)
{
	cJSON *task = cJSON_Parse(json);
	cJSON *result = cJSON_GetObjectItemCaseSensitive(task, "result");
	cJSON *v = cJSON_GetObjectItemCaseSensitive(result, key);
	char *out = cJSON_IsString(v) ? strdup(v->valuestring) : NULL;

	cJSON_Delete(task);
	return out;
}

static double exec_ms(PGconn *pg, const char *task_id)
{
	const char *params[1] = {task_id};
	PGresult *r = PQexecParams(pg, "SELECT duration_ms FROM executions WHERE "
				   "task_id = $1", 1, NULL, params, NULL, NULL, 0);
	double v = PQntuples(r) == 1 ? atof(PQgetvalue(r, 0, 0)) : -1;

	PQclear(r);
	return v;
}

int main(int argc, char **argv)
{
	aeth_worker_options wo = AETH_WORKER_OPTIONS_INIT;
	int n = 30, as_json = 0;
	aeth_worker *w = NULL;
	aeth_client *c = NULL;
	pthread_t th;
	aeth_create_options create = AETH_CREATE_OPTIONS_INIT;
	char id[37], wid[64], *json = NULL, *vm_id;
	double *total, *inner, *over;
	const char *args[] = {NULL};
	PGconn *pg;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-n") && i + 1 < argc)
			n = atoi(argv[++i]);
		else if (!strcmp(argv[i], "-json"))
			as_json = 1;
	}
	if (n < 2)
		n = 2;
	snprintf(wid, sizeof(wid), "bench-%d", (int)getpid());
	wo.id = wid;
	wo.concurrency = 1;
	wo.migrate = 1;
	if (aeth_init() != 0 || aeth_worker_new_from_config(&w, NULL, &wo) != 0 ||
	    aeth_worker_handle_builtin(w) != 0 || aeth_client_open_config(&c, NULL) != 0) {
		fprintf(stderr, "bench_e2e: %s\n", aeth_error_last());
		return 1;
	}
	pthread_create(&th, NULL, run_worker, w);
	if (aeth_worker_wait_ready(w, 30000) != 0) {
		fprintf(stderr, "bench_e2e: the worker did not start: %s\n",
			aeth_error_last());
		aeth_worker_stop(w);
		pthread_join(th, NULL);
		aeth_worker_free(w);
		aeth_client_free(c);
		return 1;
	}
	create.name = "bench";
	if (aeth_client_submit_create_ex(id, c, &create, NULL) != 0 ||
	    aeth_client_wait(&json, c, id, 180000, NULL, NULL) != 0 ||
	    !(vm_id = result_field(json, "vm_id"))) {
		fprintf(stderr, "bench_e2e: create: %s %s\n", aeth_error_last(),
			json ? json : "");
		aeth_worker_stop(w);
		pthread_join(th, NULL);
		return 1;
	}
	aeth_free(json);
	pg = PQconnectdb(getenv("AETH_DATABASE_URL"));
	total = calloc((size_t)n, sizeof(double));
	inner = calloc((size_t)n, sizeof(double));
	over = calloc((size_t)n, sizeof(double));
	for (int i = 0; i < n; i++) {
		double t0 = now_ms();

		if (aeth_client_submit_execute(id, c, vm_id, "true", args,
					       NULL) != 0 ||
		    aeth_client_wait(&json, c, id, 60000, NULL, NULL) != 0) {
			fprintf(stderr, "bench_e2e: execute: %s\n", aeth_error_last());
			break;
		}
		total[i] = now_ms() - t0;
		aeth_free(json);
		inner[i] = exec_ms(pg, id);
		over[i] = total[i] - inner[i];
	}
	aeth_client_submit_delete(id, c, vm_id, NULL);
	aeth_client_wait(&json, c, id, 60000, NULL, NULL);
	aeth_free(json);
	aeth_worker_stop(w);
	pthread_join(th, NULL);
	qsort(total, (size_t)n, sizeof(double), cmp);
	qsort(inner, (size_t)n, sizeof(double), cmp);
	qsort(over, (size_t)n, sizeof(double), cmp);
	if (as_json)
		printf("{\"n\": %d, \"command\": \"true\", "
		       "\"end_to_end_ms\": {\"p50\": %.2f, \"p90\": %.2f}, "
		       "\"exec_in_worker_ms\": {\"p50\": %.2f, \"p90\": %.2f}, "
		       "\"overhead_ms\": {\"p50\": %.2f, \"p90\": %.2f}}\n", n,
		       pct(total, n, .5), pct(total, n, .9), pct(inner, n, .5),
		       pct(inner, n, .9), pct(over, n, .5), pct(over, n, .9));
	printf("vm:execute 'true', %d runs, one slot, TCG guest\n", n);
	printf("%-34s %8s %8s\n", "", "p50 ms", "p90 ms");
	printf("%-34s %8.2f %8.2f\n", "submit -> result (end to end)", pct(total, n, .5), pct(total, n, .9));
	printf("%-34s %8.2f %8.2f\n", "exec in the worker (executions)", pct(inner, n, .5), pct(inner, n, .9));
	printf("%-34s %8.2f %8.2f\n", "overhead (queue, DB, routing)", pct(over, n, .5), pct(over, n, .9));
	PQfinish(pg);
	aeth_client_free(c);
	aeth_worker_free(w);
	aeth_shutdown();
	free(total);
	free(inner);
	free(over);
	free(vm_id);
	return 0;
}
