/*
 * tests/worker/test_batch.c - a worker taking many short tasks at once
 * (lib/worker/slot.c's batches): every task runs once, every row ends
 * completed with its result, worker and times, tasks without a row get
 * one; and a stop while a batch still holds un-started tasks gives them
 * back to the queue at once, un-started (row pending, no retry counted).
 * Deferred starts: a task of a type known to be short gets one row write
 * (completed, with its start time, worker and retry count), not two; one
 * that runs long after all gets its running row from the heartbeat while
 * it runs; one that fails gets a running row and then its failure. Needs
 * Redis and PostgreSQL (suite 'services': eval "$(scripts/services.sh env)").
 */
#include "../queue/qtest.h"

#include <pthread.h>
#include <stdatomic.h>

#include <libpq-fe.h>

#include "internal.h"
/* rows written as the worker does (unstable API) */
#define AETH_UNSTABLE
#include "aetherium/unstable/store.h"
#include "pg.h"

#define NTASK 300
#define NROWLESS 20
#define NHELD 24

static atomic_int calls[NTASK + NROWLESS];
static atomic_int completed_lines;
static atomic_int slow_started;

static void on_event(const char *task_id, const char *line, void *userdata)
{
	(void)task_id;
	(void)userdata;
	if (strstr(line, " completed in "))
		atomic_fetch_add(&completed_lines, 1);
}

/* Payload {"i": k, "slow": 0|1|2, "fail": 0|1}: counts the call, echoes k
 * as the result (with a string that needs quoting in the worker's array
 * literals: quotes, a backslash, braces, a comma, the word NULL); slow 1
 * runs 300 ms (or until cancelled), slow 2 runs until released
 * (`release`), fail 1 fails without a retry. */
static atomic_int release;

static int handler(aeth_task *t, void *userdata)
{
	const char *p = aeth_task_payload(t);
	const char *ip = strstr(p, "\"i\":");
	int i = ip ? atoi(ip + 4) : -1;
	char res[96];

	(void)userdata;
	if (i >= 0 && i < NTASK + NROWLESS)
		atomic_fetch_add(&calls[i], 1);
	if (strstr(p, "\"slow\":1")) {
		atomic_store(&slow_started, 1);
		for (int n = 0; n < 30 && !aeth_task_cancelled(t); n++)
			usleep(10 * 1000);
	} else if (strstr(p, "\"slow\":2")) {
		atomic_store(&slow_started, 1);
		for (int n = 0; n < 3000 && !atomic_load(&release); n++)
			usleep(10 * 1000);
	}
	if (strstr(p, "\"fail\":1"))
		return aeth_task_fail(t, 0, "told to fail");
	snprintf(res, sizeof(res), "{\"i\":%d,\"s\":\"a\\\"b\\\\c {x,y} NULL\"}", i);
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
	atomic_store(&release, 0);
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

static void start_worker_grace(fixture *f, unsigned int concurrency,
			       unsigned int grace_ms)
{
	aeth_worker_options o = AETH_WORKER_OPTIONS_INIT;

	o.id = "wbatch";
	o.grace_ms = grace_ms;
	o.database_url = f->db;
	o.redis_url = f->q->url;
	o.redis_ns = f->q->ns;
	o.queues = "tq";
	o.concurrency = concurrency;
	o.on_event = on_event;
	assert_int_equal(aeth_worker_new(&f->w, &o), 0);
	assert_int_equal(aeth_worker_handle(f->w, "t:job", handler, NULL), 0);
	assert_int_equal(aeth_worker_handle(f->w, "t:other", handler, NULL), 0);
	assert_int_equal(aeth_worker_wait_ready(f->w, 0), AETH_ETIMEOUT);
	assert_int_equal(pthread_create(&f->th, NULL, run_worker, f->w), 0);
	assert_int_equal(aeth_worker_wait_ready(f->w, 10000), 0);
}

static void start_worker(fixture *f, unsigned int concurrency)
{
	start_worker_grace(f, concurrency, 0);
}

static void stop_worker(fixture *f)
{
	aeth_worker_stop(f->w);
	pthread_join(f->th, NULL);
	assert_int_equal(aeth_worker_wait_ready(f->w, 0), AETH_ESTATE);
	aeth_worker_free(f->w);
	f->w = NULL;
}

/* The pending row aeth_client_submit would write. */
static void insert_row(fixture *f, const char *id, const char *type,
		       const char *payload, int max_retries)
{
	aeth_store_task st = AETH_STORE_TASK_INIT;

	memcpy(st.id, id, 37);
	st.type = (char *)type;
	st.status = "pending";
	st.payload = (char *)payload;
	st.queue = "tq";
	st.max_retries = max_retries;
	assert_int_equal(aeth_store_task_insert(f->store, &st), 0);
}

static int slow_kind = 1; /* the "slow" value enqueue() gives task `slow` */

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
			 from + k == slow ? slow_kind : 0);
		/* the slow one is of a type the slot has not seen yet */
		aeth_queue_batch_task_init(&b[k], AETH_QUEUE_BATCH_TASK_VERSION);
		b[k].type = from + k == slow ? "t:other" : "t:job";
		b[k].payload = payload[k];
		b[k].opts = &eo[k];
		if (rows)
			insert_row(f, ids[from + k], b[k].type, payload[k],
				   (int)eo[k].max_retries);
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
	char want[96];

	assert_int_equal(aeth_store_task_get(&t, f->store, id), 0);
	assert_string_equal(t->status, "completed");
	assert_non_null(t->worker_id);
	assert_string_equal(t->worker_id, "wbatch");
	assert_true(t->started_at_ms > 0);
	assert_true(t->completed_at_ms >= t->started_at_ms);
	snprintf(want, sizeof(want), "{\"i\": %d, \"s\": \"a\\\"b\\\\c {x,y} NULL\"}", i);
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
	aeth_queue_counts c = AETH_QUEUE_COUNTS_INIT;

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
	assert_int_equal(aeth_queue_count(&c, f->q->q, "tq"), 0);
	assert_int_equal(c.n[AETH_QUEUE_COMPLETED], NTASK + NROWLESS);
	assert_int_equal(c.n[AETH_QUEUE_ACTIVE], 0);
	assert_int_equal(c.n[AETH_QUEUE_PENDING], 0);
}

