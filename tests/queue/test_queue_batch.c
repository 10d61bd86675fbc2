/* Batch calls against a real redis-server: enqueue many (mixed queues,
 * a bad task and a taken unique key fail alone), dequeue many in FIFO
 * order with a lease each, ack many (a lost lease fails alone, re-ack is
 * idempotent), leases of batch-dequeued tasks expire and are recovered,
 * malformed messages in a batch are skipped, the done list is written
 * only for a task someone waits for. */
#include <pthread.h>

#include "qtest.h"
#include "queue/queue_internal.h"

#define V AETH_QUEUE_SOURCE_VERSION
static const aeth_queue_source A[] = {{V, "qa", 1, 0}};
static const aeth_queue_source AB[] = {{V, "qa", 1, 1}, {V, "qb", 1, 1}};
static const aeth_queue_source DEF[] = {{V, "default", 1, 0}};
#undef V

/* One task of a batch. */
#define BT(type, payload, opts, rc) \
	(aeth_queue_batch_task){AETH_QUEUE_BATCH_TASK_VERSION, type, payload, opts, "", rc}

#define N 600

static void test_enqueue_batch_mixed(void **state)
{
	qtest *s = *state;
	aeth_queue_enqueue_options oa = AETH_QUEUE_ENQUEUE_OPTIONS_INIT,
		ob = AETH_QUEUE_ENQUEUE_OPTIONS_INIT, ou = AETH_QUEUE_ENQUEUE_OPTIONS_INIT;
	aeth_queue_batch_task *ts = calloc(N, sizeof(*ts));
	aeth_queue_counts c = AETH_QUEUE_COUNTS_INIT;
	aeth_queue_task *out[100];
	size_t got;
	int rc;

	oa.queue = "qa";
	ob.queue = "qb";
	ou.queue = "qa";
	ou.unique_key = "only-one";
	for (int i = 0; i < N; i++) {
		/* Runs of 300 per queue: more than one script call each. */
		ts[i] = BT("noop", "{\"i\":0}", i < 300 ? &oa : &ob, -99);
	}
	ts[5].payload = "{broken";
	ts[7].opts = &ou;
	ts[8].opts = &ou; /* same unique key in the same batch: taken */
	rc = aeth_queue_enqueue_batch(s->q, ts, N);
	print_message("batch rc %d: %s\n", rc, aeth_error_last());
	assert_int_equal(rc, AETH_EINVALID); /* the first failure: task 5 */
	assert_non_null(strstr(aeth_error_last(), "task 5"));
	assert_int_equal(ts[5].rc, AETH_EINVALID);
	assert_int_equal(ts[7].rc, 0);
	assert_int_equal(ts[8].rc, AETH_EEXISTS);
	for (int i = 0; i < N; i++)
		if (i != 5 && i != 8) {
			assert_int_equal(ts[i].rc, 0);
			assert_int_equal(strlen(ts[i].id), 36);
		}
	QOK(aeth_queue_count(&c, s->q, "qa"));
	assert_int_equal(c.n[AETH_QUEUE_PENDING], 298);
	QOK(aeth_queue_count(&c, s->q, "qb"));
	assert_int_equal(c.n[AETH_QUEUE_PENDING], 300);

	/* FIFO across script calls and batch calls. */
	size_t want = 0;
	for (int round = 0; round < 3; round++) {
		QOK(aeth_queue_dequeue_batch(out, &got, 100, s->q, A, 1, 0));
		assert_int_equal(got, round < 2 ? 100 : 98); /* 298 in qa */
		for (size_t j = 0; j < got; j++) {
			while (want == 5 || want == 8)
				want++;
			assert_string_equal(out[j]->id, ts[want].id);
			assert_int_equal(out[j]->state, AETH_QUEUE_ACTIVE);
			assert_string_equal(out[j]->queue, "qa");
			assert_string_equal(out[j]->payload, "{\"i\":0}");
			assert_non_null(aeth__q_lease(out[j]));
			assert_true(out[j]->lease_deadline_ms > out[j]->started_ms);
			if (j > 0)
				assert_string_not_equal(aeth__q_lease(out[j]),
							aeth__q_lease(out[j - 1]));
			want++;
		}
		QOK(aeth_queue_ack_batch(NULL, s->q, out, NULL, got));
		for (size_t j = 0; j < got; j++)
			aeth_queue_task_free(out[j]);
	}
	/* qa is empty now: a batch over both queues (qa first) fills up
	 * from qb. */
	QOK(aeth_queue_count(&c, s->q, "qa"));
	assert_int_equal(c.n[AETH_QUEUE_PENDING], 0);
	assert_int_equal(c.n[AETH_QUEUE_COMPLETED], 298);
	QOK(aeth_queue_count(&c, s->q, "qb"));
	assert_int_equal(c.n[AETH_QUEUE_PENDING], 300);
	QOK(aeth_queue_dequeue_batch(out, &got, 100, s->q, AB, 2, 0));
	assert_int_equal(got, 100);
	assert_string_equal(out[0]->queue, "qb");
	QOK(aeth_queue_ack_batch(NULL, s->q, out, NULL, got));
	for (size_t j = 0; j < got; j++)
		aeth_queue_task_free(out[j]);
	free(ts);
}

