/* Queue basics against a real redis-server: enqueue/dequeue/ack,
 * inspection, unique and scheduled tasks, retries with backoff, dead
 * tasks, leases (expiry, heartbeat, timeout), malformed messages. */
#include "qtest.h"
#include "queue/queue_rate.h"

static const aeth_queue_source DEF[] = {{AETH_QUEUE_SOURCE_VERSION, "default", 1, 0}};

static aeth_queue_task *take(aeth_queue *q, unsigned int timeout_ms)
{
	aeth_queue_task *t = NULL;

	QOK(aeth_queue_dequeue(&t, q, DEF, 1, timeout_ms));
	return t;
}

static void test_enqueue_dequeue_ack(void **state)
{
	qtest *s = *state;
	char id[37];
	aeth_queue_task *t, *g;
	aeth_queue_counts c = AETH_QUEUE_COUNTS_INIT;
	char **ids;

	QOK(aeth_queue_enqueue(id, s->q, "vm:create", "{\"name\":\"demo\"}",
			       NULL));
	QOK(aeth_queue_get(&g, s->q, NULL, id)); /* via the id index */
	assert_int_equal(g->version, AETH_QUEUE_TASK_VERSION); /* docs/api.md */
	assert_int_equal(g->state, AETH_QUEUE_PENDING);
	assert_string_equal(g->queue, "default");
	aeth_queue_task_free(g);
	QOK(aeth_queue_list(&ids, s->q, "default", AETH_QUEUE_PENDING, 0, 10));
	assert_string_equal(ids[0], id);
	assert_null(ids[1]);
	aeth_strarray_free(ids);

	t = take(s->q, 0);
	assert_string_equal(t->id, id);
	assert_string_equal(t->type, "vm:create");
	assert_string_equal(t->payload, "{\"name\":\"demo\"}");
	assert_int_equal(t->state, AETH_QUEUE_ACTIVE);
	assert_int_equal(t->max_retries, 3);
	assert_string_equal(t->worker, "test");
	QOK(aeth_queue_count(&c, s->q, "default"));
	assert_int_equal(c.n[AETH_QUEUE_ACTIVE], 1);
	assert_int_equal(c.n[AETH_QUEUE_PENDING], 0);
	assert_int_equal(aeth_queue_cancel(s->q, "default", id), AETH_ESTATE);

	QOK(aeth_queue_ack(s->q, t, "{\"vm_id\":\"x\"}"));
	assert_int_equal(aeth_queue_ack(s->q, t, NULL), 0); /* idempotent re-send */
	QOK(aeth_queue_get(&g, s->q, "default", id));
	assert_int_equal(g->state, AETH_QUEUE_COMPLETED);
	assert_string_equal(g->result, "{\"vm_id\":\"x\"}");
	assert_true(g->finished_ms >= g->started_ms);
	aeth_queue_task_free(g);
	QOK(aeth_queue_count(&c, s->q, "default"));
	assert_int_equal(c.n[AETH_QUEUE_COMPLETED], 1);
	assert_int_equal(c.n[AETH_QUEUE_ACTIVE], 0);
	aeth_queue_task_free(t);
	assert_int_equal(aeth_queue_dequeue(&t, s->q, DEF, 1,
					    0), AETH_ETIMEOUT);
	assert_null(t);
	QOK(aeth_queue_queues(&ids, s->q));
	assert_string_equal(ids[0], "default");
	aeth_strarray_free(ids);
	aeth_queue_task_free(t);
}

static void test_fifo_and_cancel(void **state)
{
	qtest *s = *state;
	char a[37], b[37], c[37];
	aeth_queue_task *t;

	QOK(aeth_queue_enqueue(a, s->q, "x", NULL, NULL));
	QOK(aeth_queue_enqueue(b, s->q, "x", NULL, NULL));
	QOK(aeth_queue_enqueue(c, s->q, "x", NULL, NULL));
	QOK(aeth_queue_cancel(s->q, NULL, b));
	assert_int_equal(aeth_queue_cancel(s->q, "default", b), AETH_ENOTFOUND);
	assert_int_equal(aeth_queue_get(&t, s->q, "default",
					b), AETH_ENOTFOUND);
	t = take(s->q, 0);
	assert_string_equal(t->id, a);
	aeth_queue_task_free(t);
	t = take(s->q, 0);
	assert_string_equal(t->id, c);
	aeth_queue_task_free(t);
}

