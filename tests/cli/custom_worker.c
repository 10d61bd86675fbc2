/*
 * tests/cli/custom_worker.c - a worker with one custom handler, as an
 * application embedding the library would write it: "demo:echo" answers
 * {"echo": <payload>}. For the e2e test of custom task types (the worker
 * registry lets aeth-submit accept the type because this worker runs).
 *
 *   custom_worker ID QUEUES [CONCURRENCY]   e.g. custom_worker e2e-demo demo=1
 *
 * Services from $AETH_DATABASE_URL / $AETH_REDIS_URL; SIGTERM stops it.
 * For the fault tests (tests/fault): a payload {"sleep_ms": N} makes the
 * handler take N ms (it stops early when the task is cancelled), and with
 * $AETH_TEST_RUN_LOG set every run of the handler appends the task's id
 * to that file, so that a task run twice shows up twice. The library's
 * log goes to stderr at $AETH_LOGGING_LEVEL (default warn).
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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

static int run_log = -1;

/* One line per run, written with one write() to an O_APPEND file: lines
 * of several slots and workers never mix. */
static void log_run(const aeth_task *t)
{
	char line[40];

	if (run_log < 0)
		return;
	snprintf(line, sizeof(line), "%s\n", aeth_task_id(t));
	if (write(run_log, line, strlen(line)) < 0)
		perror("custom_worker: run log");
}

/* The payload's "sleep_ms" (written as {"sleep_ms": N}: a test's payload,
 * no JSON parser needed), in 10 ms steps that look at cancellation. */
static void nap(aeth_task *t, const char *payload)
{
	const char *at = strstr(payload, "\"sleep_ms\":");
	long ms = at ? strtol(at + strlen("\"sleep_ms\":"), NULL, 10) : 0;
	struct timespec step = {0, 10 * 1000000L};

	for (; ms > 0 && !aeth_task_cancelled(t); ms -= 10)
		nanosleep(&step, NULL);
}

static int echo(aeth_task *t, void *userdata)
{
	const char *p = aeth_task_payload(t);
	size_t n = strlen(p) + 16;
	char *json = malloc(n);
	int rc;

	(void)userdata;
	log_run(t);
	nap(t, p);
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

	if (argc != 3 && argc != 4) {
		fprintf(stderr, "usage: custom_worker ID QUEUES [CONCURRENCY]\n");
		return 2;
	}
	o.id = argv[1];
	o.queues = argv[2];
	o.concurrency = argc == 4 ? (unsigned int)atoi(argv[3]) : 1;
	if (getenv("AETH_TEST_RUN_LOG") &&
	    (run_log = open(getenv("AETH_TEST_RUN_LOG"),
			    O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600)) < 0) {
		perror("custom_worker: AETH_TEST_RUN_LOG");
		return 1;
	}
	o.on_event = on_event;
	/* the library's log on stderr, at $AETH_LOGGING_LEVEL (default warn),
	 * as aeth-worker does */
	aeth_log_set(aeth_log_stderr, getenv("AETH_LOGGING_LEVEL") &&
		     aeth_log_level_parse(getenv("AETH_LOGGING_LEVEL")) >= 0 ?
		     (aeth_log_level)aeth_log_level_parse(getenv("AETH_LOGGING_LEVEL")) :
		     AETH_LOG_WARN, NULL);
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
