/*
 * tests/worker/test_ledger.c - the ledger reconciler (lib/worker/ledger.c)
 * against real Redis and PostgreSQL, one case of the rule of docs/queue.md
 * ("Ledger and transport") at a time: an open row Redis lost is put back
 * (its lost attempt counted; dead when no retry is left), unless it is too
 * young; a task in flight is left alone and runs once; a task Redis
 * completed or gave up on finishes its row; a forwarding copy sends the
 * judgement to the queue it names; a task Redis holds dead that
 * the row completed becomes completed in Redis; a put-back never makes a
 * second task of one id; one reconciler at a time; a repair does not
 * overwrite a row written meanwhile; the mark spares later passes the rows
 * already settled, and a Redis restart makes a full sweep. Needs Redis and
 * PostgreSQL (suite 'services': eval "$(scripts/services.sh env)").
 */
#include "../queue/qtest.h"

#include <libpq-fe.h>

#include "internal.h"
/* rows written as the worker does (unstable API) */
#define AETH_UNSTABLE
#include "aetherium/unstable/store.h"
#include "pg.h"
#include "queue/queue_ledger.h"
#include "store/store_ledger.h"
#include "worker/ledger.h"

#define STRAY_MS 5000

typedef struct {
	qtest *q;
	char *db;
	aeth_store *store;
	aeth__ledger *l;
} fixture;

static int setup(void **state)
{
	fixture *f = calloc(1, sizeof(*f));
	aeth__ledger_config c = {0};
	void *qs = NULL;

	assert_non_null(f);
	qtest_setup(&qs);
	f->q = qs;
	if (aeth_test_pg_fresh(&f->db) != 0)
		fail_msg("%s", aeth_test_pg_error());
	assert_int_equal(aeth_store_open(&f->store, f->db), 0);
	assert_int_equal(aeth_store_migrate(f->store), 0);
	c.database_url = f->db;
	c.redis_url = f->q->url;
	c.redis_ns = f->q->ns;
	c.worker_id = "wledger";
	c.stray_after_ms = STRAY_MS;
	if (aeth__ledger_open(&f->l, &c) != 0)
		fail_msg("aeth__ledger_open: %s", aeth_error_last());
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;
	void *qs = f->q;

	aeth__ledger_free(f->l);
	aeth_store_free(f->store);
	aeth_test_pg_drop(f->db);
	free(f->db);
	qtest_teardown(&qs);
	free(f);
	return 0;
}

/* One statement on the test's database; the first value of its result
 * (malloc'd, "" for none). */
static char *sql(fixture *f, const char *fmt, ...) AETH__PRINTF(2, 3);

static char *sql(fixture *f, const char *fmt, ...)
{
	char q[1024];
	va_list ap;
	PGconn *c = PQconnectdb(f->db);
	PGresult *r;
	char *out;

	va_start(ap, fmt);
	vsnprintf(q, sizeof(q), fmt, ap);
	va_end(ap);
	r = PQexec(c, q);
	if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
		fail_msg("%s: %s", q, PQerrorMessage(c));
	out = strdup(PQntuples(r) > 0 ? PQgetvalue(r, 0, 0) : "");
	PQclear(r);
	PQfinish(c);
	return out;
}

static void expect_sql(fixture *f, const char *want, const char *fmt, const char *id)
{
	char *got = sql(f, fmt, id);

	if (strcmp(got, want))
		fail_msg("%s (task %s): got \"%s\", want \"%s\"", fmt, id, got, want);
	free(got);
}

/* A task row as aeth_client_submit writes it (queue tq unless given),
 * then made `status` with `retries` tries made, last changed `age_s` ago
 * and created an hour ago (before any mark). */
static void row(fixture *f, char id[37], const char *queue, const char *status,
		int retries, int max_retries, int age_s)
{
	aeth_store_task st = AETH_STORE_TASK_INIT;

	aeth__uuid_new(id);
	memcpy(st.id, id, 37);
	st.type = "t:job";
	st.payload = "{\"n\": 1}";
	st.queue = (char *)(queue ? queue : "tq");
	st.max_retries = max_retries;
	st.timeout_ms = 60000;
	assert_int_equal(aeth_store_task_insert(f->store, &st), 0);
	free(sql(f, "UPDATE tasks SET status = '%s', retry_count = %d, "
		 "updated_at = updated_at - interval '%d seconds', "
		 "created_at = created_at - interval '1 hour' WHERE id = '%s'",
		 status, retries, age_s, id));
}

