/*
 * bench/pool - vm:create from a warm pool: the time from
 * aeth_client_submit_create() to the result in aeth_client_wait(), with an
 * in-process worker keeping pool "b" (-size VMs of the default shape,
 * snapshot-restored) and the result's own ready_ms (the worker's handler
 * alone). For scale, the same for creates of a shape no pool has (they
 * restore from a snapshot: -cold N of them). Each VM is deleted before the
 * next create, which comes -gap ms later so the pool is full again
 * (a refill restores in ~150-300 ms here).
 *
 * Needs AETH_DATABASE_URL, AETH_REDIS_URL (scripts/services.sh env) and the
 * guest image. Usage: bench_pool [-n N] [-size K] [-gap MS] [-cold N] [-json]
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cJSON.h>

#include "aetherium/aetherium.h"

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static char run_error[1024];

static void *run_worker(void *w)
{
	if (aeth_worker_run(w) != 0)
		snprintf(run_error, sizeof(run_error), "%s", aeth_error_last());
	return NULL;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double pct(double *v, int n, double p)
{
	if (n <= 0)
		return -1;
	qsort(v, (size_t)n, sizeof(*v), cmp);
	return v[(int)((n - 1) * p + 0.5)];
}

/* How many VMs pool "b" of worker `wid` has ready (the registry: it is
 * refreshed every few seconds), -1 if unknown. */
static int pool_ready(aeth_client *c, const char *wid)
{
	char *json = NULL;
	cJSON *a, *w;
	int ready = -1;

	if (aeth_client_list(&json, c, "workers", 0) != 0)
		return -1;
	a = cJSON_Parse(json);
	aeth_free(json);
	cJSON_ArrayForEach(w, a) {
		cJSON *id = cJSON_GetObjectItemCaseSensitive(w, "id");
		cJSON *pools = cJSON_GetObjectItemCaseSensitive(w, "pools");
		cJSON *p0 = cJSON_GetArrayItem(pools, 0);
		cJSON *r = cJSON_GetObjectItemCaseSensitive(p0, "ready");

		if (cJSON_IsString(id) && !strcmp(id->valuestring, wid) &&
		    cJSON_IsNumber(r))
			ready = (int)r->valuedouble;
	}
	cJSON_Delete(a);
	return ready;
}

/* One vm:create of `memory_mb` (0: the default shape), its VM deleted
 * afterwards (not timed). The submit -> result time, the result's
 * ready_ms and origin. */
static int one_create(aeth_client *c, unsigned int memory_mb, double *total,
		      double *ready, char origin[16])
{
	char id[37], did[37], *json = NULL, *dj = NULL;
	cJSON *t, *res, *v;
	double t0 = now_ms();
	int rc;

	aeth_create_options vm = AETH_CREATE_OPTIONS_INIT;

	vm.name = "bench-pool";
	vm.memory_mb = memory_mb;
	rc = aeth_client_submit_create_ex(id, c, &vm, NULL);
	if (rc == 0)
		rc = aeth_client_wait(&json, c, id, 180000, NULL, NULL);
	*total = now_ms() - t0;
	if (rc)
		return rc;
	t = cJSON_Parse(json);
	aeth_free(json);
	res = cJSON_GetObjectItemCaseSensitive(t, "result");
	v = cJSON_GetObjectItemCaseSensitive(res, "ready_ms");
	*ready = cJSON_IsNumber(v) ? v->valuedouble : -1;
	v = cJSON_GetObjectItemCaseSensitive(res, "origin");
	snprintf(origin, 16, "%s", cJSON_IsString(v) ? v->valuestring : "?");
	v = cJSON_GetObjectItemCaseSensitive(res, "vm_id");
	if (!cJSON_IsString(v)) {
		cJSON_Delete(t);
		return AETH_ERROR;
	}
	if (aeth_client_submit_delete(did, c, v->valuestring, NULL) == 0)
		aeth_client_wait(&dj, c, did, 60000, NULL, NULL);
	aeth_free(dj);
	cJSON_Delete(t);
	return 0;
}

