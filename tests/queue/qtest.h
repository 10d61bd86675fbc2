/*
 * tests/queue/qtest.h - shared set-up of the queue tests: a Redis URL, a
 * fresh key namespace per test, handles with test-friendly options.
 */
#ifndef AETH_QTEST_H
#define AETH_QTEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "aetherium/aetherium.h"
#include "redis.h"

typedef struct {
	const char *url;
	char *ns;
	aeth_queue *q;
} qtest;

static inline aeth_queue *qtest_open(const qtest *t, unsigned int lease_ms)
{
	aeth_queue_options o = AETH_QUEUE_OPTIONS_INIT;
	aeth_queue *q = NULL;
	int rc;

	o.url = t->url;
	o.ns = t->ns;
	o.worker_id = "test";
	o.lease_ms = lease_ms;
	o.retry_base_ms = 50;
	rc = aeth_queue_open(&q, &o);
	if (rc)
		fail_msg("aeth_queue_open: %s", aeth_error_last());
	return q;
}

static inline int qtest_setup(void **state)
{
	qtest *t = calloc(1, sizeof(*t));

	assert_non_null(t);
	t->url = aeth_test_redis_url();
	if (!t->url)
		fail_msg("no Redis for the queue tests: install redis-server, or set "
			 "AETH_TEST_REDIS_URL (eval \"$(scripts/services.sh env)\")");
	t->ns = aeth_test_redis_prefix();
	t->q = qtest_open(t, 0);
	*state = t;
	return 0;
}

/*
 * A private redis-server for the test files that must not share one (they
 * count commands, or stop and restart it): started on first use, freed by
 * qtest_private_free() as the group teardown.
 */
static inline aeth_test_redis **qtest_private_slot(void)
{
	static aeth_test_redis *srv;

	return &srv;
}

static inline aeth_test_redis *qtest_private(void)
{
	aeth_test_redis **srv = qtest_private_slot();

	if (!*srv && aeth_test_redis_start(srv))
		fail_msg("cannot start a private redis-server (apt-get install redis-server)");
	return *srv;
}

static inline int qtest_private_free(void **state)
{
	aeth_test_redis_free(*qtest_private_slot());
	*qtest_private_slot() = NULL;
	return 0;
}

/* qtest_setup() on the private server. */
static inline int qtest_private_setup(void **state)
{
	qtest *t = calloc(1, sizeof(*t));

	assert_non_null(t);
	t->url = aeth_test_redis_server_url(qtest_private());
	t->ns = aeth_test_redis_prefix();
	t->q = qtest_open(t, 0);
	*state = t;
	return 0;
}

static inline int qtest_teardown(void **state)
{
	qtest *t = *state;

	aeth_queue_free(t->q);
	aeth_test_redis_cleanup(t->url, t->ns);
	free(t->ns);
	free(t);
	return 0;
}

static inline int64_t qtest_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline int64_t qtest_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#define QOK(expr) do { int rc_ = (expr); \
	if (rc_) fail_msg("%s: %d %s", #expr, rc_, aeth_error_last()); } while (0)

#endif