static void test_ack_batch_lost_lease_and_results(void **state)
{
	qtest *s = *state;
	aeth_queue_batch_task ts[4];
	aeth_queue_task *out[4], *g;
	const char *results[4] = {"{\"r\":0}", NULL, "{\"r\":2}", "{\"r\":3}"};
	int rcs[4];
	size_t got;
	char *saved;

	for (int i = 0; i < 4; i++)
		ts[i] = BT("noop", NULL, NULL, 0);
	QOK(aeth_queue_enqueue_batch(s->q, ts, 4));
	QOK(aeth_queue_dequeue_batch(out, &got, 4, s->q, DEF, 1, 0));
	assert_int_equal(got, 4);
	saved = out[2]->internal->lease;
	out[2]->internal->lease = strdup("not-the-lease");
	assert_int_equal(aeth_queue_ack_batch(rcs, s->q, out, results,
					      4), AETH_ESTATE);
	assert_non_null(strstr(aeth_error_last(), out[2]->id));
	assert_int_equal(rcs[0], 0);
	assert_int_equal(rcs[1], 0);
	assert_int_equal(rcs[2], AETH_ESTATE);
	assert_int_equal(rcs[3], 0);
	free(out[2]->internal->lease);
	out[2]->internal->lease = saved;
	/* Re-sent acks are idempotent; the real holder of task 2 acks it. */
	QOK(aeth_queue_ack_batch(rcs, s->q, out, results, 4));
	for (int i = 0; i < 4; i++) {
		QOK(aeth_queue_get(&g, s->q, NULL, out[i]->id));
		assert_int_equal(g->state, AETH_QUEUE_COMPLETED);
		if (results[i])
			assert_string_equal(g->result, results[i]);
		aeth_queue_task_free(g);
		aeth_queue_task_free(out[i]);
	}
	/* Bad inputs. */
	assert_int_equal(aeth_queue_ack_batch(NULL, s->q, out, NULL,
					      0), AETH_EINVALID);
	assert_int_equal(aeth_queue_enqueue_batch(s->q, ts, 0), AETH_EINVALID);
	assert_int_equal(aeth_queue_dequeue_batch(out, &got, 0, s->q, A, 1,
						  0), AETH_EINVALID);
	assert_int_equal(aeth_queue_dequeue_batch(out, &got, 1001, s->q, A, 1,
						  0), AETH_EINVALID);
	assert_int_equal(aeth_queue_dequeue_batch(out, &got, 4, s->q, A, 1,
						  0), AETH_ETIMEOUT);
	assert_int_equal(got, 0);
}

static void test_batch_leases_expire_and_recover(void **state)
{
	qtest *s = *state;
	aeth_queue *a = qtest_open(s, 200), *b = qtest_open(s, 5000);
	aeth_queue_enqueue_options o = AETH_QUEUE_ENQUEUE_OPTIONS_INIT;
	aeth_queue_batch_task ts[5];
	aeth_queue_task *ta[5], *tb[5];
	size_t got, total = 0;

	o.queue = "qa";
	for (int i = 0; i < 5; i++)
		ts[i] = BT("slow", NULL, &o, 0);
	QOK(aeth_queue_enqueue_batch(a, ts, 5));
	QOK(aeth_queue_dequeue_batch(ta, &got, 5, a, A, 1, 0));
	assert_int_equal(got, 5);
	QOK(aeth_queue_heartbeat(a, ta[0]));
	/* b blocks until the leases expire, then gets all five back. */
	while (total < 5) {
		QOK(aeth_queue_dequeue_batch(tb + total, &got, 5 - total, b, A,
					     1, 3000));
		total += got;
	}
	for (int i = 0; i < 5; i++) {
		assert_int_equal(tb[i]->retried, 1);
		assert_non_null(strstr(tb[i]->error, "lease expired"));
		assert_int_equal(aeth_queue_ack(a, ta[i], NULL), AETH_ESTATE);
	}
	QOK(aeth_queue_ack_batch(NULL, b, tb, NULL, 5));
	for (int i = 0; i < 5; i++) {
		aeth_queue_task_free(ta[i]);
		aeth_queue_task_free(tb[i]);
	}
	aeth_queue_free(a);
	aeth_queue_free(b);
}

