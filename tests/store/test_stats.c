/*
 * The task history of lib/store/stats.c against a real PostgreSQL (the
 * gateway's GET /v1/stats/history, docs/dashboard.md): rows with known
 * times and outcomes go in with plain SQL, and the minutes come back
 * with the right counts, means and 95th percentiles (PostgreSQL's
 * percentile_cont: linear between the two nearest values), empty minutes
 * included, one tenant or all; what ended outside the window, what has
 * not ended and what was created more than two days before the window
 * are not counted; per queue over the last minutes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#define AETH_UNSTABLE
#include "aetherium/aetherium.h"
#include "store/store_internal.h"
#include "expect.h"
#include "store_fixture.h"

typedef struct {
	aeth_test_store db;
	PGconn *pg;  /* for rows with times the store's API does not write */
	int64_t m0;  /* the current minute when the rows went in, UTC ms */
} fixture;

static int setup(void **state)
{
	fixture *f = calloc(1, sizeof(*f));

	*state = f;
	if (!f || aeth_test_store_open(&f->db) != 0)
		return -1;
	f->pg = PQconnectdb(f->db.url);
	if (PQstatus(f->pg) != CONNECTION_OK) {
		print_error("%s\n", PQerrorMessage(f->pg));
		return -1;
	}
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;

	if (!f)
		return 0;
	PQfinish(f->pg);
	aeth_test_store_close(&f->db);
	free(f);
	return 0;
}

/*
 * A tasks row; the times are SQL over m0 (f->m0: one value for every row,
 * should the minute turn meanwhile) or NULL: "m0 + interval '1 s'".
 */
static void task(fixture *f, const char *tenant, const char *type,
		 const char *status, const char *queue, const char *created,
		 const char *started, const char *completed, const char *result)
{
	char sql[2048];
	PGresult *r;

	snprintf(sql, sizeof(sql),
		 "INSERT INTO tasks (id, type, status, payload, tenant_id, queue, "
		 "created_at, started_at, completed_at, result) SELECT "
		 "gen_random_uuid(), '%s', '%s', '{}', '%s', '%s', %s, %s, %s, %s "
		 "FROM (SELECT to_timestamp(%lld / 1000.0) AT TIME ZONE 'UTC' AS m0) x",
		 type, status, tenant, queue, created, started, completed,
		 result ? result : "NULL", (long long)f->m0);
	r = PQexec(f->pg, sql);
	if (PQresultStatus(r) != PGRES_COMMAND_OK)
		fail_msg("%s: %s", sql, PQerrorMessage(f->pg));
	PQclear(r);
}

static void fill(fixture *f)
{
	PGresult *r = PQexec(f->pg, "SELECT (extract(epoch from date_trunc("
			     "'minute', now() AT TIME ZONE 'UTC')) * 1000)::bigint");

	f->m0 = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	/* m0: three ok of 100, 200, 300 ms, each waited 10 ms */
	task(f, "acme", "vm:execute", "completed", "default",
	     "m0 + interval '1 s'", "m0 + interval '1.010 s'",
	     "m0 + interval '1.110 s'", NULL);
	task(f, "acme", "vm:execute", "completed", "default",
	     "m0 + interval '2 s'", "m0 + interval '2.010 s'",
	     "m0 + interval '2.210 s'", NULL);
	task(f, "acme", "vm:execute", "completed", "q2",
	     "m0 + interval '3 s'", "m0 + interval '3.010 s'",
	     "m0 + interval '3.310 s'", NULL);
	/* m0 - 1 min: two boots of 1500 and 2500 ms */
	task(f, "acme", "vm:create", "completed", "default",
	     "m0 - interval '50 s'", "m0 - interval '50 s'",
	     "m0 - interval '48 s'", "'{\"ready_ms\": 1500}'");
	task(f, "acme", "vm:create", "completed", "default",
	     "m0 - interval '40 s'", "m0 - interval '40 s'",
	     "m0 - interval '37 s'", "'{\"ready_ms\": 2500}'");
	/* m0 - 2 min: a failure and a dead task that never started */
	task(f, "acme", "vm:execute", "failed", "default",
	     "m0 - interval '110 s'", "NULL", "m0 - interval '100 s'", NULL);
	task(f, "acme", "vm:execute", "dead", "default",
	     "m0 - interval '110 s'", "NULL", "m0 - interval '90 s'", NULL);
	/* not counted for acme: another tenant's, one that ended two hours
	 * ago, one still running, one created three days ago */
	task(f, "other", "vm:execute", "completed", "default",
	     "m0", "m0", "m0 + interval '0.5 s'", NULL);
	task(f, "acme", "vm:execute", "completed", "default",
	     "m0 - interval '2 h'", "m0 - interval '2 h'",
	     "m0 - interval '2 h'", NULL);
	task(f, "acme", "vm:execute", "running", "default",
	     "m0", "m0", "NULL", NULL);
	task(f, "acme", "vm:execute", "completed", "default",
	     "m0 - interval '3 days'", "m0 - interval '1 s'", "m0", NULL);
}

