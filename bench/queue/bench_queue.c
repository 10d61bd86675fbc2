/*
 * bench/queue/bench_queue.c - no-op task throughput and enqueue-to-start
 * latency of the Redis queue.
 *
 *   bench_queue URL [N] [LATENCY_SAMPLES]
 *
 * Prints one JSON object: enqueue/s, dequeue+ack/s and end-to-end no-op
 * tasks/s on one connection, once with the one-task calls and once with
 * the batch calls (aeth_queue_enqueue_batch, aeth_queue_dequeue_batch,
 * aeth_queue_ack_batch, BATCH tasks per call, as a worker would use
 * them); p50/p99/max of the time from calling aeth_queue_enqueue() to a
 * blocked consumer's aeth_queue_dequeue() returning; and the Redis-side
 * cost of each script (INFO commandstats usec per EVALSHA, measured in
 * separate phases, which depends little on the machine's load) with the
 * throughput bound it implies.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "aetherium/aetherium.h"
#include "bench_redis.h"

#ifndef BATCH
#define BATCH 100 /* tasks per batch call */
#endif

static const aeth_queue_source SRC[] = {{AETH_QUEUE_SOURCE_VERSION, "bench", 1, 0}};
static const char *url;
static char ns[64];

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static aeth_queue *open_q(void)
{
	aeth_queue_options o = AETH_QUEUE_OPTIONS_INIT;
	aeth_queue *q;

	o.url = url;
	o.ns = ns;
	o.worker_id = "bench";
	o.retention_s = 60;
	if (aeth_queue_open(&q, &o)) {
		fprintf(stderr, "bench_queue: %s\n", aeth_error_last());
		exit(1);
	}
	return q;
}

static void die(const char *what)
{
	fprintf(stderr, "bench_queue: %s: %s\n", what, aeth_error_last());
	exit(1);
}

typedef struct {
	int n;
	int64_t *lat_ns;
} lat_run;

static void *lat_consumer(void *arg)
{
	lat_run *r = arg;
	aeth_queue *q = open_q();

	for (int i = 0; i < r->n; i++) {
		aeth_queue_task *t;
		long long t0;

		if (aeth_queue_dequeue(&t, q, SRC, 1, 10000))
			die("dequeue");
		int64_t got = now_ns();
		if (sscanf(t->payload, "{\"t0\":%lld}", &t0) != 1)
			die("payload");
		r->lat_ns[i] = got - t0;
		if (aeth_queue_ack(q, t, NULL))
			die("ack");
		aeth_queue_task_free(t);
	}
	aeth_queue_free(q);
	return NULL;
}

static int cmp64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

static void enqueue_n(aeth_queue *q, int n, int batch)
{
	aeth_queue_batch_task ts[BATCH];
	aeth_queue_enqueue_options o = AETH_QUEUE_ENQUEUE_OPTIONS_INIT;

	o.queue = "bench";
	for (int i = 0; i < n;) {
		int k = batch ? (n - i < BATCH ? n - i : BATCH) : 1;

		if (!batch) {
			if (aeth_queue_enqueue(NULL, q, "noop", "{}", &o))
				die("enqueue");
		} else {
			for (int j = 0; j < k; j++)
				ts[j] = (aeth_queue_batch_task){AETH_QUEUE_BATCH_TASK_VERSION,
								"noop", "{}", &o, "", 0};
			if (aeth_queue_enqueue_batch(q, ts, (size_t)k))
				die("enqueue_batch");
		}
		i += k;
	}
}

/* Dequeue (and ack when `ack`) n tasks; batch: BATCH per call. With
 * keep, the tasks are returned un-acked for a later ack phase. */
static void dequeue_n(aeth_queue *q, int n, int batch, int ack, aeth_queue_task **keep)
{
	aeth_queue_task *ts[BATCH];

	for (int i = 0; i < n;) {
		size_t got = 0;

		if (!batch) {
			if (aeth_queue_dequeue(&ts[0], q, SRC, 1, 0))
				die("dequeue");
			got = 1;
		} else if (aeth_queue_dequeue_batch(ts, &got,
						    (size_t)(n - i < BATCH ? n - i : BATCH),
						    q, SRC, 1, 0)) {
			die("dequeue_batch");
		}
		if (ack && batch && aeth_queue_ack_batch(NULL, q, ts, NULL,
							 got))
			die("ack_batch");
		for (size_t j = 0; j < got; j++) {
			if (ack && !batch && aeth_queue_ack(q, ts[j], NULL))
				die("ack");
			if (keep)
				keep[i + (int)j] = ts[j];
			else
				aeth_queue_task_free(ts[j]);
		}
		i += (int)got;
	}
}

