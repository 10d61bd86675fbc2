/* lib/store/executions.c - rows of the executions table. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "store/store_internal.h"

#define EXEC_COLS                                                          \
	"id, job_id, vm_id, task_id, command, args, env, exit_code, stdout, " \
	"stderr, error, " AETH__MS("started_at") ", "                         \
	AETH__MS("completed_at") ", duration_ms, metadata"

static int check_ref(const char *kind, const char *id)
{
	if (id[0] && !aeth__uuid_valid(id))
		return aeth__error_set(AETH_ENOTFOUND, "%s %.36s not found (not a UUID)",
				       kind, id);
	return 0;
}

static int check_exec(const aeth_store_execution *e)
{
	int rc;

	if ((rc = aeth__store_check_uuid("execution id", e->id)) ||
	    (rc = aeth__store_check_uuid("execution job_id", e->job_id)) ||
	    (rc = check_ref("vm", e->vm_id)) || (rc = check_ref("task", e->task_id)) ||
	    (rc = aeth__store_check_text("execution command", e->command, 500,
					 true)) ||
	    (rc = aeth__store_check_json("execution args", e->args, false)) ||
	    (rc = aeth__store_check_json("execution env", e->env, false)) ||
	    (rc = aeth__store_check_text("execution stdout", e->stdout_data, 0,
					 false)) ||
	    (rc = aeth__store_check_text("execution stderr", e->stderr_data, 0,
					 false)) ||
	    (rc = aeth__store_check_text("execution error", e->error, 0, false)) ||
	    (rc = aeth__store_check_json("execution metadata", e->metadata, false)))
		return rc;
	return 0;
}

int aeth_store_execution_insert(aeth_store *s, aeth_store_execution *e)
{
	char code[16], started[32], completed[32], dur[16];
	PGresult *r;
	int rc;

	if (!e)
		return aeth__error_set(AETH_EINVALID, "execution record is NULL");
	if ((rc = check_exec(e)))
		return rc;
	if (!e->id[0])
		aeth__uuid_new(e->id);
	snprintf(code, sizeof(code), "%d", e->exit_code);
	snprintf(started, sizeof(started), "%lld", (long long)e->started_at_ms);
	snprintf(completed, sizeof(completed), "%lld", (long long)e->completed_at_ms);
	snprintf(dur, sizeof(dur), "%d", e->duration_ms);
	const char *p[] = {e->id, aeth__store_nz(e->job_id), aeth__store_nz(e->vm_id),
			   aeth__store_nz(e->task_id), e->command, e->args, e->env,
			   e->has_exit_code ? code : NULL, e->stdout_data,
			   e->stderr_data, e->error,
			   e->started_at_ms ? started : NULL,
			   e->completed_at_ms ? completed : NULL,
			   e->completed_at_ms || e->duration_ms ? dur : NULL,
			   e->metadata};
	rc = aeth__store_exec(s, "inserting an execution",
		"INSERT INTO executions (id, job_id, vm_id, task_id, command, args, "
		"env, exit_code, stdout, stderr, error, started_at, completed_at, "
		"duration_ms, metadata) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, "
		"$10, $11, coalesce(to_timestamp($12::bigint / 1000.0) AT TIME ZONE "
		"'UTC', " AETH__NOW "), to_timestamp($13::bigint / 1000.0) AT TIME "
		"ZONE 'UTC', $14, $15) RETURNING " AETH__MS("started_at"),
		(int)AETH__ARRAY_LEN(p), p, &r);
	if (rc == AETH_EEXISTS)
		return aeth__error_set(rc, "execution %s already exists", e->id);
	if (rc == AETH_ENOTFOUND)
		return aeth__error_set(rc, "%s not found (execution %s refers to it)",
				       strstr(aeth_error_last(), "task") ? "task" : "vm",
				       e->id);
	if (rc != 0)
		return rc;
	e->started_at_ms = aeth__row_i64(r, 0, 0);
	PQclear(r);
	return 0;
}

int aeth_store_execution_finish(aeth_store *s, const char *id, int has_exit_code,
				int exit_code, const char *out, const char *err,
				const char *error)
{
	char code[16];
	const char *p[] = {id, has_exit_code ? code : NULL, out, err, error};
	int rc;

	if ((rc = aeth__store_check_text("execution stdout", out, 0, false)) ||
	    (rc = aeth__store_check_text("execution stderr", err, 0, false)) ||
	    (rc = aeth__store_check_text("execution error", error, 0, false)))
		return rc;
	snprintf(code, sizeof(code), "%d", exit_code);
	return aeth__store_update_one(s, "execution", id,
		"UPDATE executions SET exit_code = $2, stdout = $3, stderr = $4, "
		"error = $5, completed_at = " AETH__NOW ", duration_ms = "
		"least(extract(epoch from (" AETH__NOW " - coalesce(started_at, "
		AETH__NOW "))) * 1000, 2147483647)::int WHERE id = $1", 5, p);
}

static int exec_from_row(const PGresult *r, int row, aeth_store_execution **out)
{
	aeth_store_execution *e = calloc(1, sizeof(*e));

	*out = NULL;
	if (!e)
		return aeth__error_oom();
	aeth__row_id(r, row, 0, e->id);
	aeth__row_id(r, row, 1, e->job_id);
	aeth__row_id(r, row, 2, e->vm_id);
	aeth__row_id(r, row, 3, e->task_id);
	e->has_exit_code = !aeth__row_null(r, row, 7);
	e->exit_code = aeth__row_int(r, row, 7);
	e->started_at_ms = aeth__row_i64(r, row, 11);
	e->completed_at_ms = aeth__row_i64(r, row, 12);
	e->duration_ms = aeth__row_int(r, row, 13);
	if (aeth__row_str(r, row, 4, &e->command) ||
	    aeth__row_str(r, row, 5, &e->args) ||
	    aeth__row_str(r, row, 6, &e->env) ||
	    aeth__row_str(r, row, 8, &e->stdout_data) ||
	    aeth__row_str(r, row, 9, &e->stderr_data) ||
	    aeth__row_str(r, row, 10, &e->error) ||
	    aeth__row_str(r, row, 14, &e->metadata)) {
		aeth_store_execution_free(e);
		return AETH_ENOMEM;
	}
	*out = e;
	return 0;
}

int aeth_store_execution_get(aeth_store *s, const char *id,
			     aeth_store_execution **out)
{
	const char *p[] = {id};
	PGresult *r;
	int rc;

	if (!out)
		return aeth__error_set(AETH_EINVALID,
				       "aeth_store_execution_get: out is NULL");
	*out = NULL;
	if ((rc = aeth__store_check_id("execution", id)) ||
	    (rc = aeth__store_exec(s, "reading an execution",
				   "SELECT " EXEC_COLS " FROM executions WHERE id = $1",
				   1, p, &r)))
		return rc;
	rc = PQntuples(r) == 1
		? exec_from_row(r, 0, out)
		: aeth__error_set(AETH_ENOTFOUND, "execution %s not found", id);
	PQclear(r);
	return rc;
}

int aeth_store_execution_list(aeth_store *s, const aeth_store_filter *f,
			      aeth_store_execution ***out, size_t *count)
{
	char limit[16];
	aeth_store_execution **list;
	PGresult *r;
	int rc, n;

	if (!out)
		return aeth__error_set(AETH_EINVALID,
				       "aeth_store_execution_list: out is NULL");
	*out = NULL;
	if (count)
		*count = 0;
	if (f && ((f->vm_id && (rc = check_ref("vm", f->vm_id))) ||
		  (f->task_id && (rc = check_ref("task", f->task_id)))))
		return rc;
	snprintf(limit, sizeof(limit), "%u", aeth__store_limit(f));
	const char *p[] = {f ? aeth__store_nz(f->vm_id) : NULL,
			   f ? aeth__store_nz(f->task_id) : NULL, limit};
	rc = aeth__store_exec(s, "listing executions",
		"SELECT " EXEC_COLS " FROM executions"
		" WHERE ($1::uuid IS NULL OR vm_id = $1::uuid)"
		" AND ($2::uuid IS NULL OR task_id = $2::uuid)"
		" ORDER BY started_at, id LIMIT $3::int", 3, p, &r);
	if (rc != 0)
		return rc;
	n = PQntuples(r);
	if (!(list = calloc((size_t)n + 1, sizeof(*list)))) {
		PQclear(r);
		return aeth__error_oom();
	}
	for (int i = 0; i < n; i++)
		if ((rc = exec_from_row(r, i, &list[i])) != 0) {
			aeth_store_execution_list_free(list);
			PQclear(r);
			return rc;
		}
	PQclear(r);
	*out = list;
	if (count)
		*count = (size_t)n;
	return 0;
}

void aeth_store_execution_free(aeth_store_execution *e)
{
	if (!e)
		return;
	free(e->command);
	free(e->args);
	free(e->env);
	free(e->stdout_data);
	free(e->stderr_data);
	free(e->error);
	free(e->metadata);
	free(e);
}

void aeth_store_execution_list_free(aeth_store_execution **list)
{
	if (!list)
		return;
	for (aeth_store_execution **e = list; *e; e++)
		aeth_store_execution_free(*e);
	free(list);
}
