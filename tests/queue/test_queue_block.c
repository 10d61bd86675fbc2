/* Blocking: a blocked consumer wakes within milliseconds of an enqueue,
 * an idle blocked consumer sends no commands (INFO commandstats), and
 * wait_result wakes when the task completes. Uses its own private
 * redis-server so that other tests' traffic cannot disturb the counts. */
#include <pthread.h>

#include "qtest.h"

typedef struct {
	qtest *s;
	unsigned int timeout_ms;
	int rc;
	int64_t woke_ms;
	aeth_queue_task *task;
	const char *result; /* ack with this after 100 ms (consumer mode) */
} consumer;

#define V AETH_QUEUE_SOURCE_VERSION
static const aeth_queue_source SRC[] = {{V, "worker:w1", 1, 1}, {V, "default", 3, 0},
					 {V, "low", 1, 0}};
#undef V

static void *consume(void *arg)
{
	consumer *c = arg;
	aeth_queue *q = qtest_open(c->s, 0);

	c->rc = aeth_queue_dequeue(&c->task, q, SRC, 3, c->timeout_ms);
	c->woke_ms = qtest_now_ms();
	if (c->rc == 0 && c->result) {
		usleep(100000);
		c->rc = aeth_queue_ack(q, c->task, c->result);
	}
	aeth_queue_free(q);
	return NULL;
}

static long long stat_calls(const char *url, const char *cmd)
{
	char *info = aeth_test_redis_cmd(url, "INFO commandstats"), *p;
	char needle[64];
	long long n = 0;

	assert_non_null(info);
	snprintf(needle, sizeof(needle), "cmdstat_%s:calls=", cmd);
	if ((p = strstr(info, needle)))
		n = atoll(p + strlen(needle));
	free(info);
	return n;
}

static void test_wakeup_latency_and_no_polling(void **state)
{
	qtest *s = *state;
	consumer c = {s, 10000, -1, 0, NULL, NULL};
	aeth_queue_enqueue_options o = AETH_QUEUE_ENQUEUE_OPTIONS_INIT;
	pthread_t th;
	long long ev0, br0, ev1, br1;
	int64_t t0;

	assert_int_equal(pthread_create(&th, NULL, consume, &c), 0);
	usleep(300000); /* it scanned its queues and blocks now */
	ev0 = stat_calls(s->url, "evalsha");
	br0 = stat_calls(s->url, "brpop");
	usleep(1000000);
	ev1 = stat_calls(s->url, "evalsha");
	br1 = stat_calls(s->url, "brpop");
	print_message("while idle for 1 s: evalsha %lld -> %lld, brpop %lld -> %lld\n",
		      ev0, ev1, br0, br1);
	assert_int_equal(ev0, ev1);
	assert_int_equal(br0, br1);

	o.queue = "low";
	t0 = qtest_now_ms();
	QOK(aeth_queue_enqueue(NULL, s->q, "noop", "{}", &o));
	pthread_join(th, NULL);
	assert_int_equal(c.rc, 0);
	print_message("enqueue-to-start latency of a blocked consumer: %lld ms\n",
		      (long long)(c.woke_ms - t0));
	assert_true(c.woke_ms - t0 <= 20);
	assert_string_equal(c.task->queue, "low");
	aeth_queue_task_free(c.task);
}

static void test_dequeue_times_out(void **state)
{
	qtest *s = *state;
	aeth_queue_task *t;
	int64_t t0 = qtest_now_ms();

	assert_int_equal(aeth_queue_dequeue(&t, s->q, SRC, 3,
					    300), AETH_ETIMEOUT);
	int64_t dt = qtest_now_ms() - t0;
	print_message("empty dequeue with 300 ms timeout returned after %lld ms\n",
		      (long long)dt);
	assert_true(dt >= 290 && dt < 1500);
}

static void test_wait_result(void **state)
{
	qtest *s = *state;
	consumer c = {s, 5000, -1, 0, NULL, "{\"exit_code\":0}"};
	aeth_queue_task *t;
	pthread_t th;
	char id[37];

	QOK(aeth_queue_enqueue(id, s->q, "vm:execute", "{}", NULL));
	assert_int_equal(aeth_queue_wait_result(&t, s->q, NULL, id,
						200), AETH_ETIMEOUT);
	assert_int_equal(pthread_create(&th, NULL, consume, &c), 0);
	QOK(aeth_queue_wait_result(&t, s->q, NULL, id, 5000));
	int64_t got = qtest_now_ms();
	pthread_join(th, NULL);
	assert_int_equal(c.rc, 0);
	assert_int_equal(t->state, AETH_QUEUE_COMPLETED);
	assert_string_equal(t->result, "{\"exit_code\":0}");
	print_message("wait_result returned %lld ms after the consumer woke (+100 ms work)\n",
		      (long long)(got - c.woke_ms));
	aeth_queue_task_free(t);
	aeth_queue_task_free(c.task);
	/* A second waiter returns at once. */
	QOK(aeth_queue_wait_result(&t, s->q, "default", id, 1000));
	aeth_queue_task_free(t);
}

static void test_wait_result_dead(void **state)
{
	qtest *s = *state;
	aeth_queue_enqueue_options o = AETH_QUEUE_ENQUEUE_OPTIONS_INIT;
	aeth_queue_task *t, *w;
	char id[37];

	o.max_retries = 0;
	QOK(aeth_queue_enqueue(id, s->q, "vm:execute", "{}", &o));
	QOK(aeth_queue_dequeue(&t, s->q, SRC, 3, 0));
	QOK(aeth_queue_nack(s->q, t, "vm not found", 0));
	QOK(aeth_queue_wait_result(&w, s->q, NULL, id, 1000));
	assert_int_equal(w->state, AETH_QUEUE_DEAD);
	assert_string_equal(w->error, "vm not found");
	aeth_queue_task_free(t);
	aeth_queue_task_free(w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_wakeup_latency_and_no_polling, qtest_private_setup, qtest_teardown),
		cmocka_unit_test_setup_teardown(test_dequeue_times_out, qtest_private_setup, qtest_teardown),
		cmocka_unit_test_setup_teardown(test_wait_result, qtest_private_setup, qtest_teardown),
		cmocka_unit_test_setup_teardown(test_wait_result_dead, qtest_private_setup, qtest_teardown),
	};

	return cmocka_run_group_tests_name("queue_block", tests, NULL, qtest_private_free);
}