static void ack_n(aeth_queue *q, aeth_queue_task **ts, int n, int batch)
{
	for (int i = 0; i < n;) {
		int k = batch ? (n - i < BATCH ? n - i : BATCH) : 1;

		if (batch ? aeth_queue_ack_batch(NULL, q, ts + i, NULL,
						 (size_t)k)
			  : aeth_queue_ack(q, ts[i], NULL))
			die("ack");
		for (int j = 0; j < k; j++)
			aeth_queue_task_free(ts[i + j]);
		i += k;
	}
}

/* calls and usec of one command in INFO commandstats. */
typedef struct {
	double calls, usec;
} cstat;

static redisContext *stats_conn(void)
{
	redisContext *c = bench_redis_connect(url);

	if (!c) {
		fprintf(stderr, "bench_queue: cannot connect to %s for INFO\n", url);
		exit(1);
	}
	return c;
}

static cstat stat_of(redisContext *c, const char *cmd)
{
	redisReply *r = redisCommand(c, "INFO commandstats");
	char needle[64];
	cstat s = {0, 0};
	const char *p;

	snprintf(needle, sizeof(needle), "cmdstat_%s:calls=", cmd);
	if (r && r->type == REDIS_REPLY_STRING && (p = strstr(r->str, needle)))
		sscanf(p + strlen(needle), "%lf,usec=%lf", &s.calls, &s.usec);
	freeReplyObject(r);
	return s;
}

/* used_cpu_user + used_cpu_sys of the server, in usec: CPU time, not
 * wall time, so it does not grow when the machine is busy. */
static double cpu_usec(redisContext *c)
{
	redisReply *r = redisCommand(c, "INFO cpu");
	double u = 0, sy = 0;
	const char *p;

	if (r && r->type == REDIS_REPLY_STRING) {
		if ((p = strstr(r->str, "used_cpu_sys:")))
			sy = atof(p + 13);
		if ((p = strstr(r->str, "used_cpu_user:")))
			u = atof(p + 14);
	}
	freeReplyObject(r);
	return (u + sy) * 1e6;
}

/* Redis usec per top-level call and per task of one phase. */
typedef struct {
	double script_per_call, script_per_task, set_per_task, cpu_per_task;
} phase;

static phase measure(redisContext *c, aeth_queue *q, int what, int batch, int m,
		     aeth_queue_task **keep)
{
	cstat e0 = stat_of(c, "evalsha"), s0 = stat_of(c, "set"), e1, s1;
	double cpu0 = cpu_usec(c);
	phase p;

	if (what == 0)
		enqueue_n(q, m, batch);
	else if (what == 1)
		dequeue_n(q, m, batch, 0, keep);
	else
		ack_n(q, keep, m, batch);
	p.cpu_per_task = (cpu_usec(c) - cpu0) / m;
	e1 = stat_of(c, "evalsha");
	s1 = stat_of(c, "set");
	p.script_per_call = (e1.usec - e0.usec) / (e1.calls - e0.calls);
	p.script_per_task = (e1.usec - e0.usec) / m;
	p.set_per_task = (s1.usec - s0.usec) / m;
	return p;
}

/* Per-script Redis time: enqueue, dequeue and ack in separate phases so
 * that the EVALSHA statistics of each can be told apart. Dequeue runs
 * its maintenance part about every 100 ms: included, as in real use. */
static void profile(aeth_queue *q, int m)
{
	redisContext *c = stats_conn();
	aeth_queue_task **keep = calloc((size_t)m, sizeof(*keep));
	phase ph[2][3];

	for (int b = 0; b < 2; b++)
		for (int w = 0; w < 3; w++)
			ph[b][w] = measure(c, q, w, b, m, keep);
	for (int b = 0; b < 2; b++) {
		double per_task = 0, cpu = 0;

		printf("%s\"redis_usec_%s\": {", b ? ", " : "", b ? "batch" : "single");
		for (int w = 0; w < 3; w++) {
			static const char *const name[3] = {"enqueue", "dequeue", "ack"};

			printf("\"%s_per_call\": %.2f, \"%s_per_task\": %.2f, "
			       "\"%s_cpu_per_task\": %.2f, ", name[w],
			       ph[b][w].script_per_call, name[w], ph[b][w].script_per_task,
			       name[w], ph[b][w].cpu_per_task);
			per_task += ph[b][w].script_per_task;
			cpu += ph[b][w].cpu_per_task;
		}
		per_task += ph[b][0].set_per_task;
		printf("\"index_set_per_task\": %.2f, \"total_per_task\": %.2f, "
		       "\"bound_tasks_per_s\": %.0f, \"cpu_per_task\": %.2f, "
		       "\"cpu_bound_tasks_per_s\": %.0f}", ph[b][0].set_per_task, per_task,
		       1e6 / per_task, cpu, 1e6 / cpu);
	}
	free(keep);
	redisFree(c);
}