int main(int argc, char **argv)
{
	aeth_worker_options wo = AETH_WORKER_OPTIONS_INIT;
	int n = 20, size = 2, gap = 1000, ncold = 3, as_json = 0, pooled = 0;
	aeth_config *cfg = NULL;
	aeth_worker *w = NULL;
	aeth_client *c = NULL;
	pthread_t th;
	char wid[64], text[16];
	double *total, *ready, cold_total[16], cold_ready[16], t0;
	int rc = 0, done = 0, cdone = 0;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-n") && i + 1 < argc)
			n = atoi(argv[++i]);
		else if (!strcmp(argv[i], "-size") && i + 1 < argc)
			size = atoi(argv[++i]);
		else if (!strcmp(argv[i], "-gap") && i + 1 < argc)
			gap = atoi(argv[++i]);
		else if (!strcmp(argv[i], "-cold") && i + 1 < argc)
			ncold = atoi(argv[++i]);
		else if (!strcmp(argv[i], "-json"))
			as_json = 1;
	}
	if (n < 2 || size < 1 || size > 20 || ncold < 0 || ncold > 16)
		return 2;
	snprintf(wid, sizeof(wid), "benchpool-%d", (int)getpid());
	snprintf(text, sizeof(text), "%d", size);
	wo.id = wid;
	wo.concurrency = 2;
	wo.migrate = 1;
	if (aeth_init() != 0 || aeth_config_load(&cfg, NULL) != 0 ||
	    aeth_config_set(cfg, "pool.b.size", text) != 0 ||
	    aeth_config_set(cfg, "worker.delete_vms_on_stop", "true") != 0 ||
	    aeth_worker_new_from_config(&w, cfg, &wo) != 0 ||
	    aeth_worker_handle_builtin(w) != 0 || aeth_client_open_config(&c, NULL) != 0) {
		fprintf(stderr, "bench_pool: %s\n", aeth_error_last());
		return 1;
	}
	pthread_create(&th, NULL, run_worker, w);
	if (aeth_worker_wait_ready(w, 30000) != 0) {
		aeth_worker_stop(w);
		pthread_join(th, NULL);
		fprintf(stderr, "bench_pool: the worker did not start: %s\n",
			run_error[0] ? run_error : aeth_error_last());
		aeth_worker_free(w);
		aeth_client_free(c);
		return 1;
	}
	t0 = now_ms();
	while (pool_ready(c, wid) < size) {
		if (now_ms() - t0 > 300000) {
			fprintf(stderr, "bench_pool: pool not full after 300 s\n");
			rc = 1;
			goto out;
		}
		usleep(200 * 1000);
	}
	fprintf(stderr, "pool full (%d) after %.1f s\n", size, (now_ms() - t0) / 1000);
	total = calloc((size_t)n, sizeof(double));
	ready = calloc((size_t)n, sizeof(double));
	for (; done < n; done++) {
		char origin[16];

		if (one_create(c, 0, &total[done], &ready[done], origin) != 0) {
			fprintf(stderr, "bench_pool: create: %s\n", aeth_error_last());
			rc = 1;
			break;
		}
		pooled += !strcmp(origin, "pool");
		fprintf(stderr, "create %d: %.1f ms (%s, %.0f ms in the worker)\n", done,
			total[done], origin, ready[done]);
		usleep((useconds_t)gap * 1000);
	}
	for (; cdone < ncold; cdone++) {
		char origin[16];

		if (one_create(c, 320, &cold_total[cdone], &cold_ready[cdone],
			       origin) != 0)
			break;
		fprintf(stderr, "other shape %d: %.1f ms (%s)\n", cdone,
			cold_total[cdone], origin);
	}
	if (as_json)
		printf("{\"n\": %d, \"pool_size\": %d, \"from_pool\": %d, "
		       "\"create_ms\": {\"p50\": %.2f, \"p90\": %.2f, \"max\": %.2f}, "
		       "\"ready_ms_in_worker\": {\"p50\": %.1f, \"p90\": %.1f}, "
		       "\"other_shape_create_ms\": {\"n\": %d, \"p50\": %.1f}}\n",
		       done, size, pooled, pct(total, done, .5), pct(total, done, .9),
		       pct(total, done, 1), pct(ready, done, .5), pct(ready, done, .9),
		       cdone, pct(cold_total, cdone, .5));
	printf("vm:create, %d from a warm pool of %d (%d handed out), TCG\n", done,
	       size, pooled);
	printf("%-40s %8s %8s\n", "", "p50 ms", "p90 ms");
	printf("%-40s %8.2f %8.2f\n", "submit -> result (pool)", pct(total, done, .5),
	       pct(total, done, .9));
	printf("%-40s %8.1f %8.1f\n", "in the worker (result ready_ms)",
	       pct(ready, done, .5), pct(ready, done, .9));
	printf("%-40s %8.1f %8s\n", "submit -> result (shape without pool)",
	       pct(cold_total, cdone, .5), "");
	free(total);
	free(ready);
out:
	aeth_worker_stop(w);
	pthread_join(th, NULL);
	aeth_worker_free(w);
	aeth_client_free(c);
	aeth_config_free(cfg);
	aeth_shutdown();
	return rc;
}
