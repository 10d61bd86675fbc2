/*
 * bench/worker - no-op task throughput and enqueue-to-start latency of a
 * real aeth_worker (not the queue client alone): N tasks of the custom
 * type "bench:noop" with a pending tasks row each (as aeth_client_submit
 * writes it) are enqueued with aeth_queue_enqueue_batch, and one
 * in-process worker (concurrency from -c, default the config's
 * queue.concurrency) runs them with a no-op handler; every task goes
 * through the worker's whole path: dequeue, PostgreSQL row (running, or
 * only completed once the type is known to be short: docs/worker.md
 * "Deferred starts"), the handler, ack. Two measurements:
 *   drain - N tasks are waiting before the worker starts; from its start
 *           until the last one is done (the worker's own rate on a
 *           backlog);
 *   live  - the worker is idle when this process starts enqueueing N
 *           tasks (1000 per call); until the last one is done (the
 *           producer's Redis and CPU cost included).
 *
 * Where the time goes, as CPU time per task during the worker's run (on
 * a small shared machine CPU, not waiting, is what bounds throughput):
 * this process (the worker's slots; the bench's own thread only polls a
 * counter), redis-server (INFO cpu) and the PostgreSQL backends of the
 * database (/proc/<pid>/stat of pg_stat_activity's pids: same host).
 * And, for comparison, with the same number of threads:
 *   redis  - the one-task queue calls (dequeue + ack), no PostgreSQL
 *   pg     - the two one-task row writes (aeth_store_task_start +
 *            aeth_store_task_finish), no Redis
 * which is what a worker paid per task before it took short tasks in
 * batches (and still pays for a task taken alone).
 *
 * Latency: -lat M single tasks into the idle worker, from the
 * aeth_queue_enqueue() call to the handler starting (it includes the
 * worker's "running" row write, which precedes the handler).
 *
 * Uses its own queue namespace (benchw<pid>) and deletes its rows at the
 * end. Needs AETH_DATABASE_URL and AETH_REDIS_URL
 * (eval "$(scripts/services.sh env)").
 * Usage: bench_worker [-n N] [-c CONCURRENCY] [-lat M] [-json]
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>
#include <libpq-fe.h>
#include <sys/resource.h>

#include "aetherium/aetherium.h"
/* rows written as the worker does (unstable API) */
#define AETH_UNSTABLE
#include "aetherium/unstable/store.h"
#include "bench_redis.h"

#define QUEUE "bench"
#define TYPE "bench:noop"

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void die(const char *what)
{
	fprintf(stderr, "bench_worker: %s: %s\n", what, aeth_error_last());
	exit(1);
}

static char ns[64];
static const char *db_url, *redis_url;

/* ---- ids and rows ---- */

static void uuid4(char out[37])
{
	static int fd = -1;
	unsigned char b[16];

	if (fd < 0)
		fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
	if (fd < 0 || read(fd, b, sizeof(b)) != (ssize_t)sizeof(b))
		die("reading /dev/urandom");
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
	snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
		 "%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2], b[3], b[4], b[5],
		 b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
}

static PGconn *pg;

static void pg_exec(const char *sql, int n, const char *const *params)
{
	PGresult *r = PQexecParams(pg, sql, n, NULL, params, NULL, NULL, 0);

	if (PQresultStatus(r) != PGRES_COMMAND_OK &&
	    PQresultStatus(r) != PGRES_TUPLES_OK) {
		fprintf(stderr, "bench_worker: %s: %s", sql, PQerrorMessage(pg));
		exit(1);
	}
	PQclear(r);
}

/* Pending rows for ids[0..n-1], one statement (setup, not timed). */
static void insert_rows(char (*ids)[37], int n)
{
	size_t cap = (size_t)n * 38 + 3;
	char *arr = malloc(cap), *p = arr;
	const char *params[1] = {arr};

	*p++ = '{';
	for (int i = 0; i < n; i++)
		p += sprintf(p, "%s%s", i ? "," : "", ids[i]);
	strcpy(p, "}");
	pg_exec("INSERT INTO tasks (id, type, status, payload, queue, "
		"max_retries, retry_count, created_at, updated_at) SELECT x::uuid, "
		"'" TYPE "', 'pending', '{}', '" QUEUE "', 3, 0, now() AT TIME ZONE "
		"'UTC', now() AT TIME ZONE 'UTC' FROM unnest($1::text[]) x", 1, params);
	free(arr);
}

