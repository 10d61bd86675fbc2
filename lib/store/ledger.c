/*
 * lib/store/ledger.c - the SQL of the ledger reconciler; see
 * store_ledger.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "store/sql.h"
#include "store/store_ledger.h"

/* The reconciler's advisory lock (migrations hold 7245531900). */
#define LEDGER_LOCK_KEY "7245531901"
/* Times as text that round-trips exactly, whatever DateStyle says. */
#define TS(col) "to_char(" col ", 'YYYY-MM-DD HH24:MI:SS.US')"
/* The columns aeth__ledger_row reads, in read_rows()'s order, with the
 * payload and result as given (the open-row scan leaves both out: they
 * are the costly columns, and only a put-back needs a payload). */
#define COLUMNS(payload_result)                                             \
	"id, type, status, " payload_result ", queue, "                      \
	"coalesce(max_retries, 0), coalesce(retry_count, 0), "               \
	"coalesce(timeout_ms, 0), " TS("created_at") ", " TS("updated_at") ", " \
	"(extract(epoch from " AETH__NOW " - coalesce(updated_at, created_at))" \
	" * 1000)::bigint"

static unsigned int clamp_u(int64_t v)
{
	return v < 0 ? 0 : v > 0xffffffffLL ? 0xffffffffu : (unsigned int)v;
}

void aeth__ledger_rows_free(aeth__ledger_row *rows, size_t n)
{
	for (size_t i = 0; rows && i < n; i++) {
		free(rows[i].type);
		free(rows[i].status);
		free(rows[i].payload);
		free(rows[i].result);
		free(rows[i].queue);
		free(rows[i].created);
		free(rows[i].updated);
	}
	free(rows);
}

/* The rows of a ROW_COLUMNS result into *out; frees r. */
static int read_rows(PGresult *r, aeth__ledger_row **out, size_t *n)
{
	int nr = PQntuples(r);
	aeth__ledger_row *rows = NULL;

	if (nr > 0 && !(rows = calloc((size_t)nr, sizeof(*rows)))) {
		PQclear(r);
		return aeth__error_oom();
	}
	for (int i = 0; i < nr; i++) {
		aeth__ledger_row *t = &rows[i];

		aeth__row_id(r, i, 0, t->id);
		if (aeth__row_str(r, i, 1, &t->type) || aeth__row_str(r, i, 2, &t->status) ||
		    aeth__row_str(r, i, 3, &t->payload) || aeth__row_str(r, i, 4, &t->result) ||
		    aeth__row_str(r, i, 5, &t->queue) || aeth__row_str(r, i, 9, &t->created) ||
		    aeth__row_str(r, i, 10, &t->updated)) {
			aeth__ledger_rows_free(rows, (size_t)i + 1);
			PQclear(r);
			return aeth__error_oom();
		}
		t->max_retries = clamp_u(aeth__row_i64(r, i, 6));
		t->retry_count = clamp_u(aeth__row_i64(r, i, 7));
		t->timeout_ms = clamp_u(aeth__row_i64(r, i, 8));
		t->age_ms = aeth__row_i64(r, i, 11);
	}
	PQclear(r);
	*out = rows;
	*n = (size_t)nr;
	return 0;
}

int aeth__store_tasks_open(aeth_store *s, const char *created, const char *id,
			   unsigned int limit, aeth__ledger_row **out, size_t *n)
{
	char slimit[16];
	const char *p[] = {created, id, slimit};
	PGresult *r;
	int rc;

	*out = NULL;
	*n = 0;
	if (limit == 0 || limit > 1000)
		return aeth__error_set(AETH_EINVALID, "open tasks: limit %u is not "
				       "1..1000", limit);
	if (id && (rc = aeth__store_check_uuid("task id", id)) != 0)
		return rc;
	snprintf(slimit, sizeof(slimit), "%u", limit);
	/* created_at >= $1 is the index range; the rest filters it */
	rc = aeth__store_exec(s, "reading the open tasks",
		"SELECT " COLUMNS("NULL, NULL") " FROM tasks "
		"WHERE created_at >= coalesce($1::timestamp, '-infinity') "
		"AND (created_at > $1::timestamp OR $2::uuid IS NULL OR id > $2::uuid) "
		"AND status IN ('pending', 'running', 'retrying') "
		"ORDER BY created_at, id LIMIT $3", 3, p, &r);
	return rc ? rc : read_rows(r, out, n);
}