/* A stop while a batch holds tasks that have not started: they go back
 * to the queue un-started (pending, no retry counted, also those with no
 * retry left: none goes to dead), rows pending, and the next worker runs
 * them as first tries. */
static void test_stop_gives_back(void **state)
{
	fixture *f = *state;
	static char ids[NTASK + NROWLESS][37];
	aeth_queue_counts c = AETH_QUEUE_COUNTS_INIT;
	int back = 0, back_noretry = 0, ran = 0;

	start_worker(f, 1);
	/* warm up: the slot learns its tasks are short and takes batches */
	enqueue(f, 0, 100, -1, true, -1, ids);
	wait_lines(100);
	/* one batch: a slow task first, then some with retries left and
	 * some with none */
	enqueue(f, 100, 100 + NHELD, 100, true, 100 + NHELD / 2, ids);
	for (int n = 0; n < 10000 && !atomic_load(&slow_started); n++)
		usleep(1000);
	assert_int_equal(atomic_load(&slow_started), 1);
	stop_worker(f);
	check_completed(f, ids[100], 100);
	for (int i = 101; i < 100 + NHELD; i++) {
		aeth_queue_task *qt = NULL;
		aeth_store_task *t = NULL;

		assert_int_equal(aeth_queue_get(&qt, f->q->q, "tq", ids[i]), 0);
		assert_int_equal(aeth_store_task_get(&t, f->store, ids[i]), 0);
		if (qt->state != AETH_QUEUE_COMPLETED) {
			/* given back: not run, not counted as a try */
			assert_int_equal(atomic_load(&calls[i]), 0);
			assert_int_equal(qt->state, AETH_QUEUE_PENDING);
			assert_int_equal(qt->retried, 0);
			assert_string_equal(t->status, "pending");
			back++;
			back_noretry += i >= 100 + NHELD / 2;
		} else {
			/* taken before the stop: it ran */
			assert_int_equal(atomic_load(&calls[i]), 1);
			check_completed(f, ids[i], i);
			ran++;
		}
		aeth_queue_task_free(qt);
		aeth_store_task_free(t);
	}
	/* the batch held tasks of both kinds: they went back */
	assert_true(back > 0 && back_noretry > 0);
	assert_int_equal(back + ran, NHELD - 1);
	assert_int_equal(aeth_queue_count(&c, f->q->q, "tq"), 0);
	assert_int_equal(c.n[AETH_QUEUE_ACTIVE], 0);
	assert_int_equal(c.n[AETH_QUEUE_DEAD], 0);
	assert_int_equal(c.n[AETH_QUEUE_RETRY], 0);
	assert_int_equal(c.n[AETH_QUEUE_PENDING], back);
	/* the next worker runs them, as first tries */
	start_worker(f, 1);
	wait_lines(100 + 1 + ran + back);
	stop_worker(f);
	for (int i = 101; i < 100 + NHELD; i++) {
		aeth_store_task *t = NULL;

		assert_int_equal(atomic_load(&calls[i]), 1);
		check_completed(f, ids[i], i);
		assert_int_equal(aeth_store_task_get(&t, f->store, ids[i]), 0);
		assert_int_equal(t->retry_count, 0);
		aeth_store_task_free(t);
	}
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

		assert_int_equal(aeth_queue_get(&qt, f->q->q, "tq", ids[i]), 0);
		assert_int_equal(qt->state, AETH_QUEUE_COMPLETED);
		aeth_queue_task_free(qt);
		check_completed(f, ids[i], i);
	}
	stop_worker(f);
}