/* Enqueue task `id` in Redis (queue tq unless given). */
static void enqueue(fixture *f, const char *id, const char *queue)
{
	aeth_queue_enqueue_options eo = AETH_QUEUE_ENQUEUE_OPTIONS_INIT;

	eo.queue = queue ? queue : "tq";
	eo.id = id;
	assert_int_equal(aeth_queue_enqueue(NULL, f->q->q, "t:job",
					    "{\"n\": 1}", &eo), 0);
}

static aeth_queue_task *take(fixture *f)
{
	aeth_queue_source src = {AETH_QUEUE_SOURCE_VERSION, "tq", 1, 0};
	aeth_queue_task *t = NULL;

	assert_int_equal(aeth_queue_dequeue(&t, f->q->q, &src, 1, 0), 0);
	return t;
}

/* Enqueue task `id` (queue tq), take it, and ack it with `result`, or
 * with result NULL nack it to dead with `error`. */
static void finish(fixture *f, const char *id, const char *result, const char *error)
{
	aeth_queue_task *t;

	enqueue(f, id, NULL);
	t = take(f);
	assert_string_equal(t->id, id);
	if (result)
		assert_int_equal(aeth_queue_ack(f->q->q, t, result), 0);
	else
		assert_int_equal(aeth_queue_nack(f->q->q, t, error,
						 AETH_QUEUE_NACK_NO_RETRY), 0);
	aeth_queue_task_free(t);
}

static aeth__ledger_stats pass(fixture *f)
{
	aeth__ledger_stats st;

	if (aeth__ledger_pass(f->l, &st) != 0)
		fail_msg("aeth__ledger_pass: %s", aeth_error_last());
	return st;
}

static aeth_queue_task *get(fixture *f, const char *id)
{
	aeth_queue_task *t = NULL;

	if (aeth_queue_get(&t, f->q->q, "tq", id) != 0)
		fail_msg("task %s not in Redis: %s", id, aeth_error_last());
	return t;
}

/* Lost by Redis: put back (pending: as it was; running: its attempt
 * counted), unless the row is too young; dead when no retry is left. */
static void test_lost_tasks_put_back(void **state)
{
	fixture *f = *state;
	char a[37], b[37], c[37], d[37];
	aeth__ledger_stats st;
	aeth_queue_task *t;

	row(f, a, NULL, "pending", 0, 3, 60);
	row(f, b, NULL, "pending", 0, 3, 0);   /* its submitter is about to enqueue */
	row(f, c, NULL, "running", 1, 3, 60);
	row(f, d, NULL, "running", 3, 3, 60);
	st = pass(f);
	assert_true(st.full_sweep);
	assert_int_equal(st.read, 4);
	assert_int_equal(st.requeued, 2);
	assert_int_equal(st.dead, 1);
	assert_int_equal(st.young, 1);

	t = get(f, a);
	assert_int_equal(t->state, AETH_QUEUE_PENDING);
	assert_int_equal(t->retried, 0);
	assert_string_equal(t->type, "t:job");
	assert_string_equal(t->payload, "{\"n\": 1}");
	assert_int_equal(t->max_retries, 3);
	assert_int_equal(t->timeout_ms, 60000);
	aeth_queue_task_free(t);
	expect_sql(f, "requeued", "SELECT metadata->'ledger'->>'action' FROM tasks "
		   "WHERE id = '%s'", a);
	t = get(f, c);
	assert_int_equal(t->retried, 2);
	assert_non_null(strstr(t->error, "Redis lost the task while it was running"));
	aeth_queue_task_free(t);
	expect_sql(f, "pending 2", "SELECT status || ' ' || retry_count FROM tasks "
		   "WHERE id = '%s'", c);
	expect_sql(f, "dead", "SELECT status FROM tasks WHERE id = '%s'", d);
	expect_sql(f, "t", "SELECT error LIKE '%%retries are used up (3 of 3)' AND "
		   "completed_at IS NOT NULL FROM tasks WHERE id = '%s'", d);
	assert_int_equal(aeth_queue_get(&t, f->q->q, "tq", b), AETH_ENOTFOUND);
	expect_sql(f, "pending", "SELECT status FROM tasks WHERE id = '%s'", b);

	/* The put-back tasks are Redis's now: the next pass leaves them. It
	 * reads from the young row on (the mark): a is behind it, c is not. */
	st = pass(f);
	assert_int_equal(st.requeued + st.dead + st.completed, 0);
	assert_int_equal(st.read, 2);
	assert_int_equal(st.live, 1);
	assert_int_equal(st.young, 1);
}

/* A task a worker holds (leased; its row still pending, as a deferred
 * start's is) is left alone: it runs once, and its lease stays valid. */