int aeth__store_tasks_by_id(aeth_store *s, const char *const *ids, size_t n,
			    aeth__ledger_row **out, size_t *nout)
{
	aeth__buf arr = AETH__BUF_INIT;
	const char *p[1];
	PGresult *r;
	int rc = 0;

	*out = NULL;
	*nout = 0;
	if (n == 0)
		return 0;
	if (n > 1000)
		return aeth__error_set(AETH_EINVALID, "tasks by id: %zu ids, at most "
				       "1000", n);
	for (size_t i = 0; i < n && rc == 0; i++)
		if ((rc = aeth__store_check_uuid("task id", ids[i])) == 0)
			rc = aeth__buf_printf(&arr, "%s%s", i ? "," : "{", ids[i]);
	if (rc == 0)
		rc = aeth__buf_append(&arr, "}", 1);
	if (rc != 0) {
		aeth__buf_free(&arr);
		return rc;
	}
	p[0] = arr.data;
	rc = aeth__store_exec(s, "reading tasks by id",
		"SELECT " COLUMNS("payload::text, result::text") " FROM tasks "
		"WHERE id = ANY($1::uuid[])", 1, p, &r);
	aeth__buf_free(&arr);
	return rc ? rc : read_rows(r, out, nout);
}

int aeth__store_task_repair(aeth_store *s, const aeth__ledger_row *seen,
			    const char *status, int retry_count,
			    const char *result_json, const char *error,
			    const char *note_json, bool *changed)
{
	char rc_text[16];
	const char *p[] = {seen->id, status, rc_text, result_json, error, note_json,
			   seen->status, seen->updated};
	PGresult *r;
	int rc;

	*changed = false;
	if ((rc = aeth__store_check_status("task", status, aeth__task_statuses)) ||
	    (rc = aeth__store_check_json("task result", result_json, false)) ||
	    (rc = aeth__store_check_json("ledger note", note_json, true)) ||
	    (rc = aeth__store_check_text("task error", error, 0, false)))
		return rc;
	snprintf(rc_text, sizeof(rc_text), "%d", retry_count);
	rc = aeth__store_exec(s, "repairing a task row",
		"UPDATE tasks SET status = $2::text, "
		"retry_count = CASE WHEN $3::int < 0 THEN retry_count ELSE $3::int END, "
		"result = coalesce($4::jsonb, result), error = $5, "
		"metadata = CASE WHEN jsonb_typeof(metadata) = 'object' THEN metadata "
		"ELSE '{}'::jsonb END || jsonb_build_object('ledger', $6::jsonb), "
		"updated_at = " AETH__NOW ", completed_at = CASE WHEN $2::text IN "
		"('completed', 'failed', 'dead') THEN " AETH__NOW " ELSE completed_at END "
		"WHERE id = $1 AND status = $7 AND " TS("updated_at")
		" IS NOT DISTINCT FROM $8", (int)AETH__ARRAY_LEN(p), p, &r);
	if (rc != 0)
		return rc;
	*changed = strcmp(PQcmdTuples(r), "1") == 0;
	PQclear(r);
	return 0;
}

static void copy_col(const PGresult *r, int col, char *dst, size_t n)
{
	snprintf(dst, n, "%s", PQgetisnull(r, 0, col) ? "" : PQgetvalue(r, 0, col));
}