/* One t:job task i with `payload`, its row first. */
static void enqueue_one(fixture *f, int i, const char *payload, char (*ids)[37])
{
	aeth_queue_enqueue_options eo = AETH_QUEUE_ENQUEUE_OPTIONS_INIT;

	eo.queue = "tq";
	aeth__uuid_new(ids[i]);
	eo.id = ids[i];
	insert_row(f, ids[i], "t:job", payload, 3);
	assert_int_equal(aeth_queue_enqueue(NULL, f->q->q, "t:job", payload,
					    &eo), 0);
}

/* A log of every UPDATE of a tasks row (id, new status), by trigger. */
static PGconn *log_updates(fixture *f)
{
	PGconn *c = PQconnectdb(f->db);
	PGresult *r;

	assert_int_equal(PQstatus(c), CONNECTION_OK);
	r = PQexec(c, "CREATE TABLE upd (id uuid, status text);"
		   "CREATE FUNCTION log_upd() RETURNS trigger AS $$ BEGIN "
		   "INSERT INTO upd VALUES (NEW.id, NEW.status); RETURN NEW; END "
		   "$$ LANGUAGE plpgsql;"
		   "CREATE TRIGGER log_upd AFTER UPDATE ON tasks FOR EACH ROW "
		   "EXECUTE FUNCTION log_upd()");
	assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
	PQclear(r);
	return c;
}

/* The statuses task id's row was updated to, in order, "a,b". */
static char *updates_of(PGconn *c, const char *id)
{
	const char *p[] = {id};
	PGresult *r = PQexecParams(c, "SELECT coalesce(string_agg(status, ',' "
				   "ORDER BY ctid), '') FROM upd WHERE id = $1",
				   1, NULL, p, NULL, NULL, 0);
	char *out;

	assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
	out = strdup(PQgetvalue(r, 0, 0));
	PQclear(r);
	return out;
}

/* Wait up to ms for task id's row to have `status`; the row. */
static aeth_store_task *wait_status(fixture *f, const char *id, const char *status,
				    int ms)
{
	aeth_store_task *t = NULL;

	for (int n = 0; n < ms / 10; n++) {
		assert_int_equal(aeth_store_task_get(&t, f->store, id), 0);
		if (!strcmp(t->status, status))
			return t;
		aeth_store_task_free(t);
		t = NULL;
		usleep(10 * 1000);
	}
	fail_msg("task %s: row not %s within %d ms", id, status, ms);
	return NULL;
}

/* Tasks of a type known to be short: one row write each (completed, with
 * start time, worker and retry count), where the first ones, of a type
 * not known yet, had two (running, completed). */
static void test_deferred_one_write(void **state)
{
	fixture *f = *state;
	static char ids[NTASK + NROWLESS][37];
	PGconn *c = log_updates(f);
	char *u;

	start_worker(f, 1);
	enqueue(f, 0, 100, -1, true, -1, ids);
	wait_lines(100);
	enqueue(f, 100, 150, -1, true, -1, ids);
	wait_lines(150);
	stop_worker(f);
	u = updates_of(c, ids[0]);
	assert_string_equal(u, "running,completed");
	free(u);
	for (int i = 100; i < 150; i++) {
		aeth_store_task *t = NULL;

		check_completed(f, ids[i], i);
		u = updates_of(c, ids[i]);
		assert_string_equal(u, "completed");
		free(u);
		assert_int_equal(aeth_store_task_get(&t, f->store, ids[i]), 0);
		assert_int_equal(t->retry_count, 0);
		assert_true(t->started_at_ms <= t->completed_at_ms);
		aeth_store_task_free(t);
	}
	PQfinish(c);
}