static void test_unique(void **state)
{
	qtest *s = *state;
	aeth_queue_enqueue_options o = AETH_QUEUE_ENQUEUE_OPTIONS_INIT;
	char id[37], id2[37];
	aeth_queue_task *t;

	o.unique_key = "vm-create:demo";
	QOK(aeth_queue_enqueue(id, s->q, "vm:create", "{}", &o));
	assert_int_equal(aeth_queue_enqueue(id2, s->q, "vm:create", "{}",
					    &o), AETH_EEXISTS);
	print_message("%s\n", aeth_error_last());
	assert_non_null(strstr(aeth_error_last(), id));
	t = take(s->q, 0);
	QOK(aeth_queue_ack(s->q, t, NULL));
	aeth_queue_task_free(t);
	QOK(aeth_queue_enqueue(id2, s->q, "vm:create", "{}",
			       &o)); /* released */
	/* A caller-chosen id cannot be enqueued twice. */
	o.unique_key = NULL;
	o.id = id2;
	assert_int_equal(aeth_queue_enqueue(NULL, s->q, "vm:create", "{}",
					    &o), AETH_EEXISTS);
}

static void test_scheduled(void **state)
{
	qtest *s = *state;
	aeth_queue_enqueue_options o = AETH_QUEUE_ENQUEUE_OPTIONS_INIT;
	aeth_queue_task *t = NULL;
	char id[37];
	int64_t t0 = qtest_now_ms();

	o.process_at_ms = qtest_wall_ms() + 300;
	QOK(aeth_queue_enqueue(id, s->q, "later", NULL, &o));
	QOK(aeth_queue_get(&t, s->q, "default", id));
	assert_int_equal(t->state, AETH_QUEUE_SCHEDULED);
	aeth_queue_task_free(t);
	assert_int_equal(aeth_queue_dequeue(&t, s->q, DEF, 1,
					    0), AETH_ETIMEOUT);
	t = take(s->q, 3000); /* blocks until it is due, no polling */
	int64_t dt = qtest_now_ms() - t0;
	print_message("scheduled task started after %lld ms (due at 300)\n", (long long)dt);
	assert_true(dt >= 280 && dt < 1000);
	assert_string_equal(t->id, id);
	aeth_queue_task_free(t);
}

static void test_retries_backoff_then_dead(void **state)
{
	qtest *s = *state;
	aeth_queue_enqueue_options o = AETH_QUEUE_ENQUEUE_OPTIONS_INIT;
	aeth_queue_task *t;
	aeth_queue_counts c = AETH_QUEUE_COUNTS_INIT;
	char id[37];
	int64_t prev = 0;

	o.max_retries = 3;
	QOK(aeth_queue_enqueue(id, s->q, "flaky", NULL, &o));
	for (unsigned int i = 0; i < 3; i++) {
		t = take(s->q, 5000);
		assert_string_equal(t->id, id);
		assert_int_equal(t->retried, i);
		int64_t before = qtest_wall_ms();
		QOK(aeth_queue_nack(s->q, t, "boom", 0));
		assert_int_equal(t->state, AETH_QUEUE_RETRY);
		int64_t delay = t->process_at_ms - before;
		double nominal = 50.0 * (1 << i);
		print_message("retry %u after %lld ms (nominal %.0f +-25%%)\n", i + 1,
			      (long long)delay, nominal);
		assert_true(delay >= nominal * 0.75 - 5 && delay <= nominal * 1.25 + 5);
		if (i > 0)
			assert_true(delay > prev * 0.75 * 1.2); /* grows */
		prev = delay;
		aeth_queue_task_free(t);
	}
	t = take(s->q, 5000);
	assert_int_equal(t->retried, 3);
	assert_string_equal(t->error, "boom");
	QOK(aeth_queue_nack(s->q, t, "final boom", 0));
	assert_int_equal(t->state, AETH_QUEUE_DEAD);
	aeth_queue_task_free(t);
	QOK(aeth_queue_get(&t, s->q, "default", id));
	assert_int_equal(t->state, AETH_QUEUE_DEAD);
	assert_string_equal(t->error, "final boom");
	aeth_queue_task_free(t);
	QOK(aeth_queue_count(&c, s->q, "default"));
	assert_int_equal(c.n[AETH_QUEUE_DEAD], 1);
	assert_int_equal(c.n[AETH_QUEUE_RETRY], 0);
	/* No retry wanted: straight to dead. */
	QOK(aeth_queue_enqueue(id, s->q, "fatal", NULL, NULL));
	t = take(s->q, 0);
	QOK(aeth_queue_nack(s->q, t, "bad payload", AETH_QUEUE_NACK_NO_RETRY));
	assert_int_equal(t->state, AETH_QUEUE_DEAD);
	aeth_queue_task_free(t);
}

