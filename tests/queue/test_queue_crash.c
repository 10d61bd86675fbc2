/* Failures: a consumer killed with SIGKILL mid-task (its task is
 * recovered by another consumer and acked once), Redis restarted under a
 * client (it reconnects and goes on), a blocked consumer whose server
 * dies (AETH_EUNAVAILABLE, no hang), unreachable servers. Runs its own
 * private redis-server, since it stops and starts it. */
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>

#include "qtest.h"

static const aeth_queue_source DEF[] = {{AETH_QUEUE_SOURCE_VERSION, "default", 1, 0}};

static void test_sigkill_mid_task_recovered_once(void **state)
{
	qtest *s = *state;
	aeth_queue *b = qtest_open(s, 5000);
	aeth_queue_task *t;
	aeth_queue_counts c = AETH_QUEUE_COUNTS_INIT;
	char id[37], got[37] = "";
	int p[2], st;
	pid_t pid;

	QOK(aeth_queue_enqueue(id, s->q, "vm:execute", "{}", NULL));
	assert_int_equal(pipe(p), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/* The child: its own connection, a short lease, dies mid-task. */
		aeth_queue *q = qtest_open(s, 300);
		aeth_queue_task *ct;

		if (aeth_queue_dequeue(&ct, q, DEF, 1, 2000) == 0)
			(void)!write(p[1], ct->id, 37);
		raise(SIGKILL);
		_exit(1);
	}
	close(p[1]);
	assert_int_equal(read(p[0], got, 37), 37);
	close(p[0]);
	waitpid(pid, &st, 0);
	assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
	assert_string_equal(got, id);

	QOK(aeth_queue_dequeue(&t, b, DEF, 1, 3000));
	assert_string_equal(t->id, id);
	assert_int_equal(t->retried, 1);
	QOK(aeth_queue_ack(b, t, "{}"));
	aeth_queue_task_free(t);
	/* Delivered again exactly once, completed once. */
	assert_int_equal(aeth_queue_dequeue(&t, b, DEF, 1, 500), AETH_ETIMEOUT);
	QOK(aeth_queue_count(&c, b, "default"));
	assert_int_equal(c.n[AETH_QUEUE_COMPLETED], 1);
	assert_int_equal(c.n[AETH_QUEUE_ACTIVE], 0);
	assert_int_equal(c.n[AETH_QUEUE_PENDING], 0);
	aeth_queue_free(b);
}

static void test_redis_restart_reconnects(void **state)
{
	qtest *s = *state;
	aeth_queue_task *t;
	char id[37];

	QOK(aeth_queue_enqueue(NULL, s->q, "before", NULL, NULL));
	QOK(aeth_queue_dequeue(&t, s->q, DEF, 1, 0));
	QOK(aeth_queue_ack(s->q, t, NULL));
	aeth_queue_task_free(t);

	assert_int_equal(aeth_test_redis_restart(qtest_private()), 0); /* empty again: no persistence */
	/* The next calls reconnect by themselves (and reload the scripts). */
	QOK(aeth_queue_enqueue(id, s->q, "after", NULL, NULL));
	QOK(aeth_queue_dequeue(&t, s->q, DEF, 1, 0));
	assert_string_equal(t->id, id);
	QOK(aeth_queue_ack(s->q, t, NULL));
	aeth_queue_task_free(t);
}

typedef struct {
	qtest *s;
	int rc;
	int64_t ms;
} blocked;

static void *block_dequeue(void *arg)
{
	blocked *b = arg;
	aeth_queue *q = qtest_open(b->s, 0);
	aeth_queue_task *t = NULL;
	int64_t t0 = qtest_now_ms();

	b->rc = aeth_queue_dequeue(&t, q, DEF, 1, 20000);
	b->ms = qtest_now_ms() - t0;
	aeth_queue_task_free(t);
	aeth_queue_free(q);
	return NULL;
}

static void test_blocked_consumer_sees_dead_server(void **state)
{
	qtest *s = *state;
	blocked b = {s, 0, 0};
	pthread_t th;

	assert_int_equal(pthread_create(&th, NULL, block_dequeue, &b), 0);
	usleep(300000);
	assert_int_equal(aeth_test_redis_stop(qtest_private()), 0);
	pthread_join(th, NULL);
	print_message("blocked dequeue returned %d after %lld ms: %s\n", b.rc,
		      (long long)b.ms, aeth_error_last());
	assert_int_equal(b.rc, AETH_EUNAVAILABLE);
	assert_true(b.ms < 5000);
	assert_int_equal(aeth_queue_ping(s->q), AETH_EUNAVAILABLE);
	assert_non_null(strstr(aeth_error_last(), "is redis-server running?"));
	assert_int_equal(aeth_test_redis_restart(qtest_private()), 0);
	QOK(aeth_queue_ping(s->q));
}

static void test_unreachable_and_bad_urls(void **state)
{
	aeth_queue_options o = AETH_QUEUE_OPTIONS_INIT;
	aeth_queue *q = NULL;
	const char *bad[] = {"ftp://x", "redis://", "redis://h:0", "redis://h:99999",
			     "redis://h:6379/x", "unix://relative.sock", "unix:///s?db=x",
			     "unix:///s?colour=red", "redis://:secret@h:notaport"};

	(void)state;
	o.url = "unix:///nonexistent/aeth/redis.sock";
	assert_int_equal(aeth_queue_open(&q, &o), AETH_EUNAVAILABLE);
	print_message("%s\n", aeth_error_last());
	assert_non_null(strstr(aeth_error_last(),
		"redis at unix:///nonexistent/aeth/redis.sock"));
	assert_non_null(strstr(aeth_error_last(), "scripts/services.sh start"));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		o.url = bad[i];
		assert_int_equal(aeth_queue_open(&q, &o), AETH_EINVALID);
		assert_null(strstr(aeth_error_last(), "secret"));
	}
	o.url = aeth_test_redis_server_url(qtest_private());
	o.ns = "bad{ns}";
	assert_int_equal(aeth_queue_open(&q, &o), AETH_EINVALID);
	o.ns = NULL;
	o.version = 99;
	assert_int_equal(aeth_queue_open(&q, &o), AETH_EINVALID);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_sigkill_mid_task_recovered_once, qtest_private_setup, qtest_teardown),
		cmocka_unit_test_setup_teardown(test_redis_restart_reconnects, qtest_private_setup, qtest_teardown),
		cmocka_unit_test_setup_teardown(test_blocked_consumer_sees_dead_server, qtest_private_setup, qtest_teardown),
		cmocka_unit_test_setup_teardown(test_unreachable_and_bad_urls, qtest_private_setup, qtest_teardown),
	};

	return cmocka_run_group_tests_name("queue_crash", tests, NULL, qtest_private_free);
}