static void test_in_flight_left_alone(void **state)
{
	fixture *f = *state;
	char e[37];
	aeth_queue_source src = {AETH_QUEUE_SOURCE_VERSION, "tq", 1, 0};
	aeth_queue_task *t, *none = NULL;
	aeth__ledger_stats st;

	row(f, e, NULL, "pending", 0, 3, 600);
	enqueue(f, e, NULL);
	t = take(f);
	assert_string_equal(t->id, e);
	st = pass(f);
	assert_int_equal(st.live, 1);
	assert_int_equal(st.requeued, 0);
	/* nothing to take a second time, and the holder completes it */
	assert_int_equal(aeth_queue_dequeue(&none, f->q->q, &src, 1,
					    0), AETH_ETIMEOUT);
	assert_int_equal(aeth_queue_ack(f->q->q, t, "{}"), 0);
	aeth_queue_task_free(t);
}

/* Redis finished it, PostgreSQL did not hear: completed with Redis's
 * result; dead with Redis's error. */
static void test_finished_in_redis(void **state)
{
	fixture *f = *state;
	char c[37], d[37];
	aeth__ledger_stats st;

	row(f, c, NULL, "running", 0, 3, 1);
	finish(f, c, "{\"x\": 1}", NULL);
	row(f, d, NULL, "running", 0, 3, 1);
	finish(f, d, NULL, "boom");
	st = pass(f);
	assert_int_equal(st.completed, 1);
	assert_int_equal(st.dead, 1);
	expect_sql(f, "completed {\"x\": 1} completed", "SELECT status || ' ' || "
		   "result::text || ' ' || (metadata->'ledger'->>'action') FROM tasks "
		   "WHERE id = '%s'", c);
	expect_sql(f, "dead dead in Redis: boom", "SELECT status || ' ' || error "
		   "FROM tasks WHERE id = '%s'", d);
}

/* Redis gave up on a task (its lease expired with no retry left) that a
 * worker completed after all: the ledger wins, Redis says completed. */
static void test_dead_in_redis_completed_in_ledger(void **state)
{
	fixture *f = *state;
	char h[37];
	aeth_queue_task *t;
	aeth__ledger_stats st;

	row(f, h, NULL, "running", 0, 0, 60);
	finish(f, h, NULL, "lease expired");
	free(sql(f, "UPDATE tasks SET status = 'completed', result = '{\"ok\": true}' "
		 "WHERE id = '%s'", h));
	st = pass(f);
	assert_int_equal(st.settled, 1);
	t = get(f, h);
	assert_int_equal(t->state, AETH_QUEUE_COMPLETED);
	assert_string_equal(t->result, "{\"ok\": true}");
	aeth_queue_task_free(t);
	expect_sql(f, "completed", "SELECT status FROM tasks WHERE id = '%s'", h);
}

/* The row names the owner's queue but the task is still on the queue it
 * came by (a forward between its two writes): on its way, left alone. */
static void test_live_in_another_queue(void **state)
{
	fixture *f = *state;
	char i[37];
	aeth__ledger_stats st;

	row(f, i, "worker:w9", "pending", 0, 3, 60);
	enqueue(f, i, "tq");
	st = pass(f);
	assert_int_equal(st.live, 1);
	assert_int_equal(st.requeued, 0);
}

/* The row's queue holds only a forwarding copy (acked {"forwarded_to":
 * Q}; PostgreSQL lost the row's change of queue): the task is judged on
 * Q: left alone while live there, put back there when Q lost it. */
static void test_forwarding_copy(void **state)
{
	fixture *f = *state;
	char i[37], k[37];
	aeth_queue_task *t;
	aeth__ledger_stats st;

	row(f, i, NULL, "pending", 0, 3, 60);
	row(f, k, NULL, "pending", 0, 3, 60);
	finish(f, i, "{\"forwarded_to\":\"worker:w9\"}", NULL);
	finish(f, k, "{\"forwarded_to\":\"worker:w9\"}", NULL);
	enqueue(f, i, "worker:w9"); /* k's copy there is lost */
	st = pass(f);
	assert_int_equal(st.live, 1);
	assert_int_equal(st.requeued, 1);
	assert_int_equal(st.completed, 0);
	assert_int_equal(aeth_queue_get(&t, f->q->q, "worker:w9", k), 0);
	assert_int_equal(t->state, AETH_QUEUE_PENDING);
	aeth_queue_task_free(t);
	expect_sql(f, "pending", "SELECT status FROM tasks WHERE id = '%s'", i);
}

/* A put-back never makes a second task of one id: a submitter's enqueue
 * that came first wins, and one that comes after finds the id taken. */