/* A task of a short type that runs long after all: while it runs, the
 * heartbeat thread writes its running row within ~200 ms (it looks every
 * 100 ms while deferred tasks run, not only at its tick, 5 s here). */
static void test_deferred_runs_long(void **state)
{
	fixture *f = *state;
	static char ids[NTASK + NROWLESS][37];
	aeth_store_task *t;
	int64_t t0, took;

	start_worker(f, 1);
	enqueue(f, 0, 100, -1, true, -1, ids);
	wait_lines(100);
	t0 = aeth__wall_ms();
	enqueue_one(f, 100, "{\"i\":100,\"slow\":2}", ids);
	t = wait_status(f, ids[100], "running", 10000);
	took = aeth__wall_ms() - t0;
	print_message("deferred task's running row after %lld ms\n", (long long)took);
	assert_true(took < 2000);
	assert_int_equal(atomic_load(&slow_started), 1);
	assert_int_equal(atomic_load(&completed_lines), 100); /* still running */
	assert_string_equal(t->worker_id, "wbatch");
	assert_true(t->started_at_ms >= t0 - 1000);
	aeth_store_task_free(t);
	atomic_store(&release, 1);
	wait_lines(101);
	stop_worker(f);
	check_completed(f, ids[100], 100);
}

/* A task of a short type that fails: running row, then the failure, with
 * worker and start time. */
static void test_deferred_fails(void **state)
{
	fixture *f = *state;
	static char ids[NTASK + NROWLESS][37];
	PGconn *c = log_updates(f);
	aeth_store_task *t;
	char *u;

	start_worker(f, 1);
	enqueue(f, 0, 100, -1, true, -1, ids);
	wait_lines(100);
	enqueue_one(f, 100, "{\"i\":100,\"fail\":1}", ids);
	t = wait_status(f, ids[100], "failed", 10000);
	stop_worker(f);
	assert_string_equal(t->worker_id, "wbatch");
	assert_string_equal(t->error, "told to fail");
	assert_true(t->started_at_ms > 0);
	assert_true(t->completed_at_ms >= t->started_at_ms);
	aeth_store_task_free(t);
	u = updates_of(c, ids[100]);
	assert_string_equal(u, "running,failed");
	free(u);
	PQfinish(c);
}

/* A task whose completed row cannot be written (here a trigger refuses
 * it; in life the database is away) is not acked: the queue never says
 * completed where PostgreSQL does not. It is retried after a backoff and
 * recorded then, with its retry counted. */
static void test_row_write_fails(void **state)
{
	fixture *f = *state;
	static char ids[NTASK + NROWLESS][37];
	PGconn *c = PQconnectdb(f->db);
	aeth_queue_counts qc = AETH_QUEUE_COUNTS_INIT;
	aeth_queue_task *qt = NULL;
	aeth_store_task *t;
	PGresult *r;
	int n;

	assert_int_equal(PQstatus(c), CONNECTION_OK);
	r = PQexec(c, "CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN "
		   "RAISE EXCEPTION 'refused'; END $$ LANGUAGE plpgsql;"
		   "CREATE TRIGGER refuse BEFORE UPDATE ON tasks FOR EACH ROW "
		   "WHEN (NEW.status = 'completed' AND NEW.payload->>'i' = '100') "
		   "EXECUTE FUNCTION refuse()");
	assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
	PQclear(r);
	start_worker(f, 1);
	enqueue(f, 0, 100, -1, true, -1, ids); /* its type becomes short */
	wait_lines(100);
	enqueue_one(f, 100, "{\"i\":100}", ids);
	for (n = 0; n < 1000 && qc.n[AETH_QUEUE_RETRY] == 0; n++) {
		usleep(10 * 1000);
		assert_int_equal(aeth_queue_count(&qc, f->q->q, "tq"), 0);
	}
	assert_int_equal(qc.n[AETH_QUEUE_RETRY], 1);
	assert_int_equal(qc.n[AETH_QUEUE_COMPLETED], 100);
	assert_int_equal(aeth_queue_get(&qt, f->q->q, "tq", ids[100]), 0);
	assert_non_null(strstr(qt->error, "cannot record its result"));
	aeth_queue_task_free(qt);
	assert_int_equal(atomic_load(&calls[100]), 1);
	assert_int_equal(aeth_store_task_get(&t, f->store, ids[100]), 0);
	assert_string_not_equal(t->status, "completed");
	aeth_store_task_free(t);

	r = PQexec(c, "DROP TRIGGER refuse ON tasks");
	assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
	PQclear(r);
	t = wait_status(f, ids[100], "completed", 30000);
	assert_int_equal(t->retry_count, 1);
	aeth_store_task_free(t);
	wait_lines(101);
	stop_worker(f);
	assert_int_equal(atomic_load(&calls[100]), 2);
	check_completed(f, ids[100], 100);
	PQfinish(c);
}