/* Given back un-started: pending at the head of the queue, no retry
 * counted (even with none left), no backoff, lease gone. */
static void test_release(void **state)
{
	qtest *s = *state;
	aeth_queue_enqueue_options o = AETH_QUEUE_ENQUEUE_OPTIONS_INIT;
	aeth_queue_task *t, *old;
	aeth_queue_counts c = AETH_QUEUE_COUNTS_INIT;
	char a[37], b[37];

	o.max_retries = 0;
	QOK(aeth_queue_enqueue(a, s->q, "x", NULL, &o));
	QOK(aeth_queue_enqueue(b, s->q, "x", NULL, &o));
	old = take(s->q, 0);
	assert_string_equal(old->id, a);
	QOK(aeth_queue_nack(s->q, old, "stopping",
			    AETH_QUEUE_NACK_RELEASE | AETH_QUEUE_NACK_NO_RETRY));
	assert_int_equal(old->state, AETH_QUEUE_PENDING);
	assert_int_equal(old->retried, 0);
	QOK(aeth_queue_count(&c, s->q, "default"));
	assert_int_equal(c.n[AETH_QUEUE_PENDING], 2);
	assert_int_equal(c.n[AETH_QUEUE_ACTIVE], 0);
	assert_int_equal(c.n[AETH_QUEUE_DEAD], 0);
	/* first again, at once, as a first try */
	t = take(s->q, 0);
	assert_string_equal(t->id, a);
	assert_int_equal(t->retried, 0);
	/* the old lease is gone: the given-back copy cannot ack or nack */
	assert_int_equal(aeth_queue_ack(s->q, old, NULL), AETH_ESTATE);
	assert_int_equal(aeth_queue_nack(s->q, old, "x", AETH_QUEUE_NACK_RELEASE),
			 AETH_ESTATE);
	QOK(aeth_queue_ack(s->q, t, NULL));
	aeth_queue_task_free(t);
	aeth_queue_task_free(old);
	t = take(s->q, 0);
	assert_string_equal(t->id, b);
	QOK(aeth_queue_ack(s->q, t, NULL));
	aeth_queue_task_free(t);
}

static void test_lease_expiry_recovered(void **state)
{
	qtest *s = *state;
	aeth_queue *a = qtest_open(s, 200), *b = qtest_open(s, 5000);
	aeth_queue_task *ta, *tb;
	char id[37];
	int64_t t0;

	QOK(aeth_queue_enqueue(id, a, "slow", NULL, NULL));
	QOK(aeth_queue_dequeue(&ta, a, DEF, 1, 0));
	t0 = qtest_now_ms();
	/* b blocks until a's lease deadline, then recovers the task. */
	QOK(aeth_queue_dequeue(&tb, b, DEF, 1, 3000));
	print_message("recovered %lld ms after the dequeue (lease 200 ms)\n",
		      (long long)(qtest_now_ms() - t0));
	assert_string_equal(tb->id, id);
	assert_int_equal(tb->retried, 1);
	assert_non_null(strstr(tb->error, "lease expired"));
	assert_int_equal(aeth_queue_heartbeat(a, ta), AETH_ESTATE);
	assert_int_equal(aeth_queue_ack(a, ta, NULL), AETH_ESTATE);
	QOK(aeth_queue_ack(b, tb, NULL));
	aeth_queue_task_free(ta);
	aeth_queue_task_free(tb);
	aeth_queue_free(a);
	aeth_queue_free(b);
}

static void test_heartbeat_keeps_lease(void **state)
{
	qtest *s = *state;
	aeth_queue *a = qtest_open(s, 300);
	aeth_queue_task *ta, *tb = NULL;
	unsigned int n;

	QOK(aeth_queue_enqueue(NULL, a, "long", NULL, NULL));
	QOK(aeth_queue_dequeue(&ta, a, DEF, 1, 0));
	int64_t first = ta->lease_deadline_ms;
	for (int i = 0; i < 9; i++) {
		usleep(100000);
		QOK(aeth_queue_heartbeat(a, ta));
		assert_int_equal(aeth_queue_dequeue(&tb, s->q, DEF, 1,
						    0), AETH_ETIMEOUT);
		QOK(aeth_queue_recover(&n, s->q, "default"));
		assert_int_equal(n, 0);
	}
	assert_true(ta->lease_deadline_ms >= first + 800);
	QOK(aeth_queue_ack(a, ta, NULL));
	aeth_queue_task_free(ta);
	aeth_queue_free(a);
}

