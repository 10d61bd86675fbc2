/*
 * bench/cluster/bench_cluster.c - the queue over one Redis URL, as a
 * fleet uses it: several queues (each worker has its own, besides the
 * shared ones), so that on a Redis Cluster they spread over slots and
 * nodes. bench/cluster/run.py runs it on a single server and on a
 * 3-node cluster in the same run and reports the ratio.
 *
 *   bench_cluster URL [N] [SAMPLES] [QUEUES]
 *
 * Prints one JSON object:
 * - tasks_per_s: QUEUES threads, each with its own handle and queue,
 *   each enqueueing N/QUEUES no-op tasks with the batch call (100 a
 *   call), then dequeueing and acking them in batches: all tasks over
 *   the wall time of the slowest thread.
 * - latency_p50_ms / p90 / p99: from calling aeth_queue_enqueue() to a
 *   consumer blocked in aeth_queue_dequeue() over all QUEUES queues
 *   getting the task (on a cluster: one BRPOP per slot, block.c); the
 *   producer takes the queues in turn, SAMPLES tasks 1 ms apart.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "aetherium/aetherium.h"

#define BATCH 100
#define QMAX 16

static const char *url;
static char ns[64];
static int nqueues = 4;
static char qname[QMAX][16];

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void die(const char *what)
{
	fprintf(stderr, "bench_cluster: %s: %s\n", what, aeth_error_last());
	exit(1);
}

static aeth_queue *open_q(void)
{
	aeth_queue_options o = AETH_QUEUE_OPTIONS_INIT;
	aeth_queue *q;

	o.url = url;
	o.ns = ns;
	o.worker_id = "bench";
	o.retention_s = 60;
	if (aeth_queue_open(&q, &o))
		die("open");
	return q;
}

typedef struct {
	int queue, n;
	int64_t ns;
} share;

static void *work(void *arg)
{
	share *s = arg;
	aeth_queue *q = open_q();
	aeth_queue_enqueue_options o = AETH_QUEUE_ENQUEUE_OPTIONS_INIT;
	aeth_queue_source src = {AETH_QUEUE_SOURCE_VERSION, qname[s->queue], 1, 0};
	aeth_queue_batch_task ts[BATCH];
	aeth_queue_task *got[BATCH];
	int64_t t0 = now_ns();

	o.queue = qname[s->queue];
	for (int i = 0; i < s->n;) {
		int k = s->n - i < BATCH ? s->n - i : BATCH;

		for (int j = 0; j < k; j++)
			ts[j] = (aeth_queue_batch_task){AETH_QUEUE_BATCH_TASK_VERSION, "noop", "{}", &o, "", 0};
		if (aeth_queue_enqueue_batch(q, ts, (size_t)k))
			die("enqueue_batch");
		i += k;
	}
	for (int i = 0; i < s->n;) {
		size_t n = 0;

		if (aeth_queue_dequeue_batch(got, &n, BATCH, q, &src, 1, 0))
			die("dequeue_batch");
		if (aeth_queue_ack_batch(NULL, q, got, NULL, n))
			die("ack_batch");
		for (size_t j = 0; j < n; j++)
			aeth_queue_task_free(got[j]);
		i += (int)n;
	}
	s->ns = now_ns() - t0;
	aeth_queue_free(q);
	return NULL;
}

typedef struct {
	int n;
	int64_t *lat;
} lat_run;

static void *consume(void *arg)
{
	lat_run *r = arg;
	aeth_queue *q = open_q();
	aeth_queue_source src[QMAX];

	for (int i = 0; i < nqueues; i++)
		src[i] = (aeth_queue_source){AETH_QUEUE_SOURCE_VERSION, qname[i], 1, 0};
	for (int i = 0; i < r->n; i++) {
		aeth_queue_task *t;
		long long t0;

		if (aeth_queue_dequeue(&t, q, src, (size_t)nqueues, 10000))
			die("dequeue");
		r->lat[i] = now_ns();
		if (sscanf(t->payload, "{\"t0\":%lld}", &t0) != 1)
			die("payload");
		r->lat[i] -= t0;
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

int main(int argc, char **argv)
{
	int n = argc > 2 ? atoi(argv[2]) : 30000;
	int samples = argc > 3 ? atoi(argv[3]) : 500;
	unsigned int rnd = 0;
	pthread_t th[QMAX];
	share sh[QMAX];
	int64_t slowest = 0;
	lat_run lr;
	aeth_queue *q;

	if (argc > 4)
		nqueues = atoi(argv[4]);
	if (argc < 2 || n <= 0 || samples <= 0 || nqueues < 1 || nqueues > QMAX) {
		fprintf(stderr, "usage: bench_cluster URL [N] [SAMPLES] [QUEUES<=16]\n");
		return 2;
	}
	url = argv[1];
	if (getrandom(&rnd, sizeof(rnd), 0) != sizeof(rnd))
		rnd = (unsigned int)getpid();
	snprintf(ns, sizeof(ns), "aethbc%08x", rnd);
	for (int i = 0; i < nqueues; i++)
		snprintf(qname[i], sizeof(qname[i]), "bench%d", i);

	for (int i = 0; i < nqueues; i++) {
		sh[i] = (share){i, n / nqueues, 0};
		pthread_create(&th[i], NULL, work, &sh[i]);
	}
	for (int i = 0; i < nqueues; i++) {
		pthread_join(th[i], NULL);
		if (sh[i].ns > slowest)
			slowest = sh[i].ns;
	}

	lr.n = samples;
	lr.lat = calloc((size_t)samples, sizeof(int64_t));
	q = open_q();
	pthread_create(&th[0], NULL, consume, &lr);
	usleep(200000);
	for (int i = 0; i < samples; i++) {
		aeth_queue_enqueue_options o = AETH_QUEUE_ENQUEUE_OPTIONS_INIT;
		char payload[64];

		o.queue = qname[i % nqueues];
		snprintf(payload, sizeof(payload), "{\"t0\":%lld}", (long long)now_ns());
		if (aeth_queue_enqueue(NULL, q, "noop", payload, &o))
			die("enqueue");
		usleep(1000);
	}
	pthread_join(th[0], NULL);
	qsort(lr.lat, (size_t)samples, sizeof(int64_t), cmp64);
	printf("{\"n\": %d, \"queues\": %d, \"tasks_per_s\": %.0f, \"latency_samples\": %d, "
	       "\"latency_p50_ms\": %.3f, \"latency_p90_ms\": %.3f, \"latency_p99_ms\": %.3f}\n",
	       (n / nqueues) * nqueues, nqueues,
	       (double)((n / nqueues) * nqueues) / ((double)slowest / 1e9), samples,
	       (double)lr.lat[samples / 2] / 1e6, (double)lr.lat[samples * 9 / 10] / 1e6,
	       (double)lr.lat[samples * 99 / 100] / 1e6);
	free(lr.lat);
	aeth_queue_free(q);
	return 0;
}
