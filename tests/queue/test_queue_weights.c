/* Weighted priority queues: with every queue full, 10k dequeues split
 * near 6:5:3:1, and a strict queue (a worker's own) is always served
 * first. */
#include <math.h>

#include "qtest.h"

static const char *const NAMES[4] = {"critical", "high", "default", "low"};
static const unsigned int W[4] = {6, 5, 3, 1};

static void fill(aeth_queue *q, const char *queue, int n)
{
	aeth_queue_enqueue_options o = AETH_QUEUE_ENQUEUE_OPTIONS_INIT;

	o.queue = queue;
	for (int i = 0; i < n; i++)
		QOK(aeth_queue_enqueue(NULL, q, "noop", "{}", &o));
}

static int index_of(const char *queue)
{
	for (int i = 0; i < 4; i++)
		if (!strcmp(queue, NAMES[i]))
			return i;
	return -1;
}

static void test_weighted_proportions(void **state)
{
	qtest *s = *state;
	aeth_queue_source src[4];
	int got[4] = {0};
	const int N = 10000;

	for (int i = 0; i < 4; i++) {
		src[i].version = AETH_QUEUE_SOURCE_VERSION;
		src[i].name = NAMES[i];
		src[i].weight = W[i];
		src[i].strict = 0;
		/* Enough that no queue runs dry within N dequeues. */
		fill(s->q, NAMES[i], N * (int)W[i] / 15 + 600);
	}
	for (int i = 0; i < N; i++) {
		aeth_queue_task *t;

		QOK(aeth_queue_dequeue(&t, s->q, src, 4, 0));
		got[index_of(t->queue)]++;
		aeth_queue_task_free(t);
	}
	for (int i = 0; i < 4; i++) {
		double p = W[i] / 15.0, expect = N * p, sd = sqrt(N * p * (1 - p));

		print_message("%-8s weight %u: %d of %d (expected %.0f +- %.0f)\n",
			      NAMES[i], W[i], got[i], N, expect, 4 * sd);
		assert_true(fabs(got[i] - expect) <= 4 * sd + 1);
	}
}

static void test_strict_first_and_low_still_served(void **state)
{
	qtest *s = *state;
	aeth_queue_source src[5] = {
#define V AETH_QUEUE_SOURCE_VERSION
		{V, "worker:w1", 1, 1}, {V, "critical", 6, 0}, {V, "high", 5, 0},
		{V, "default", 3, 0}, {V, "low", 1, 0},
#undef V
	};
	int low = 0;

	fill(s->q, "worker:w1", 50);
	for (int i = 0; i < 4; i++)
		fill(s->q, NAMES[i], 200);
	for (int i = 0; i < 50; i++) {
		aeth_queue_task *t;

		QOK(aeth_queue_dequeue(&t, s->q, src, 5, 0));
		assert_string_equal(t->queue, "worker:w1");
		aeth_queue_task_free(t);
	}
	for (int i = 0; i < 300; i++) {
		aeth_queue_task *t;

		QOK(aeth_queue_dequeue(&t, s->q, src, 5, 0));
		assert_string_not_equal(t->queue, "worker:w1");
		low += !strcmp(t->queue, "low");
		aeth_queue_task_free(t);
	}
	print_message("low served %d of 300 (expected ~20)\n", low);
	assert_true(low >= 5); /* not starved */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_weighted_proportions, qtest_setup, qtest_teardown),
		cmocka_unit_test_setup_teardown(test_strict_first_and_low_still_served,
						qtest_setup, qtest_teardown),
	};

	return cmocka_run_group_tests_name("queue_weights", tests, NULL, NULL);
}