static void test_heartbeat_after_timeout(void **state)
{
	qtest *s = *state;
	aeth_queue_enqueue_options o = AETH_QUEUE_ENQUEUE_OPTIONS_INIT;
	aeth_queue_task *t;

	o.timeout_ms = 100;
	QOK(aeth_queue_enqueue(NULL, s->q, "short", NULL, &o));
	t = take(s->q, 0);
	QOK(aeth_queue_heartbeat(s->q, t));
	usleep(200000);
	assert_int_equal(aeth_queue_heartbeat(s->q, t), AETH_ETIMEOUT);
	QOK(aeth_queue_nack(s->q, t, "timed out", 0));
	aeth_queue_task_free(t);
}

static void test_malformed_message_goes_dead(void **state)
{
	qtest *s = *state;
	const char *bad = "11111111-2222-4333-8444-555555555555";
	const char *gone = "11111111-2222-4333-8444-666666666666";
	aeth_queue_task *t = NULL;
	aeth_queue_counts c = AETH_QUEUE_COUNTS_INIT;
	char *r;

	/* A message hash without type/payload, and an id without a hash. */
	r = aeth_test_redis_cmd(s->url, "HSET {%s:default}:t:%s id %s queue default state pending",
				s->ns, bad, bad);
	free(r);
	free(aeth_test_redis_cmd(s->url, "LPUSH {%s:default}:pending %s %s", s->ns, gone, bad));
	assert_int_equal(aeth_queue_dequeue(&t, s->q, DEF, 1, 0), AETH_EPROTO);
	assert_non_null(strstr(aeth_error_last(), "malformed"));
	assert_int_equal(aeth_queue_dequeue(&t, s->q, DEF, 1, 0), AETH_EPROTO);
	assert_int_equal(aeth_queue_dequeue(&t, s->q, DEF, 1,
					    0), AETH_ETIMEOUT);
	QOK(aeth_queue_get(&t, s->q, "default", bad));
	assert_int_equal(t->state, AETH_QUEUE_DEAD);
	assert_non_null(strstr(t->error, "malformed"));
	aeth_queue_task_free(t);
	QOK(aeth_queue_count(&c, s->q, "default"));
	assert_int_equal(c.n[AETH_QUEUE_DEAD], 2);
	/* A hash with garbage state is reported, not crashed on. */
	free(aeth_test_redis_cmd(s->url, "HSET {%s:default}:t:%s state bogus", s->ns, bad));
	assert_int_equal(aeth_queue_get(&t, s->q, "default", bad), AETH_EPROTO);
}