static void test_put_back_keeps_id_unique(void **state)
{
	fixture *f = *state;
	char j[37], k[37], *n;
	aeth__q_restore r = {"tq", NULL, "t:job", "{}", 3, 0, 0, "test"};
	aeth_queue_enqueue_options eo = AETH_QUEUE_ENQUEUE_OPTIONS_INIT;
	char key[256];
	int restored = -1;

	aeth__uuid_new(j);
	enqueue(f, j, NULL);
	r.id = j;
	assert_int_equal(aeth__q_ledger_restore(f->q->q, &r, &restored), 0);
	assert_int_equal(restored, 0);
	aeth__uuid_new(k);
	r.id = k;
	assert_int_equal(aeth__q_ledger_restore(f->q->q, &r, &restored), 0);
	assert_int_equal(restored, 1);
	eo.queue = "tq";
	eo.id = k;
	assert_int_equal(aeth_queue_enqueue(NULL, f->q->q, "t:job", "{}",
					    &eo), AETH_EEXISTS);
	snprintf(key, sizeof(key), "{%s:tq}:pending", f->q->ns);
	n = aeth_test_redis_cmd(f->q->url, "LLEN %s", key);
	assert_string_equal(n, "2");
	free(n);
}

/* One reconciler at a time: a pass while another holds the lock does
 * nothing. */
static void test_one_at_a_time(void **state)
{
	fixture *f = *state;
	aeth__ledger_state held;
	aeth_store *other;
	aeth__ledger_stats st;
	char a[37];
	bool got = false;

	row(f, a, NULL, "pending", 0, 3, 60);
	assert_int_equal(aeth_store_open(&other, f->db), 0);
	assert_int_equal(aeth__store_ledger_begin(other, &got, &held), 0);
	assert_true(got);
	st = pass(f);
	assert_true(st.locked_out);
	assert_int_equal(st.read, 0);
	assert_int_equal(aeth__store_ledger_end(other, &held, false, false, NULL, NULL), 0);
	aeth_store_free(other);
	st = pass(f);
	assert_false(st.locked_out);
	assert_int_equal(st.requeued, 1);
}

/* A repair holds only if nobody wrote the row since it was read. */
static void test_repair_yields_to_writers(void **state)
{
	fixture *f = *state;
	aeth__ledger_row *rows = NULL;
	size_t n = 0;
	bool changed = true;
	char a[37];

	row(f, a, NULL, "running", 0, 3, 60);
	assert_int_equal(aeth__store_tasks_open(f->store, NULL, NULL, 10, &rows, &n), 0);
	assert_int_equal(n, 1);
	/* a worker completes it between the reconciler's read and its write */
	assert_int_equal(aeth_store_task_finish(f->store, a, "completed", "{}", NULL), 0);
	assert_int_equal(aeth__store_task_repair(f->store, &rows[0], "dead", -1, NULL,
						 "lost", "{}", &changed), 0);
	assert_false(changed);
	expect_sql(f, "completed", "SELECT status FROM tasks WHERE id = '%s'", a);
	aeth__ledger_rows_free(rows, n);
}

/* After a pass the mark spares the settled rows; a Redis restart (its
 * run_id changed) makes the next pass read them all again. */
static void test_mark_and_full_sweeps(void **state)
{
	fixture *f = *state;
	aeth__ledger_stats st;
	char a[37], b[37];

	row(f, a, NULL, "pending", 0, 3, 60);
	enqueue(f, a, NULL);
	row(f, b, NULL, "pending", 0, 3, 60);
	enqueue(f, b, NULL);
	st = pass(f);
	assert_true(st.full_sweep);
	assert_int_equal(st.live, 2);
	st = pass(f);
	assert_false(st.full_sweep);
	assert_int_equal(st.read, 0);
	free(sql(f, "UPDATE ledger_state SET redis_run_id = 'another'"));
	st = pass(f);
	assert_true(st.full_sweep);
	assert_string_equal(st.why_full, "Redis restarted");
	assert_int_equal(st.read, 2);
	expect_sql(f, "3", "SELECT passes::text FROM ledger_state WHERE id = %s", "1");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_lost_tasks_put_back, setup, teardown),
		cmocka_unit_test_setup_teardown(test_in_flight_left_alone, setup, teardown),
		cmocka_unit_test_setup_teardown(test_finished_in_redis, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dead_in_redis_completed_in_ledger,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_live_in_another_queue, setup, teardown),
		cmocka_unit_test_setup_teardown(test_forwarding_copy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_put_back_keeps_id_unique, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_one_at_a_time, setup, teardown),
		cmocka_unit_test_setup_teardown(test_repair_yields_to_writers, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_mark_and_full_sweeps, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