static const aeth__stats_minute *minute(const aeth__stats_minute *m, size_t n,
					int64_t at)
{
	for (size_t i = 0; i < n; i++)
		if (m[i].minute_ms == at)
			return &m[i];
	fail_msg("no bucket for %lld", (long long)at);
	return NULL;
}

static void test_history(void **state)
{
	fixture *f = *state;
	aeth__stats_minute *m = NULL;
	const aeth__stats_minute *b;
	int64_t ok = 0, failed = 0;
	size_t n = 0;

	fill(f);
	OK(aeth__store_stats_history(f->db.store, "acme", 3600, &m, &n));
	assert_int_equal(n, 60);
	for (size_t i = 1; i < n; i++) /* oldest first, a minute apart */
		assert_int_equal(m[i].minute_ms - m[i - 1].minute_ms, 60000);
	for (size_t i = 0; i < n; i++) {
		ok += m[i].e.ok;
		failed += m[i].e.failed;
	}
	assert_int_equal(ok, 5);
	assert_int_equal(failed, 2);

	b = minute(m, n, f->m0);
	assert_int_equal(b->e.ok, 3);
	assert_int_equal(b->e.failed, 0);
	assert_float_equal(b->e.run_mean_ms, 200, 0.5);
	assert_float_equal(b->e.run_p95_ms, 290, 0.5);
	assert_float_equal(b->e.wait_mean_ms, 10, 0.5);
	assert_int_equal(b->boots, 0);
	assert_true(b->boot_mean_ms < 0);

	b = minute(m, n, f->m0 - 60000);
	assert_int_equal(b->e.ok, 2);
	assert_int_equal(b->boots, 2);
	assert_float_equal(b->boot_mean_ms, 2000, 0.5);
	assert_float_equal(b->boot_p95_ms, 2450, 0.5);

	b = minute(m, n, f->m0 - 120000);
	assert_int_equal(b->e.ok, 0);
	assert_int_equal(b->e.failed, 2);
	assert_true(b->e.run_mean_ms < 0); /* neither started */
	assert_true(b->e.wait_mean_ms < 0);

	b = minute(m, n, f->m0 - 600000); /* an empty minute */
	assert_int_equal(b->e.ok + b->e.failed + b->boots, 0);
	assert_true(b->e.run_mean_ms < 0 && b->e.run_p95_ms < 0);
	free(m);

	/* every tenant: the other tenant's one more */
	OK(aeth__store_stats_history(f->db.store, NULL, 600, &m, &n));
	assert_int_equal(n, 10);
	assert_int_equal(minute(m, n, f->m0)->e.ok, 4);
	free(m);

	assert_int_equal(aeth__store_stats_history(f->db.store, NULL, 59, &m, &n),
		    AETH_EINVALID);
	assert_null(m);
	assert_int_equal(aeth__store_stats_history(f->db.store, NULL, 86401, &m, &n),
		    AETH_EINVALID);
}

static void test_queues(void **state)
{
	fixture *f = *state;
	aeth__stats_queue *q = NULL;
	size_t n = 0;

	fill(f);
	OK(aeth__store_stats_queues(f->db.store, "acme", 300, &q, &n));
	assert_int_equal(n, 2);
	assert_string_equal(q[0].queue, "default");
	assert_int_equal(q[0].e.ok, 4);
	assert_int_equal(q[0].e.failed, 2);
	assert_string_equal(q[1].queue, "q2");
	assert_int_equal(q[1].e.ok, 1);
	assert_float_equal(q[1].e.run_mean_ms, 300, 0.5);
	free(q);
	OK(aeth__store_stats_queues(f->db.store, "nobody", 300, &q, &n));
	assert_int_equal(n, 0);
	assert_null(q);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_history, setup, teardown),
		cmocka_unit_test_setup_teardown(test_queues, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