static void test_bad_inputs(void **state)
{
	qtest *s = *state;
	aeth_queue_enqueue_options o = AETH_QUEUE_ENQUEUE_OPTIONS_INIT;
	aeth_queue_source src = {AETH_QUEUE_SOURCE_VERSION, "bad name", 1, 0};
	aeth_queue_task *t;
	char *big;

	assert_int_equal(aeth_queue_enqueue(NULL, s->q, "x", "{",
					    NULL), AETH_EINVALID);
	assert_non_null(strstr(aeth_error_last(), "not valid JSON"));
	assert_int_equal(aeth_queue_enqueue(NULL, s->q, "", "{}",
					    NULL), AETH_EINVALID);
	assert_int_equal(aeth_queue_enqueue(NULL, s->q, "a b", "{}",
					    NULL), AETH_EINVALID);
	/* the one rule for type names (aeth_task_type_valid()) */
	assert_int_equal(aeth_queue_enqueue(NULL, s->q, "app/build", "{}",
					    NULL),
			 AETH_EINVALID);
	assert_non_null(strstr(aeth_error_last(), "1 to 100 characters"));
	o.queue = "{evil}";
	assert_int_equal(aeth_queue_enqueue(NULL, s->q, "x", "{}",
					    &o), AETH_EINVALID);
	assert_non_null(strstr(aeth_error_last(), "bad queue name"));
	o.queue = NULL;
	o.id = "not-a-uuid";
	assert_int_equal(aeth_queue_enqueue(NULL, s->q, "x", "{}",
					    &o), AETH_EINVALID);
	o.id = NULL;
	/* the one version rule (docs/api.md): 1..current, else refused */
	o.version = AETH_QUEUE_ENQUEUE_OPTIONS_VERSION + 1;
	assert_int_equal(aeth_queue_enqueue(NULL, s->q, "x", "{}",
					    &o), AETH_EINVALID);
	assert_non_null(strstr(aeth_error_last(), "aeth_queue_enqueue_options.version"));
	assert_non_null(strstr(aeth_error_last(), "1..1"));
	o.version = 0;
	assert_int_equal(aeth_queue_enqueue(NULL, s->q, "x", "{}",
					    &o), AETH_EINVALID);
	o.version = AETH_QUEUE_ENQUEUE_OPTIONS_VERSION;
	big = malloc(2 << 20);
	memset(big, ' ', 2 << 20);
	big[0] = '1';
	big[(2 << 20) - 1] = '\0';
	assert_int_equal(aeth_queue_enqueue(NULL, s->q, "x", big,
					    NULL), AETH_ETOOBIG);
	free(big);
	assert_int_equal(aeth_queue_dequeue(&t, s->q, &src, 1,
					    0), AETH_EINVALID);
	assert_int_equal(aeth_queue_get(&t, s->q, NULL, "nope"), AETH_EINVALID);
	assert_int_equal(aeth_queue_get(&t, s->q, NULL,
					"11111111-2222-4333-8444-555555555555"),
			 AETH_ENOTFOUND);
	assert_false(aeth_queue_name_valid("worker:a b"));
	assert_true(aeth_queue_name_valid("worker:w-1.x_2"));
}

/* Completed tasks stay for the retention time: their hashes carry it as a
 * TTL, the completed zset (count, list) counts only those still kept and is
 * trimmed by the dequeue maintenance; one completed later stays. */
static void test_retention(void **state)
{
	qtest *s = *state;
	aeth_queue_options o = AETH_QUEUE_OPTIONS_INIT;
	enum { N = 300 };
	aeth_queue_batch_task *ts = calloc(N, sizeof(*ts));
	aeth_queue_task *out[100], *t, *g;
	aeth_queue_counts c = AETH_QUEUE_COUNTS_INIT;
	aeth_queue *q = NULL;
	char young[37], *r;
	size_t got, done = 0;

	o.url = s->url;
	o.ns = s->ns;
	o.worker_id = "test";
	o.retention_s = 1;
	QOK(aeth_queue_open(&q, &o));
	for (size_t i = 0; i < N; i++) {
		aeth_queue_batch_task_init(&ts[i], AETH_QUEUE_BATCH_TASK_VERSION);
		ts[i].type = "noop";
	}
	QOK(aeth_queue_enqueue_batch(q, ts, N));
	while (done < N) {
		QOK(aeth_queue_dequeue_batch(out, &got, 100, q, DEF, 1, 0));
		QOK(aeth_queue_ack_batch(NULL, q, out, NULL, got));
		for (size_t i = 0; i < got; i++)
			aeth_queue_task_free(out[i]);
		done += got;
	}
	r = aeth_test_redis_cmd(s->url, "PTTL {%s:default}:t:%s", s->ns, ts[0].id);
	assert_non_null(r);
	assert_true(atol(r) > 0 && atol(r) <= 1000);
	free(r);
	QOK(aeth_queue_count(&c, q, "default"));
	assert_int_equal(c.n[AETH_QUEUE_COMPLETED], N);

	sleep(1);
	usleep(200 * 1000);
	QOK(aeth_queue_enqueue(young, q, "noop", NULL, NULL));
	QOK(aeth_queue_dequeue(&t, q, DEF, 1, 0));
	QOK(aeth_queue_ack(q, t, "{\"young\":1}"));
	aeth_queue_task_free(t);
	for (size_t i = 0; i < N; i++) {
		r = aeth_test_redis_cmd(s->url, "EXISTS {%s:default}:t:%s", s->ns, ts[i].id);
		assert_string_equal(r, "0");
		free(r);
	}
	assert_int_equal(aeth_queue_get(&g, q, "default",
					ts[0].id), AETH_ENOTFOUND);
	QOK(aeth_queue_get(&g, q, "default", young));
	assert_int_equal(g->state, AETH_QUEUE_COMPLETED);
	assert_string_equal(g->result, "{\"young\":1}");
	aeth_queue_task_free(g);
	QOK(aeth_queue_count(&c, q, "default"));
	assert_int_equal(c.n[AETH_QUEUE_COMPLETED], 1);
	/* an empty queue: a dequeue runs the maintenance before it gives up */
	assert_int_equal(aeth_queue_dequeue(&t, q, DEF, 1, 0), AETH_ETIMEOUT);
	r = aeth_test_redis_cmd(s->url, "ZCARD {%s:default}:completed", s->ns);
	assert_string_equal(r, "1");
	free(r);
	aeth_queue_free(q);
	free(ts);
}

