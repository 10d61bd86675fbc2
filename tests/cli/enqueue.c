/*
 * tests/cli/enqueue.c - put one task straight into the Redis queue with
 * the queue API, as a producer that is not aeth-submit would: no tasks
 * row, no payload validation, no routing. For the e2e test's bad-payload
 * and forwarding cases.
 *
 *   enqueue QUEUE TYPE PAYLOAD [DELAY_MS]   prints the task id
 *
 * Redis from $AETH_REDIS_URL (key namespace: the default). DELAY_MS > 0
 * schedules the task that far ahead (the test rewrites its message in
 * Redis meanwhile to get a payload the queue API itself would refuse).
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "aetherium/aetherium.h"

int main(int argc, char **argv)
{
	aeth_queue_options o = AETH_QUEUE_OPTIONS_INIT;
	aeth_queue_enqueue_options eo = AETH_QUEUE_ENQUEUE_OPTIONS_INIT;
	aeth_queue *q = NULL;
	char id[37];
	struct timespec now;

	if (argc < 4 || argc > 5) {
		fprintf(stderr, "usage: enqueue QUEUE TYPE PAYLOAD [DELAY_MS]\n");
		return 2;
	}
	o.url = getenv("AETH_REDIS_URL");
	eo.queue = argv[1];
	if (argc == 5 && atol(argv[4]) > 0) {
		clock_gettime(CLOCK_REALTIME, &now);
		eo.process_at_ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000 +
				   atol(argv[4]);
	}
	if (aeth_queue_open(&q, &o) != 0 ||
	    aeth_queue_enqueue(id, q, argv[2], argv[3], &eo) != 0) {
		fprintf(stderr, "enqueue: %s\n", aeth_error_last());
		aeth_queue_free(q);
		return 1;
	}
	printf("%s\n", id);
	aeth_queue_free(q);
	return 0;
}
