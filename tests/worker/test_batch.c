/*
 * tests/worker/test_batch.c - a worker taking many short tasks at once
 * (lib/worker/slot.c's batches): every task runs once, every row ends
 * completed with its result, worker and times, tasks without a row get
 * one; and a stop while a batch still holds un-started tasks gives them
 * back to the queue at once (row retrying), except those with no retry
 * left, which run. Needs Redis and PostgreSQL (suite 'queue':
 * eval "$(scripts/services.sh env)").
 */
#include "../queue/qtest.h"

#include <pthread.h>
#include <stdatomic.h>

#include "internal.h"
#include "pg.h"

#define NTASK 300
#define NROWLESS 20
#define NHELD 24

static atomic_int calls[NTASK + NROWLESS];
static atomic_int completed_lines;
static atomic_int listening;
static atomic_int slow_started;

static void on_event(const char *task_id, const char *line, void *userdata)
{
	(void)task_id;
	(void)userdata;
	if (!strncmp(line, "Listening", 9))
		atomic_store(&listening, 1);
	else if (strstr(line, " completed in "))
		atomic_fetch_add(&completed_lines, 1);
}

/* Payload {"i": k, "slow": 0|1}: counts the call, echoes k as the result. */
static int handler(aeth_task *t, void *userdata)
{
	const char *p = aeth_task_payload(t);
	const char *ip = strstr(p, "\"i\":");
	int i = ip ? atoi(ip + 4) : -1;
	char res[64];

	(void)userdata;
	if (i >= 0 && i < NTASK + NROWLESS)
		atomic_fetch_add(&calls[i], 1);
	if (strstr(p, "\"slow\":1")) {
		atomic_store(&slow_started, 1);
		for (int n = 0; n < 30 && !aeth_task_cancelled(t); n++)
			usleep(10 * 1000);
	}
	snprintf(res, sizeof(res), "{\"i\":%d}", i);
	return aeth_task_set_result(t, res);
}

typedef struct {
	qtest *q;
	char *db;
	aeth_store *store;
	aeth_worker *w;
	pthread_t th;
} fixture;

static void *run_worker(void *w)
{
	if (aeth_worker_run(w) != 0)
		fprintf(stderr, "aeth_worker_run: %s\n", aeth_error_last());
	atomic_store(&listening, -1);
	return NULL;
}