int aeth__store_ledger_begin(aeth_store *s, bool *got, aeth__ledger_state *st)
{
	PGresult *r;
	int rc;

	*got = false;
	memset(st, 0, sizeof(*st));
	rc = aeth__store_exec(s, "taking the ledger lock",
		"SELECT pg_try_advisory_lock(" LEDGER_LOCK_KEY ")", 0, NULL, &r);
	if (rc != 0)
		return rc;
	*got = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
	PQclear(r);
	if (!*got)
		return 0;
	s->pinned = true; /* the lock is the session's */
	rc = aeth__store_exec(s, "reading the ledger state",
		"SELECT " TS("mark") ", coalesce((extract(epoch from " AETH__NOW
		" - full_sweep_at) * 1000)::bigint, -1), redis_run_id, "
		TS("pg_started_at") ", coalesce(dead_seen_ms, 0), "
		TS("pg_postmaster_start_time() AT TIME ZONE 'UTC'") ", "
		TS(AETH__NOW " - interval '10 seconds'") " FROM ledger_state WHERE id = 1",
		0, NULL, &r);
	if (rc == 0 && PQntuples(r) != 1)
		rc = aeth__error_set(AETH_ESTATE, "the ledger_state row is missing: "
				     "run aeth_store_migrate()");
	if (rc != 0) {
		PQclear(r);
		aeth__store_ledger_end(s, st, false, false, NULL, NULL);
		return rc;
	}
	copy_col(r, 0, st->mark, sizeof(st->mark));
	st->full_sweep_age_ms = aeth__row_i64(r, 0, 1);
	copy_col(r, 2, st->redis_run_id, sizeof(st->redis_run_id));
	copy_col(r, 3, st->pg_started, sizeof(st->pg_started));
	st->dead_seen_ms = aeth__row_i64(r, 0, 4);
	copy_col(r, 5, st->pg_started_now, sizeof(st->pg_started_now));
	copy_col(r, 6, st->horizon, sizeof(st->horizon));
	PQclear(r);
	return 0;
}

int aeth__store_ledger_end(aeth_store *s, const aeth__ledger_state *st, bool save,
			   bool full_sweep, const char *worker_id,
			   const char *summary_json)
{
	char dead[24];
	const char *p[] = {st->mark[0] ? st->mark : NULL,
			   full_sweep ? "t" : "f",
			   st->redis_run_id[0] ? st->redis_run_id : NULL,
			   st->pg_started_now[0] ? st->pg_started_now : NULL,
			   dead, worker_id, summary_json};
	int rc = 0;

	if (!s || !s->pinned)
		return 0;
	snprintf(dead, sizeof(dead), "%lld", (long long)st->dead_seen_ms);
	if (save)
		rc = aeth__store_exec(s, "writing the ledger state",
			"UPDATE ledger_state SET mark = $1::timestamp, "
			"full_sweep_at = CASE WHEN $2::bool THEN " AETH__NOW
			" ELSE full_sweep_at END, redis_run_id = $3, "
			"pg_started_at = $4::timestamp, dead_seen_ms = $5::bigint, "
			"passes = passes + 1, last_pass_at = " AETH__NOW ", "
			"last_pass_by = $6, last_pass = $7::jsonb WHERE id = 1",
			(int)AETH__ARRAY_LEN(p), p, NULL);
	s->pinned = false;
	/* a broken session took its lock with it */
	if (PQstatus(s->conn) == CONNECTION_OK)
		PQclear(PQexec(s->conn, "SELECT pg_advisory_unlock(" LEDGER_LOCK_KEY ")"));
	return rc;
}

int aeth__store_durability(aeth_store *s, char sync_commit[32], char fsync[16])
{
	PGresult *r;
	int rc = aeth__store_exec(s, "reading the durability settings",
		"SELECT current_setting('synchronous_commit'), "
		"current_setting('fsync')", 0, NULL, &r);

	if (rc != 0)
		return rc;
	snprintf(sync_commit, 32, "%s", PQgetvalue(r, 0, 0));
	snprintf(fsync, 16, "%s", PQgetvalue(r, 0, 1));
	PQclear(r);
	return 0;
}