int main(int argc, char **argv)
{
	int n = argc > 2 ? atoi(argv[2]) : 20000;
	int nlat = argc > 3 ? atoi(argv[3]) : 2000;
	unsigned int rnd = 0;
	aeth_queue *q;
	int64_t t0, t1, t2, t3, t4;
	pthread_t th;
	lat_run lr;

	if (argc < 2 || n <= 0 || nlat <= 0) {
		fprintf(stderr, "usage: bench_queue URL [N] [LATENCY_SAMPLES]\n");
		return 2;
	}
	url = argv[1];
	if (getrandom(&rnd, sizeof(rnd), 0) != sizeof(rnd))
		rnd = (unsigned int)getpid();
	snprintf(ns, sizeof(ns), "aethbench%08x", rnd);
	q = open_q();

	t0 = now_ns();
	for (int i = 0; i < n; i++) {
		aeth_queue_enqueue_options o = AETH_QUEUE_ENQUEUE_OPTIONS_INIT;

		o.queue = "bench";
		if (aeth_queue_enqueue(NULL, q, "noop", "{}", &o))
			die("enqueue");
	}
	t1 = now_ns();
	for (int i = 0; i < n; i++) {
		aeth_queue_task *t;

		if (aeth_queue_dequeue(&t, q, SRC, 1, 0))
			die("dequeue");
		if (aeth_queue_ack(q, t, NULL))
			die("ack");
		aeth_queue_task_free(t);
	}
	t2 = now_ns();
	enqueue_n(q, n, 1);
	t3 = now_ns();
	dequeue_n(q, n, 1, 1, NULL);
	t4 = now_ns();

	/* Latency: one blocked consumer; the producer enqueues one task at a
	 * time, 1 ms apart, stamping the payload with the time of the call. */
	lr.n = nlat;
	lr.lat_ns = calloc((size_t)nlat, sizeof(int64_t));
	pthread_create(&th, NULL, lat_consumer, &lr);
	usleep(200000);
	for (int i = 0; i < nlat; i++) {
		aeth_queue_enqueue_options o = AETH_QUEUE_ENQUEUE_OPTIONS_INIT;
		char payload[64];

		o.queue = "bench";
		snprintf(payload, sizeof(payload), "{\"t0\":%lld}", (long long)now_ns());
		if (aeth_queue_enqueue(NULL, q, "noop", payload, &o))
			die("enqueue");
		usleep(1000);
	}
	pthread_join(th, NULL);
	qsort(lr.lat_ns, (size_t)nlat, sizeof(int64_t), cmp64);

	double enq_s = (double)(t1 - t0) / 1e9, deq_s = (double)(t2 - t1) / 1e9;
	double benq_s = (double)(t3 - t2) / 1e9, bdeq_s = (double)(t4 - t3) / 1e9;
	printf("{\"n\": %d, \"batch\": %d, \"enqueue_per_s\": %.0f, \"dequeue_ack_per_s\": %.0f, "
	       "\"noop_tasks_per_s\": %.0f, \"batch_enqueue_per_s\": %.0f, "
	       "\"batch_dequeue_ack_per_s\": %.0f, \"batch_noop_tasks_per_s\": %.0f, "
	       "\"latency_samples\": %d, "
	       "\"latency_p50_ms\": %.3f, \"latency_p99_ms\": %.3f, \"latency_max_ms\": %.3f, ",
	       n, BATCH, n / enq_s, n / deq_s, n / (enq_s + deq_s), n / benq_s, n / bdeq_s,
	       n / (benq_s + bdeq_s), nlat,
	       (double)lr.lat_ns[nlat / 2] / 1e6, (double)lr.lat_ns[nlat * 99 / 100] / 1e6,
	       (double)lr.lat_ns[nlat - 1] / 1e6);
	profile(q, n < 5000 ? n : 5000);
	printf("}\n");
	free(lr.lat_ns);
	aeth_queue_free(q);
	return 0;
}