static int setup(void **state)
{
	fixture *f = calloc(1, sizeof(*f));
	void *qs = NULL;

	assert_non_null(f);
	qtest_setup(&qs);
	f->q = qs;
	if (aeth_test_pg_fresh(&f->db) != 0)
		fail_msg("%s", aeth_test_pg_error());
	assert_int_equal(aeth_store_open(&f->store, f->db), 0);
	assert_int_equal(aeth_store_migrate(f->store), 0);
	for (int i = 0; i < NTASK + NROWLESS; i++)
		atomic_store(&calls[i], 0);
	atomic_store(&completed_lines, 0);
	atomic_store(&slow_started, 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;
	void *qs = f->q;

	aeth_store_free(f->store);
	aeth_test_pg_drop(f->db);
	free(f->db);
	qtest_teardown(&qs);
	free(f);
	return 0;
}

static void start_worker(fixture *f, unsigned int concurrency)
{
	aeth_worker_options o = AETH_WORKER_OPTIONS_INIT;

	o.id = "wbatch";
	o.database_url = f->db;
	o.redis_url = f->q->url;
	o.redis_ns = f->q->ns;
	o.queues = "tq";
	o.concurrency = concurrency;
	o.on_event = on_event;
	assert_int_equal(aeth_worker_new(&f->w, &o), 0);
	assert_int_equal(aeth_worker_handle(f->w, "t:job", handler, NULL), 0);
	assert_int_equal(aeth_worker_handle(f->w, "t:other", handler, NULL), 0);
	atomic_store(&listening, 0);
	assert_int_equal(pthread_create(&f->th, NULL, run_worker, f->w), 0);
	for (int n = 0; n < 10000 && !atomic_load(&listening); n++)
		usleep(1000);
	assert_int_equal(atomic_load(&listening), 1);
}

static void stop_worker(fixture *f)
{
	aeth_worker_stop(f->w);
	pthread_join(f->th, NULL);
	aeth_worker_free(f->w);
	f->w = NULL;
}

/* Enqueue tasks from..to-1 in one call (payload i, slow for `slow`;
 * max_retries 0 from `noretry` on), with a pending row each written first
 * when `rows`; ids into ids[]. */
static void enqueue(fixture *f, int from, int to, int slow, bool rows,
		    int noretry, char (*ids)[37])
{
	int n = to - from;
	aeth_queue_batch_task *b = calloc((size_t)n, sizeof(*b));
	aeth_queue_enqueue_options *eo = calloc((size_t)n, sizeof(*eo));
	char (*payload)[64] = calloc((size_t)n, 64);

	assert_non_null(b);
	for (int k = 0; k < n; k++) {
		aeth_queue_enqueue_options d = AETH_QUEUE_ENQUEUE_OPTIONS_INIT;

		eo[k] = d;
		eo[k].queue = "tq";
		eo[k].max_retries = noretry >= 0 && from + k >= noretry ? 0 : 3;
		aeth__uuid_new(ids[from + k]);
		eo[k].id = ids[from + k];
		snprintf(payload[k], 64, "{\"i\":%d,\"slow\":%d}", from + k,
			 from + k == slow);
		/* the slow one is of a type the slot has not seen yet */
		b[k].type = from + k == slow ? "t:other" : "t:job";
		b[k].payload = payload[k];
		b[k].opts = &eo[k];
		if (rows) {
			aeth_store_task st = {0};

			memcpy(st.id, ids[from + k], 37);
			st.type = (char *)b[k].type;
			st.status = "pending";
			st.payload = payload[k];
			st.queue = "tq";
			st.max_retries = (int)eo[k].max_retries;
			assert_int_equal(aeth_store_task_insert(f->store, &st), 0);
		}
	}
	assert_int_equal(aeth_queue_enqueue_batch(f->q->q, b, (size_t)n), 0);
	free(payload);
	free(eo);
	free(b);
}

static void wait_lines(int n)
{
	for (int k = 0; k < 30000 && atomic_load(&completed_lines) < n; k++)
		usleep(1000);
	assert_int_equal(atomic_load(&completed_lines), n);
}

static void check_completed(fixture *f, const char *id, int i)
{
	aeth_store_task *t = NULL;
	char want[64];

	assert_int_equal(aeth_store_task_get(f->store, id, &t), 0);
	assert_string_equal(t->status, "completed");
	assert_non_null(t->worker_id);
	assert_string_equal(t->worker_id, "wbatch");
	assert_true(t->started_at_ms > 0);
	assert_true(t->completed_at_ms >= t->started_at_ms);
	snprintf(want, sizeof(want), "{\"i\": %d}", i);
	assert_non_null(t->result);
	assert_string_equal(t->result, want);
	assert_null(t->error);
	aeth_store_task_free(t);
}

/* A deep queue: batches run every task once and record each of them. */
static void test_deep_queue(void **state)
{
	fixture *f = *state;
	static char ids[NTASK + NROWLESS][37];
	aeth_queue_counts c;

	/* rows first, as aeth_client_submit writes them; some without one */
	enqueue(f, 0, NTASK, -1, true, -1, ids);
	enqueue(f, NTASK, NTASK + NROWLESS, -1, false, -1, ids);
	start_worker(f, 2);
	wait_lines(NTASK + NROWLESS);
	stop_worker(f);
	for (int i = 0; i < NTASK + NROWLESS; i++) {
		assert_int_equal(atomic_load(&calls[i]), 1);
		check_completed(f, ids[i], i);
	}
	assert_int_equal(aeth_queue_count(f->q->q, "tq", &c), 0);
	assert_int_equal(c.n[AETH_QUEUE_COMPLETED], NTASK + NROWLESS);
	assert_int_equal(c.n[AETH_QUEUE_ACTIVE], 0);
	assert_int_equal(c.n[AETH_QUEUE_PENDING], 0);
}

/* A stop while a batch holds tasks that have not started. */
static void test_stop_gives_back(void **state)
{
	fixture *f = *state;
	static char ids[NTASK + NROWLESS][37];
	aeth_queue_counts c;
	int back = 0, ran = 0;

	start_worker(f, 1);
	/* warm up: the slot learns its tasks are short and takes batches */
	enqueue(f, 0, 100, -1, true, -1, ids);
	wait_lines(100);
	/* one batch: a slow task first, then some with retries left and
	 * some with none (those must not be sent to dead by the stop) */
	enqueue(f, 100, 100 + NHELD, 100, true, 100 + NHELD / 2, ids);
	for (int n = 0; n < 10000 && !atomic_load(&slow_started); n++)
		usleep(1000);
	assert_int_equal(atomic_load(&slow_started), 1);
	stop_worker(f);
	check_completed(f, ids[100], 100);
	for (int i = 101; i < 100 + NHELD; i++) {
		aeth_queue_task *qt = NULL;
		aeth_store_task *t = NULL;

		assert_int_equal(aeth_queue_get(f->q->q, "tq", ids[i], &qt), 0);
		assert_int_equal(aeth_store_task_get(f->store, ids[i], &t), 0);
		if (i < 100 + NHELD / 2 && qt->state != AETH_QUEUE_COMPLETED) {
			/* given back: not run, retried elsewhere, row says so */
			assert_int_equal(atomic_load(&calls[i]), 0);
			assert_int_equal(qt->state, AETH_QUEUE_RETRY);
			assert_string_equal(t->status, "retrying");
			back++;
		} else {
			/* no retry left (or taken before the stop): it ran */
			assert_int_equal(atomic_load(&calls[i]), 1);
			assert_int_equal(qt->state, AETH_QUEUE_COMPLETED);
			check_completed(f, ids[i], i);
			ran++;
		}
		aeth_queue_task_free(qt);
		aeth_store_task_free(t);
	}
	/* the batch held the tasks with retries left: they went back */
	assert_true(back > 0);
	assert_true(ran >= NHELD / 2 - 1);
	assert_int_equal(aeth_queue_count(f->q->q, "tq", &c), 0);
	assert_int_equal(c.n[AETH_QUEUE_ACTIVE], 0);
	assert_int_equal(c.n[AETH_QUEUE_DEAD], 0);
}

/* Completions of a batch are written and acked before a task of a type
 * not known to be short starts: they do not wait for it. */
static void test_no_wait_for_slow(void **state)
{
	fixture *f = *state;
	static char ids[NTASK + NROWLESS][37];

	start_worker(f, 1);
	enqueue(f, 0, 100, -1, true, -1, ids);
	wait_lines(100);
	enqueue(f, 100, 100 + NHELD, 110, true, -1, ids);
	for (int n = 0; n < 10000 && !atomic_load(&slow_started); n++)
		usleep(1000);
	assert_int_equal(atomic_load(&slow_started), 1);
	/* the slow one runs for 300 ms: those before it are done already */
	for (int i = 100; i < 110; i++) {
		aeth_queue_task *qt = NULL;

		assert_int_equal(aeth_queue_get(f->q->q, "tq", ids[i], &qt), 0);
		assert_int_equal(qt->state, AETH_QUEUE_COMPLETED);
		aeth_queue_task_free(qt);
		check_completed(f, ids[i], i);
	}
	stop_worker(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_deep_queue, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stop_gives_back, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_wait_for_slow, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
