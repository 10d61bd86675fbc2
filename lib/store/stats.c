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

static double row_ms(const PGresult *r, int row, int col)
{
	return aeth__row_null(r, row, col) ? -1 : strtod(PQgetvalue(r, row, col),
							NULL);
}

static int check_window(unsigned int s, const char *what)
{
	if (s < 60 || s > 86400)
		return aeth__error_set(AETH_EINVALID, "%s must be from 60 to 86400 "
				       "seconds, not %u", what, s);
	return 0;
}

int aeth__store_stats_history(aeth_store *s, const char *tenant,
			      unsigned int window_s, aeth__stats_minute **out,
			      size_t *n)
{
	char secs[16];
	const char *p[] = {secs, tenant};
	PGresult *r;
	int rc, rows;

	*out = NULL;
	*n = 0;
	if ((rc = check_window(window_s, "window_s")) != 0)
		return rc;
	/* the current minute and the whole ones before it */
	snprintf(secs, sizeof(secs), "%u", window_s / 60 * 60 - 60);
	rc = aeth__store_exec(s, "reading the task history",
		"WITH w AS (SELECT date_trunc('minute', " AETH__NOW ") - "
		"make_interval(secs => $1::int) AS lo), "
		"ms AS (SELECT generate_series(w.lo, w.lo + make_interval(secs => "
		"$1::int), interval '1 minute') AS m FROM w), "
		ENDED("(SELECT lo FROM w)") " "
		"SELECT " AETH__MS("ms.m") ", "
		"count(t.m) FILTER (WHERE t.status = 'completed'), "
		"count(t.m) FILTER (WHERE t.status <> 'completed'), "
		"avg(t.run_ms), " P95("t.run_ms") ", "
		"avg(t.wait_ms), " P95("t.wait_ms") ", "
		"count(t.boot_ms), avg(t.boot_ms), " P95("t.boot_ms") " "
		"FROM ms LEFT JOIN t ON t.m = ms.m GROUP BY ms.m ORDER BY ms.m",
		2, p, &r);
	if (rc != 0)
		return rc;
	rows = PQntuples(r);
	if (rows > 0 && !(*out = calloc((size_t)rows, sizeof(**out)))) {
		PQclear(r);
		return aeth__error_oom();
	}
	for (int i = 0; i < rows; i++) {
		aeth__stats_minute *m = &(*out)[i];

		m->minute_ms = aeth__row_i64(r, i, 0);
		m->ok = aeth__row_i64(r, i, 1);
		m->failed = aeth__row_i64(r, i, 2);
		m->run_mean_ms = row_ms(r, i, 3);
		m->run_p95_ms = row_ms(r, i, 4);
		m->wait_mean_ms = row_ms(r, i, 5);
		m->wait_p95_ms = row_ms(r, i, 6);
		m->boots = aeth__row_i64(r, i, 7);
		m->boot_mean_ms = row_ms(r, i, 8);
		m->boot_p95_ms = row_ms(r, i, 9);
	}
	*n = (size_t)rows;
	PQclear(r);
	return 0;
}

int aeth__store_stats_queues(aeth_store *s, const char *tenant,
			     unsigned int recent_s, aeth__stats_queue **out,
			     size_t *n)
{
	char secs[16];
	const char *p[] = {secs, tenant};
	PGresult *r;
	int rc, rows;

	*out = NULL;
	*n = 0;
	if ((rc = check_window(recent_s, "the queues' window")) != 0)
		return rc;
	snprintf(secs, sizeof(secs), "%u", recent_s);
	rc = aeth__store_exec(s, "reading the queues' recent tasks",
		"WITH " ENDED("(" AETH__NOW " - make_interval(secs => $1::int))")
		" SELECT queue, count(*) FILTER (WHERE status = 'completed'), "
		"count(*) FILTER (WHERE status <> 'completed'), avg(wait_ms), "
		P95("wait_ms") ", avg(run_ms) FROM t GROUP BY queue ORDER BY queue "
		"LIMIT 1000", 2, p, &r);
	if (rc != 0)
		return rc;
	rows = PQntuples(r);
	if (rows > 0 && !(*out = calloc((size_t)rows, sizeof(**out)))) {
		PQclear(r);
		return aeth__error_oom();
	}
	for (int i = 0; i < rows; i++) {
		aeth__stats_queue *q = &(*out)[i];

		snprintf(q->queue, sizeof(q->queue), "%s", PQgetvalue(r, i, 0));
		q->ok = aeth__row_i64(r, i, 1);
		q->failed = aeth__row_i64(r, i, 2);
		q->wait_mean_ms = row_ms(r, i, 3);
		q->wait_p95_ms = row_ms(r, i, 4);
		q->run_mean_ms = row_ms(r, i, 5);
	}
	*n = (size_t)rows;
	PQclear(r);
	return 0;
}