static void *release_later(void *arg)
{
	(void)arg;
	usleep(1000 * 1000);
	atomic_store(&release, 1);
	return NULL;
}

/* A stop whose grace period runs out: the running task goes back as a
 * retry; the tasks of its batch that never started go back as on a stop
 * in time (pending, no retry counted, also those with no retry left). */
static void test_stop_after_grace(void **state)
{
	fixture *f = *state;
	static char ids[NTASK + NROWLESS][37];
	aeth_queue_counts c = AETH_QUEUE_COUNTS_INIT;
	aeth_queue_task *qt = NULL;
	pthread_t rl;
	int back = 0;

	start_worker_grace(f, 1, 200);
	enqueue(f, 0, 100, -1, true, -1, ids);
	wait_lines(100);
	/* one batch: a task that ignores cancellation first (slow 2), then
	 * some with retries left and some with none */
	slow_kind = 2;
	enqueue(f, 100, 100 + NHELD, 100, true, 100 + NHELD / 2, ids);
	slow_kind = 1;
	for (int n = 0; n < 10000 && !atomic_load(&slow_started); n++)
		usleep(1000);
	assert_int_equal(atomic_load(&slow_started), 1);
	assert_int_equal(pthread_create(&rl, NULL, release_later, NULL), 0);
	stop_worker(f);
	pthread_join(rl, NULL);
	assert_int_equal(aeth_queue_get(&qt, f->q->q, "tq", ids[100]), 0);
	assert_int_equal(qt->state, AETH_QUEUE_RETRY);
	assert_int_equal(qt->retried, 1);
	aeth_queue_task_free(qt);
	for (int i = 101; i < 100 + NHELD; i++) {
		aeth_store_task *t = NULL;

		assert_int_equal(aeth_queue_get(&qt, f->q->q, "tq", ids[i]), 0);
		if (qt->state != AETH_QUEUE_COMPLETED) {
			assert_int_equal(atomic_load(&calls[i]), 0);
			assert_int_equal(qt->state, AETH_QUEUE_PENDING);
			assert_int_equal(qt->retried, 0);
			assert_int_equal(aeth_store_task_get(&t, f->store,
							     ids[i]), 0);
			assert_string_equal(t->status, "pending");
			aeth_store_task_free(t);
			back++;
		}
		aeth_queue_task_free(qt);
	}
	assert_true(back > 0);
	assert_int_equal(aeth_queue_count(&c, f->q->q, "tq"), 0);
	assert_int_equal(c.n[AETH_QUEUE_DEAD], 0);
	assert_int_equal(c.n[AETH_QUEUE_PENDING], back);
}

/* aeth_worker_wait_ready: a run that cannot start (no database there)
 * ends, and the wait says so at once instead of running out its time. */
static void test_wait_ready_run_fails(void **state)
{
	fixture *f = *state;
	aeth_worker_options o = AETH_WORKER_OPTIONS_INIT;
	int64_t t0;

	o.id = "wbatch";
	o.database_url = "postgresql:///nodb?host=/nonexistent-aeth-dir";
	o.redis_url = f->q->url;
	o.redis_ns = f->q->ns;
	o.queues = "tq";
	assert_int_equal(aeth_worker_new(&f->w, &o), 0);
	assert_int_equal(aeth_worker_handle(f->w, "t:job", handler, NULL), 0);
	assert_int_equal(pthread_create(&f->th, NULL, run_worker, f->w), 0);
	t0 = aeth__now_ms();
	assert_int_equal(aeth_worker_wait_ready(f->w, 30000), AETH_ESTATE);
	assert_true(aeth__now_ms() - t0 < 20000);
	pthread_join(f->th, NULL);
	aeth_worker_free(f->w);
	f->w = NULL;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_deep_queue, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stop_gives_back, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_wait_for_slow, setup, teardown),
		cmocka_unit_test_setup_teardown(test_deferred_one_write, setup, teardown),
		cmocka_unit_test_setup_teardown(test_deferred_runs_long, setup, teardown),
		cmocka_unit_test_setup_teardown(test_deferred_fails, setup, teardown),
		cmocka_unit_test_setup_teardown(test_row_write_fails, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stop_after_grace, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wait_ready_run_fails, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
