/*
 * lib/store/stats.c - what the tasks table says about the last hour:
 * tasks ended per minute, ok and failed, how long they ran and waited,
 * VM boot times, and per queue over the last minutes (the gateway's
 * /v1/stats/history, the dashboard's charts; docs/dashboard.md).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "store/sql.h"

/* Ended tasks since $1 seconds ago, of tenant $2 (NULL: all), with what
 * the queries below aggregate. The created_at bound lets an index serve
 * (store_internal.h says why two days). */
#define ENDED(since)							\
	"t AS (SELECT date_trunc('minute', completed_at) AS m, status, "	\
	"coalesce(queue, 'default') AS queue, "				\
	"extract(epoch from (completed_at - started_at)) * 1000 AS run_ms, "	\
	"extract(epoch from (started_at - created_at)) * 1000 AS wait_ms, "	\
	"CASE WHEN type = 'vm:create' AND status = 'completed' AND "	\
	"jsonb_typeof(result->'ready_ms') = 'number' THEN "		\
	"(result->>'ready_ms')::float8 END AS boot_ms FROM tasks "	\
	"WHERE completed_at >= " since " AND created_at >= " since	\
	" - interval '2 days' AND status IN ('completed', 'failed', 'dead') " \
	"AND ($2::text IS NULL OR tenant_id = $2))"

#define P95(col) "percentile_cont(0.95) WITHIN GROUP (ORDER BY " col ")"
/* The columns of an aeth__stats_ended over t's rows (read_ended()). */
#define ENDED_COLS							\
	"count(t.m) FILTER (WHERE t.status = 'completed'), "		\
	"count(t.m) FILTER (WHERE t.status <> 'completed'), "		\
	"avg(t.run_ms), " P95("t.run_ms") ", "				\
	"avg(t.wait_ms), " P95("t.wait_ms")

static double row_ms(const PGresult *r, int row, int col)
{
	return aeth__row_null(r, row, col) ? -1 : strtod(PQgetvalue(r, row, col),
							NULL);
}

/* ENDED_COLS from column `col` on. */
static void read_ended(const PGresult *r, int row, int col,
		       aeth__stats_ended *e)
{
	e->ok = aeth__row_i64(r, row, col);
	e->failed = aeth__row_i64(r, row, col + 1);
	e->run_mean_ms = row_ms(r, row, col + 2);
	e->run_p95_ms = row_ms(r, row, col + 3);
	e->wait_mean_ms = row_ms(r, row, col + 4);
	e->wait_p95_ms = row_ms(r, row, col + 5);
}

/*
 * Check `window_s` (60 s to a day), run `sql` with $1 = `secs`, $2 =
 * `tenant` and make room for its rows: *r (the caller PQclear()s it) and
 * *out, a zeroed array of as many `size` elements (NULL for none), their
 * number in *n.
 */
static int query_rows(aeth_store *s, const char *what, const char *sql,
		      unsigned int window_s, unsigned int secs,
		      const char *tenant, size_t size, PGresult **r, void **out,
		      size_t *n)
{
	char text[16];
	const char *p[] = {text, tenant};
	int rc, rows;

	*out = NULL;
	*n = 0;
	if (window_s < 60 || window_s > 86400)
		return aeth__error_set(AETH_EINVALID, "%s: the window must be from "
				       "60 to 86400 seconds, not %u", what,
				       window_s);
	snprintf(text, sizeof(text), "%u", secs);
	if ((rc = aeth__store_exec(s, what, sql, 2, p, r)) != 0)
		return rc;
	rows = PQntuples(*r);
	if (rows > 0 && !(*out = calloc((size_t)rows, size))) {
		PQclear(*r);
		return aeth__error_oom();
	}
	*n = (size_t)rows;
	return 0;
}

int aeth__store_stats_history(aeth_store *s, const char *tenant,
			      unsigned int window_s, aeth__stats_minute **out,
			      size_t *n)
{
	PGresult *r;
	int rc;

	/* $1: the current minute and the whole ones before it */
	rc = query_rows(s, "reading the task history",
		"WITH w AS (SELECT date_trunc('minute', " AETH__NOW ") - "
		"make_interval(secs => $1::int) AS lo), "
		"ms AS (SELECT generate_series(w.lo, w.lo + make_interval(secs => "
		"$1::int), interval '1 minute') AS m FROM w), "
		ENDED("(SELECT lo FROM w)") " "
		"SELECT " AETH__MS("ms.m") ", " ENDED_COLS ", "
		"count(t.boot_ms), avg(t.boot_ms), " P95("t.boot_ms") " "
		"FROM ms LEFT JOIN t ON t.m = ms.m GROUP BY ms.m ORDER BY ms.m",
		window_s, window_s / 60 * 60 - 60, tenant, sizeof(**out), &r,
		(void **)out, n);
	if (rc != 0)
		return rc;
	for (size_t i = 0; i < *n; i++) {
		aeth__stats_minute *m = &(*out)[i];
		int row = (int)i;

		m->minute_ms = aeth__row_i64(r, row, 0);
		read_ended(r, row, 1, &m->e);
		m->boots = aeth__row_i64(r, row, 7);
		m->boot_mean_ms = row_ms(r, row, 8);
		m->boot_p95_ms = row_ms(r, row, 9);
	}
	PQclear(r);
	return 0;
}

int aeth__store_stats_queues(aeth_store *s, const char *tenant,
			     unsigned int recent_s, aeth__stats_queue **out,
			     size_t *n)
{
	PGresult *r;
	int rc;

	rc = query_rows(s, "reading the queues' recent tasks",
		"WITH " ENDED("(" AETH__NOW " - make_interval(secs => $1::int))")
		" SELECT t.queue, " ENDED_COLS " FROM t GROUP BY t.queue "
		"ORDER BY t.queue LIMIT 1000", recent_s, recent_s, tenant,
		sizeof(**out), &r, (void **)out, n);
	if (rc != 0)
		return rc;
	for (size_t i = 0; i < *n; i++) {
		aeth__stats_queue *q = &(*out)[i];
		int row = (int)i;

		snprintf(q->queue, sizeof(q->queue), "%s", PQgetvalue(r, row, 0));
		read_ended(r, row, 1, &q->e);
	}
	PQclear(r);
	return 0;
}