static aeth_queue *open_queue(void)
{
	aeth_queue_options o = AETH_QUEUE_OPTIONS_INIT;
	aeth_queue *q;

	o.url = redis_url;
	o.ns = ns;
	o.worker_id = "bench";
	if (aeth_queue_open(&q, &o) != 0)
		die("opening the queue");
	return q;
}

/* Enqueue ids[0..n-1] with the batch call, 1000 per call. */
static void enqueue_all(aeth_queue *q, char (*ids)[37], int n)
{
	aeth_queue_enqueue_options eo = AETH_QUEUE_ENQUEUE_OPTIONS_INIT;
	aeth_queue_enqueue_options *opts = calloc((size_t)n, sizeof(*opts));
	aeth_queue_batch_task *b = calloc((size_t)n, sizeof(*b));

	eo.queue = QUEUE;
	for (int i = 0; i < n; i++) {
		opts[i] = eo;
		opts[i].id = ids[i];
		aeth_queue_batch_task_init(&b[i], AETH_QUEUE_BATCH_TASK_VERSION);
		b[i].type = TYPE;
		b[i].opts = &opts[i];
	}
	for (int i = 0; i < n; i += 1000)
		if (aeth_queue_enqueue_batch(q, b + i, (size_t)(n - i < 1000 ? n - i : 1000)) != 0)
			die("enqueue_batch");
	free(b);
	free(opts);
}

/* ---- CPU time of this process, redis-server, the PG backends ---- */

static double self_cpu_us(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 +
	       ru.ru_utime.tv_usec + ru.ru_stime.tv_usec;
}

/* Delete every key of this run's namespace: "{<ns>:<queue>}..." and
 * "<ns>:..." (the completed tasks would otherwise stay for their
 * retention, a day, and grow the keyspace that later runs look keys up
 * in). */
static void drop_keys(void)
{
	redisContext *c = bench_redis_connect(redis_url);
	const char *const fmt[2] = {"{%s:*", "%s:*"};
	char cursor[32], pat[80];
	redisReply *r;

	for (int p = 0; c && p < 2; p++) {
		snprintf(pat, sizeof(pat), fmt[p], ns);
		strcpy(cursor, "0");
		do {
			r = redisCommand(c, "SCAN %s MATCH %s COUNT 10000", cursor, pat);
			if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
				fprintf(stderr, "bench_worker: could not delete the keys of %s\n", ns);
				freeReplyObject(r);
				break;
			}
			snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
			for (size_t i = 0; i < r->element[1]->elements; i++)
				redisAppendCommand(c, "UNLINK %s", r->element[1]->element[i]->str);
			for (size_t i = 0; i < r->element[1]->elements; i++) {
				redisReply *d = NULL;

				if (redisGetReply(c, (void **)&d) == REDIS_OK)
					freeReplyObject(d);
			}
			freeReplyObject(r);
		} while (strcmp(cursor, "0"));
	}
	redisFree(c);
}

static double redis_cpu_us(void)
{
	redisContext *c = bench_redis_connect(redis_url);
	redisReply *r;
	double u = 0, sy = 0;
	const char *p;

	if (!c)
		return -1;
	r = redisCommand(c, "INFO cpu");
	if (r && r->type == REDIS_REPLY_STRING) {
		if ((p = strstr(r->str, "used_cpu_sys:")))
			sy = atof(p + 13);
		if ((p = strstr(r->str, "used_cpu_user:")))
			u = atof(p + 14);
	}
	freeReplyObject(r);
	redisFree(c);
	return (u + sy) * 1e6;
}