static void test_batch_skips_malformed(void **state)
{
	qtest *s = *state;
	const char *bad = "11111111-2222-4333-8444-555555555555";
	aeth_queue_enqueue_options o = AETH_QUEUE_ENQUEUE_OPTIONS_INIT;
	aeth_queue_task *out[10], *t;
	char id1[37], id2[37];
	size_t got;

	o.queue = "qa";
	QOK(aeth_queue_enqueue(id1, s->q, "x", NULL, &o));
	free(aeth_test_redis_cmd(s->url, "LPUSH {%s:qa}:pending %s", s->ns, bad));
	QOK(aeth_queue_enqueue(id2, s->q, "x", NULL, &o));
	QOK(aeth_queue_dequeue_batch(out, &got, 10, s->q, A, 1, 0));
	assert_int_equal(got, 2);
	assert_string_equal(out[0]->id, id1);
	assert_string_equal(out[1]->id, id2);
	QOK(aeth_queue_ack_batch(NULL, s->q, out, NULL, 2));
	aeth_queue_task_free(out[0]);
	aeth_queue_task_free(out[1]);
	QOK(aeth_queue_get(&t, s->q, "qa", bad));
	assert_int_equal(t->state, AETH_QUEUE_DEAD);
	aeth_queue_task_free(t);
}

typedef struct {
	qtest *s;
	char id[37];
	int rc;
	aeth_queue_task *t;
} waiter;

static void *wait_for(void *arg)
{
	waiter *w = arg;
	aeth_queue *q = qtest_open(w->s, 0);

	w->rc = aeth_queue_wait_result(&w->t, q, NULL, w->id, 5000);
	aeth_queue_free(q);
	return NULL;
}

static void test_done_list_only_when_waited(void **state)
{
	qtest *s = *state;
	aeth_queue_task *t;
	waiter w = {s, "", -1, NULL};
	pthread_t th;
	char id[37], *r;

	QOK(aeth_queue_enqueue(id, s->q, "x", NULL, NULL));
	QOK(aeth_queue_dequeue(&t, s->q, DEF, 1, 0));
	QOK(aeth_queue_ack(s->q, t, "{}"));
	aeth_queue_task_free(t);
	r = aeth_test_redis_cmd(s->url, "EXISTS {%s:default}:done:%s", s->ns, id);
	assert_string_equal(r, "0"); /* nobody waited: no key written */
	free(r);

	QOK(aeth_queue_enqueue(w.id, s->q, "x", NULL, NULL));
	assert_int_equal(pthread_create(&th, NULL, wait_for, &w), 0);
	usleep(200000); /* the waiter marked the task and blocks */
	QOK(aeth_queue_dequeue(&t, s->q, DEF, 1, 0));
	int64_t t0 = qtest_now_ms();
	QOK(aeth_queue_ack(s->q, t, "{\"ok\":1}"));
	pthread_join(th, NULL);
	print_message("waiter returned %lld ms after the ack\n", (long long)(qtest_now_ms() - t0));
	assert_int_equal(w.rc, 0);
	assert_true(qtest_now_ms() - t0 < 1000);
	assert_string_equal(w.t->result, "{\"ok\":1}");
	aeth_queue_task_free(w.t);
	aeth_queue_task_free(t);
}

static void test_batch_after_script_flush(void **state)
{
	qtest *s = *state;
	aeth_queue_batch_task ts[3];
	aeth_queue_task *out[3];
	size_t got;

	for (int i = 0; i < 3; i++)
		ts[i] = BT("noop", NULL, NULL, 0);
	QOK(aeth_queue_enqueue_batch(s->q, ts, 3));
	/* The server forgets our scripts (as after a restart): every batch
	 * call reloads them and goes on. */
	free(aeth_test_redis_cmd(s->url, "SCRIPT FLUSH"));
	QOK(aeth_queue_enqueue_batch(s->q, ts, 3));
	free(aeth_test_redis_cmd(s->url, "SCRIPT FLUSH"));
	QOK(aeth_queue_dequeue_batch(out, &got, 3, s->q, DEF, 1, 0));
	assert_int_equal(got, 3);
	QOK(aeth_queue_ack_batch(NULL, s->q, out, NULL, 3));
	for (int i = 0; i < 3; i++)
		aeth_queue_task_free(out[i]);
	QOK(aeth_queue_dequeue_batch(out, &got, 3, s->q, DEF, 1, 0));
	assert_int_equal(got, 3);
	free(aeth_test_redis_cmd(s->url, "SCRIPT FLUSH"));
	QOK(aeth_queue_ack_batch(NULL, s->q, out, NULL, 3));
	for (int i = 0; i < 3; i++)
		aeth_queue_task_free(out[i]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, qtest_setup, qtest_teardown)
		T(test_enqueue_batch_mixed),
		T(test_ack_batch_lost_lease_and_results),
		T(test_batch_leases_expire_and_recover),
		T(test_batch_skips_malformed),
		T(test_done_list_only_when_waited),
		T(test_batch_after_script_flush),
	};

	return cmocka_run_group_tests_name("queue_batch", tests, NULL, NULL);
}
