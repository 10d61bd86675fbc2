/*
 * tests/cli/custom_worker.c - a worker with one custom handler, as an
 * application embedding the library would write it: "demo:echo" answers
 * {"echo": <payload>}. For the e2e test of custom task types (the worker
 * registry lets aeth-submit accept the type because this worker runs).
 *
 *   custom_worker ID QUEUES      e.g. custom_worker e2e-demo demo=1
 *
 * Services from $AETH_DATABASE_URL / $AETH_REDIS_URL; SIGTERM stops it.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aetherium/aetherium.h"

static aeth_worker *worker;

static void on_signal(int sig)
{
	(void)sig;
	aeth_worker_stop(worker);
}

static void on_event(const char *task_id, const char *line, void *userdata)
{
	(void)task_id;
	(void)userdata;
	printf("%s\n", line);
	fflush(stdout);
}

static int echo(aeth_task *t, void *userdata)
{
	const char *p = aeth_task_payload(t);
	size_t n = strlen(p) + 16;
	char *json = malloc(n);
	int rc;

	(void)userdata;
	if (!json)
		return aeth_task_fail(t, 1, "out of memory");
	snprintf(json, n, "{\"echo\":%s}", p);
	rc = aeth_task_set_result(t, json);
	free(json);
	return rc;
}

int main(int argc, char **argv)
{
	aeth_worker_options o = AETH_WORKER_OPTIONS_INIT;
	struct sigaction sa;
	int rc;

	if (argc != 3) {
		fprintf(stderr, "usage: custom_worker ID QUEUES\n");
		return 2;
	}
	o.id = argv[1];
	o.queues = argv[2];
	o.concurrency = 1;
	o.on_event = on_event;
	if (aeth_init() != 0 || aeth_worker_new(&worker, &o) != 0 ||
	    aeth_worker_handle(worker, "demo:echo", echo, NULL) != 0) {
		fprintf(stderr, "custom_worker: %s\n", aeth_error_last());
		return 1;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	printf("Worker id: %s\nRegistered handlers for: %s\n", aeth_worker_id(worker),
	       aeth_worker_types(worker));
	fflush(stdout);
	rc = aeth_worker_run(worker);
	if (rc != 0)
		fprintf(stderr, "custom_worker: %s\n", aeth_error_last());
	aeth_worker_free(worker);
	aeth_shutdown();
	return rc ? 1 : 0;
}