/* A tenant's max_rps bucket shared in Redis (queue_rate.h): a burst of
 * `rps`, then one token per 1/rps s; tenants in different slots (on a
 * cluster: nodes) are separate buckets; 0 is no limit. */
static void test_rate_shared_bucket(void **state)
{
	qtest *s = *state;
	static const char *const tenants[] = {"acme", "globex", "initech",
					      "umbrella", "hooli", "x.y-z_1"};
	unsigned int retry = 0;

	for (size_t i = 0; i < sizeof(tenants) / sizeof(*tenants); i++) {
		for (int n = 0; n < 5; n++)
			assert_int_equal(aeth__queue_rate_take(s->q, tenants[i], 5,
							       &retry), 1);
		assert_int_equal(aeth__queue_rate_take(s->q, tenants[i], 5,
						       &retry), 0);
		/* the next token is at most 200 ms away */
		assert_true(retry >= 1 && retry <= 200);
	}
	usleep(230 * 1000);
	assert_int_equal(aeth__queue_rate_take(s->q, "acme", 5, &retry), 1);
	assert_int_equal(aeth__queue_rate_take(s->q, "acme", 5, &retry), 0);
	assert_int_equal(aeth__queue_rate_take(s->q, "acme", 0, &retry), 1);
	assert_int_equal(aeth__queue_rate_take(s->q, "a}b", 5, &retry),
			 AETH_EINVALID);
}

/* A tenant's streams over several gateways (slots.lua): each gateway's
 * count with a lease; the limit over all live counts; a refused one not
 * counted; 0 removes a gateway; a lease that ran out drops its count. */
static void test_stream_slots(void **state)
{
	static const struct {
		const char *tenant, *gw;
		unsigned int own, limit, lease_ms;
		int rc;
		unsigned int total;
		unsigned int sleep_ms; /* before the step */
	} steps[] = {
		{"acme", "g1", 1, 2, 10000, 1, 1, 0},
		{"acme", "g2", 1, 2, 10000, 1, 2, 0},
		{"acme", "g2", 2, 2, 10000, 0, 2, 0}, /* refused: not counted */
		{"acme", "g1", 0, 0, 10000, 1, 1, 0}, /* 0: g1 gone */
		{"acme", "g2", 2, 2, 10000, 1, 2, 0},
		/* other tenants count apart; a lease that ran out drops */
		{"globex", "g1", 1, 1, 100, 1, 1, 0},
		{"globex", "g2", 1, 1, 10000, 0, 1, 0},
		{"globex", "g2", 1, 1, 10000, 1, 1, 150},
	};
	qtest *s = *state;
	unsigned int total = 0;

	for (size_t i = 0; i < sizeof(steps) / sizeof(*steps); i++) {
		if (steps[i].sleep_ms)
			usleep(steps[i].sleep_ms * 1000);
		assert_int_equal(aeth__queue_slots_set(s->q, steps[i].tenant,
						       steps[i].gw, steps[i].own,
						       steps[i].limit,
						       steps[i].lease_ms, &total),
				 steps[i].rc);
		assert_int_equal(total, steps[i].total);
	}
	assert_int_equal(aeth__queue_slots_set(s->q, "acme", "g 1", 1, 1, 100,
					       &total), AETH_EINVALID);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, qtest_setup, qtest_teardown)
		T(test_enqueue_dequeue_ack),
		T(test_fifo_and_cancel),
		T(test_unique),
		T(test_scheduled),
		T(test_retries_backoff_then_dead),
		T(test_release),
		T(test_lease_expiry_recovered),
		T(test_heartbeat_keeps_lease),
		T(test_heartbeat_after_timeout),
		T(test_malformed_message_goes_dead),
		T(test_bad_inputs),
		T(test_retention),
		T(test_rate_shared_bucket),
		T(test_stream_slots),
	};

	return cmocka_run_group_tests_name("queue_basic", tests, NULL, NULL);
}