/* utime + stime of the backends on this database (the worker's slots). */
static double pg_cpu_us(void)
{
	PGresult *r = PQexec(pg, "SELECT pid FROM pg_stat_activity WHERE "
			     "datname = current_database()");
	long hz = sysconf(_SC_CLK_TCK);
	double sum = 0;

	for (int i = 0; PQresultStatus(r) == PGRES_TUPLES_OK && i < PQntuples(r); i++) {
		char path[64], buf[1024];
		unsigned long ut = 0, st = 0;
		FILE *f;
		char *p;

		snprintf(path, sizeof(path), "/proc/%s/stat", PQgetvalue(r, i, 0));
		if (!(f = fopen(path, "r")))
			continue;
		if (fgets(buf, sizeof(buf), f) && (p = strrchr(buf, ')')) &&
		    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
			   &ut, &st) == 2)
			sum += (double)(ut + st) * 1e6 / (double)hz;
		fclose(f);
	}
	PQclear(r);
	return sum;
}

/* CPU time per task of this process, redis-server and the PG backends
 * over one measured phase: cpu_begin() before, cpu_end(n tasks) after. */
typedef struct {
	double self, redis, pg;
} cpu_use;

static cpu_use cpu_begin(void)
{
	return (cpu_use){self_cpu_us(), redis_cpu_us(), pg_cpu_us()};
}

static void cpu_end(cpu_use *c, int n)
{
	c->self = (self_cpu_us() - c->self) / n;
	c->redis = (redis_cpu_us() - c->redis) / n;
	c->pg = (pg_cpu_us() - c->pg) / n;
}

/* ---- the worker ---- */

static atomic_int done_count;
static _Atomic double started_at; /* handler start, for latency */

static void on_event(const char *task_id, const char *line, void *userdata)
{
	(void)task_id;
	(void)userdata;
	if (strstr(line, " completed in "))
		atomic_fetch_add(&done_count, 1);
}

static int noop(aeth_task *t, void *userdata)
{
	(void)t;
	(void)userdata;
	atomic_store(&started_at, now_ms());
	return 0;
}

static void *run_worker(void *w)
{
	if (aeth_worker_run(w) != 0)
		die("aeth_worker_run");
	return NULL;
}

static aeth_worker *start_worker(unsigned int conc, pthread_t *th)
{
	aeth_worker_options o = AETH_WORKER_OPTIONS_INIT;
	aeth_worker *w;

	o.redis_ns = ns;
	o.queues = QUEUE;
	o.concurrency = conc;
	o.on_event = on_event;
	o.database_url = db_url;
	o.redis_url = redis_url;
	if (aeth_worker_new_from_config(&w, NULL, &o) != 0 ||
	    aeth_worker_handle(w, TYPE, noop, NULL) != 0)
		die("making the worker");
	pthread_create(th, NULL, run_worker, w);
	if (aeth_worker_wait_ready(w, 60000) != 0)
		die("starting the worker");
	return w;
}

static void wait_done(int n)
{
	while (atomic_load(&done_count) < n)
		usleep(500);
}

/* ---- the parts alone ---- */

typedef struct {
	char (*ids)[37];
	int from, to;
	double t1;
} part_arg;

static void *redis_part(void *arg)
{
	part_arg *a = arg;
	aeth_queue *q = open_queue();
	aeth_queue_source src = {AETH_QUEUE_SOURCE_VERSION, QUEUE, 1, 0};

	for (int i = a->from; i < a->to; i++) {
		aeth_queue_task *t = NULL;

		if (aeth_queue_dequeue(&t, q, &src, 1, 1000) != 0 ||
		    aeth_queue_ack(q, t, NULL) != 0)
			die("redis part: dequeue/ack");
		aeth_queue_task_free(t);
	}
	aeth_queue_free(q);
	return NULL;
}

static void *pg_part(void *arg)
{
	part_arg *a = arg;
	aeth_store *s;

	if (aeth_store_open(&s, db_url) != 0)
		die("pg part: store open");
	for (int i = a->from; i < a->to; i++)
		if (aeth_store_task_start(s, a->ids[i], "bench", 0) != 0 ||
		    aeth_store_task_finish(s, a->ids[i], "completed", "null", NULL) != 0)
			die("pg part: row writes");
	aeth_store_free(s);
	return NULL;
}

