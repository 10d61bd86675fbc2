/*
 * bench/queue/bench_queue.c - no-op task throughput and enqueue-to-start
 * latency of the Redis queue.
 *
 *   bench_queue URL [N] [LATENCY_SAMPLES]
 *
 * Prints one JSON object: enqueue/s, dequeue+ack/s and end-to-end no-op
 * tasks/s with one producer and one consumer on one connection each, and
 * p50/p99/max of the time from calling aeth_queue_enqueue() to a blocked
 * consumer's aeth_queue_dequeue() returning.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "aetherium/aetherium.h"

static const aeth_queue_source SRC[] = {{"bench", 1, 0}};
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

		if (aeth_queue_dequeue(q, SRC, 1, 10000, &t))
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

int main(int argc, char **argv)
{
	int n = argc > 2 ? atoi(argv[2]) : 20000;
	int nlat = argc > 3 ? atoi(argv[3]) : 2000;
	unsigned int rnd = 0;
	aeth_queue *q;
	int64_t t0, t1, t2;
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
		if (aeth_queue_enqueue(q, "noop", "{}", &o, NULL))
			die("enqueue");
	}
	t1 = now_ns();
	for (int i = 0; i < n; i++) {
		aeth_queue_task *t;

		if (aeth_queue_dequeue(q, SRC, 1, 0, &t))
			die("dequeue");
		if (aeth_queue_ack(q, t, NULL))
			die("ack");
		aeth_queue_task_free(t);
	}
	t2 = now_ns();

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
		if (aeth_queue_enqueue(q, "noop", payload, &o, NULL))
			die("enqueue");
		usleep(1000);
	}
	pthread_join(th, NULL);
	qsort(lr.lat_ns, (size_t)nlat, sizeof(int64_t), cmp64);

	double enq_s = (double)(t1 - t0) / 1e9, deq_s = (double)(t2 - t1) / 1e9;
	printf("{\"n\": %d, \"enqueue_per_s\": %.0f, \"dequeue_ack_per_s\": %.0f, "
	       "\"noop_tasks_per_s\": %.0f, \"latency_samples\": %d, "
	       "\"latency_p50_ms\": %.3f, \"latency_p99_ms\": %.3f, \"latency_max_ms\": %.3f}\n",
	       n, n / enq_s, n / deq_s, n / (enq_s + deq_s), nlat,
	       (double)lr.lat_ns[nlat / 2] / 1e6, (double)lr.lat_ns[nlat * 99 / 100] / 1e6,
	       (double)lr.lat_ns[nlat - 1] / 1e6);
	free(lr.lat_ns);
	aeth_queue_free(q);
	return 0;
}