/* Run fn over ids split across conc threads; seconds. */
static double run_part(void *(*fn)(void *), char (*ids)[37], int n,
		       unsigned int conc)
{
	pthread_t th[256];
	part_arg a[256];
	double t0 = now_ms();

	for (unsigned int i = 0; i < conc; i++) {
		a[i].ids = ids;
		a[i].from = (int)((long)n * i / conc);
		a[i].to = (int)((long)n * (i + 1) / conc);
		pthread_create(&th[i], NULL, fn, &a[i]);
	}
	for (unsigned int i = 0; i < conc; i++)
		pthread_join(th[i], NULL);
	return (now_ms() - t0) / 1000.0;
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

/* The parts alone (phase 3) take at most this many tasks. */
#define PART_MAX 20000

int main(int argc, char **argv)
{
	int n = 20000, np, lat = 500, json = 0;
	unsigned int conc = 0;
	char (*ids)[37];
	double *lats, secs, redis_s, pg_s, t0, dsecs;
	cpu_use live, drain;
	aeth_worker *w;
	aeth_queue *q;
	pthread_t th;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-n") && i + 1 < argc)
			n = atoi(argv[++i]);
		else if (!strcmp(argv[i], "-c") && i + 1 < argc)
			conc = (unsigned int)atoi(argv[++i]);
		else if (!strcmp(argv[i], "-lat") && i + 1 < argc)
			lat = atoi(argv[++i]);
		else if (!strcmp(argv[i], "-json"))
			json = 1;
		else {
			fprintf(stderr, "usage: bench_worker [-n N] [-c CONCURRENCY] "
				"[-lat M] [-json]\n");
			return 2;
		}
	}
	if (n < 1 || lat < 1 || conc > 256) {
		fprintf(stderr, "bench_worker: -n and -lat must be >= 1, -c <= 256\n");
		return 2;
	}
	np = n < PART_MAX ? n : PART_MAX;
	db_url = getenv("AETH_DATABASE_URL");
	redis_url = getenv("AETH_REDIS_URL");
	if (!db_url || !redis_url) {
		fprintf(stderr, "bench_worker: set AETH_DATABASE_URL and AETH_REDIS_URL: "
			"eval \"$(scripts/services.sh env)\"\n");
		return 2;
	}
	if (!conc) {
		aeth_config *cfg = NULL;
		int64_t v = 0;

		if (aeth_config_load(&cfg, NULL) != 0 ||
		    aeth_config_get_int(&v, cfg, "queue.concurrency") != 0)
			die("reading queue.concurrency");
		conc = v > 0 && v <= 256 ? (unsigned int)v : 2;
		aeth_config_free(cfg);
	}
	snprintf(ns, sizeof(ns), "benchw%d", (int)getpid());
	pg = PQconnectdb(db_url);
	if (PQstatus(pg) != CONNECTION_OK) {
		fprintf(stderr, "bench_worker: %s", PQerrorMessage(pg));
		return 1;
	}
	ids = calloc((size_t)(n + lat), 37);
	lats = calloc((size_t)lat, sizeof(double));
	for (int i = 0; i < n + lat; i++)
		uuid4(ids[i]);
	q = open_queue();

	/* 0. drain: a backlog of N tasks, then the worker (the database is
	 * migrated first, as the worker's start would) */
	{
		char (*back)[37] = calloc((size_t)n, 37);
		aeth_store *st = NULL;

		if (aeth_store_open(&st, db_url) != 0 || aeth_store_migrate(st) != 0)
			die("migrating the database");
		aeth_store_free(st);
		for (int i = 0; i < n; i++)
			uuid4(back[i]);
		insert_rows(back, n);
		enqueue_all(q, back, n);
		drain = cpu_begin();
		t0 = now_ms();
		w = start_worker(conc, &th);
		wait_done(n);
		dsecs = (now_ms() - t0) / 1000.0;
		cpu_end(&drain, n);
		free(back);
		atomic_store(&done_count, 0);
	}

	/* 1. live: the idle worker, N tasks enqueued while it runs */
	insert_rows(ids, n + lat);
	live = cpu_begin();
	t0 = now_ms();
	enqueue_all(q, ids, n);
	wait_done(n);
	secs = (now_ms() - t0) / 1000.0;
	cpu_end(&live, n);

	/* 2. enqueue-to-start latency into the idle worker */
	for (int i = 0; i < lat; i++) {
		aeth_queue_enqueue_options eo = AETH_QUEUE_ENQUEUE_OPTIONS_INIT;
		double s;

		eo.queue = QUEUE;
		eo.id = ids[n + i];
		atomic_store(&started_at, 0.0);
		s = now_ms();
		if (aeth_queue_enqueue(NULL, q, TYPE, NULL, &eo) != 0)
			die("enqueue");
		wait_done(n + i + 1);
		lats[i] = atomic_load(&started_at) - s;
	}
	aeth_worker_stop(w);
	pthread_join(th, NULL);
	aeth_worker_free(w);
	qsort(lats, (size_t)lat, sizeof(double), cmp);

	/* 3. the parts alone, same thread count, at most PART_MAX tasks (their
	 * one-task calls are slow): new ids for the queue (the old ones are
	 * kept as completed), the same rows again */
	{
		char (*fresh)[37] = calloc((size_t)np, 37);

		for (int i = 0; i < np; i++)
			uuid4(fresh[i]);
		enqueue_all(q, fresh, np);
		redis_s = run_part(redis_part, fresh, np, conc);
		free(fresh);
	}
	pg_s = run_part(pg_part, ids, np, conc);

	{
		const char *params[1] = {QUEUE};

		pg_exec("DELETE FROM tasks WHERE type = '" TYPE "' AND queue = $1",
			1, params);
	}
	aeth_queue_free(q);
	drop_keys();
	PQfinish(pg);

	double us = secs * 1e6 / n, rus = redis_s * 1e6 / np, pus = pg_s * 1e6 / np;

	printf("worker no-op tasks (%d tasks, concurrency %u, one worker)\n", n, conc);
	printf("  %-44s %10.0f tasks/s  %8.1f us/task\n", "drain: backlog of N, worker end to end",
	       n / dsecs, dsecs * 1e6 / n);
	printf("  CPU per task during it: worker process %.1f us, redis-server %.1f us, "
	       "PostgreSQL backends %.1f us; total %.1f us\n",
	       drain.self, drain.redis, drain.pg, drain.self + drain.redis + drain.pg);
	printf("  %-44s %10.0f tasks/s  %8.1f us/task\n", "live: enqueued while it runs",
	       n / secs, us);
	printf("  CPU per task during it: worker + producer %.1f us, redis-server %.1f us "
	       "(incl. enqueue), PostgreSQL backends %.1f us; total %.1f us\n",
	       live.self, live.redis, live.pg, live.self + live.redis + live.pg);
	printf("  %-44s %10.0f tasks/s  %8.1f us/task\n", "redis alone, one-task dequeue + ack",
	       np / redis_s, rus);
	printf("  %-44s %10.0f tasks/s  %8.1f us/task\n", "pg alone, one-task running + completed",
	       np / pg_s, pus);
	printf("  enqueue-to-start into the idle worker (%d samples): p50 %.3f ms, "
	       "p99 %.3f ms, max %.3f ms\n", lat, pct(lats, lat, 0.5),
	       pct(lats, lat, 0.99), lats[lat - 1]);
	if (json)
		printf("{\"tasks\": %d, \"concurrency\": %u, \"drain_tasks_per_s\": %.1f, "
		       "\"drain_cpu_us_per_task\": {\"worker_process\": %.2f, "
		       "\"redis_server\": %.2f, \"postgres\": %.2f}, "
		       "\"worker_tasks_per_s\": %.1f, "
		       "\"redis_alone_tasks_per_s\": %.1f, \"pg_alone_tasks_per_s\": %.1f, "
		       "\"us_per_task\": {\"worker\": %.2f, \"redis_alone\": %.2f, "
		       "\"pg_alone\": %.2f}, \"cpu_us_per_task\": {\"worker_process\": %.2f, "
		       "\"redis_server\": %.2f, \"postgres\": %.2f}, \"latency_samples\": %d, "
		       "\"latency_p50_ms\": %.3f, \"latency_p99_ms\": %.3f, "
		       "\"latency_max_ms\": %.3f}\n", n, conc, n / dsecs, drain.self,
		       drain.redis, drain.pg, n / secs, np / redis_s,
		       np / pg_s, us, rus, pus, live.self, live.redis, live.pg, lat,
		       pct(lats, lat, 0.5),
		       pct(lats, lat, 0.99), lats[lat - 1]);
	free(ids);
	free(lats);
	return 0;
}
