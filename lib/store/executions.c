/* lib/store/executions.c - rows of the executions table. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "store/sql.h"

#define COL(sql, kind, field) \
	{sql, AETH__COL_##kind, offsetof(aeth_store_execution, field)}

static const aeth__col exec_cols[] = {
	COL("id", ID, id),
	COL("job_id", ID, job_id),
	COL("vm_id", ID, vm_id),
	COL("task_id", ID, task_id),
	COL("command", STR, command),
	COL("args", STR, args),
	COL("env", STR, env),
	COL("exit_code IS NOT NULL", BOOL, has_exit_code),
	COL("exit_code", INT, exit_code),
	COL("stdout", STR, stdout_data),
	COL("stderr", STR, stderr_data),
	COL("error", STR, error),
	COL(AETH__MS("started_at"), I64, started_at_ms),
	COL(AETH__MS("completed_at"), I64, completed_at_ms),
	COL("duration_ms", INT, duration_ms),
	COL("metadata", STR, metadata),
	COL("tenant_id", STR, tenant),
};

static const aeth__filter_col exec_filters[] = {
	AETH__FILTER(vm_id, "vm_id", NULL, "vm"),
	AETH__FILTER(task_id, "task_id", NULL, "task"),
	AETH__FILTER(tenant, "tenant_id", NULL, NULL),
};

static const aeth__table exec_table = {
	"executions", "execution", sizeof(aeth_store_execution),
	AETH_STORE_EXECUTION_VERSION,
	exec_cols, AETH__ARRAY_LEN(exec_cols),
	exec_filters, AETH__ARRAY_LEN(exec_filters),
	"started_at, id",
};

static int check_exec(const aeth_store_execution *e)
{
	int rc;

	if ((rc = aeth__store_check_uuid("execution id", e->id)) ||
	    (rc = aeth__store_check_uuid("execution job_id", e->job_id)) ||
	    (rc = aeth__store_check_ref("vm", e->vm_id)) ||
	    (rc = aeth__store_check_ref("task", e->task_id)) ||
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

static const aeth_store_execution exec_defaults = AETH_STORE_EXECUTION_INIT;
static const size_t exec_sizes[] = {
	AETH__END(aeth_store_execution, metadata), /* 1 */
	sizeof(aeth_store_execution),              /* 2 */
};
static const aeth__versioned exec_v = {
	"aeth_store_execution", "AETH_STORE_EXECUTION_INIT",
	AETH_STORE_EXECUTION_VERSION, exec_sizes, &exec_defaults,
};

int aeth_store_execution_init(aeth_store_execution *exec, unsigned int version)
{
	return aeth__versioned_init(&exec_v, exec, version);
}

static int exec_insert(aeth_store *s, aeth_store_execution *e,
		       const aeth__exec_row *d);

/* On a current copy of the caller's record; what insert fills in goes
 * back (fields every version has). */
int aeth_store_execution_insert(aeth_store *s, aeth_store_execution *e)
{
	aeth_store_execution cur;
	int rc;

	if (!e)
		return aeth__error_set(AETH_EINVALID, "execution record is NULL");
	if ((rc = aeth__versioned_copy(&exec_v, &cur, e)) != 0)
		return rc;
	rc = exec_insert(s, &cur, NULL);
	memcpy(e->id, cur.id, sizeof(e->id));
	e->started_at_ms = cur.started_at_ms;
	return rc;
}

int aeth__store_execution_insert_detail(aeth_store *s, aeth_store_execution *e,
					const aeth__exec_row *d)
{
	int rc;

	if ((rc = aeth__store_check_text("execution idempotency_key",
					 d->idempotency_key, 200, false)) ||
	    (rc = aeth__store_check_json("execution result", d->result_json,
					 false)))
		return rc;
	return exec_insert(s, e, d);
}

int aeth__store_execution_by_key(aeth_store *s, const char *vm_id,
				 const char *key, char **result_out)
{
	const char *p[] = {vm_id, key};
	PGresult *r = NULL;
	int rc;

	*result_out = NULL;
	if ((rc = aeth__store_check_ref("vm", vm_id)))
		return rc;
	rc = aeth__store_exec(s, "looking up an idempotency key",
		"SELECT result::text FROM executions WHERE vm_id = $1 AND "
		"idempotency_key = $2", 2, p, &r);
	if (rc != 0)
		return rc;
	if (PQntuples(r) == 0)
		rc = AETH_ENOTFOUND;
	else if (!PQgetisnull(r, 0, 0) && !(*result_out = strdup(PQgetvalue(r, 0, 0))))
		rc = aeth__error_oom();
	PQclear(r);
	return rc;
}

static int exec_insert(aeth_store *s, aeth_store_execution *e,
		       const aeth__exec_row *d)
{
	char code[16], started[32], completed[32], dur[16], sig[16];
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
			   e->metadata,
			   d && d->out_truncated ? "t" : "f",
			   d && d->err_truncated ? "t" : "f",
			   d && d->timed_out ? "t" : "f",
			   d && d->signal ? sig : NULL,
			   d ? d->out_b64 : NULL, d ? d->err_b64 : NULL,
			   d ? d->idempotency_key : NULL, d ? d->result_json : NULL,
			   aeth__store_nz(e->tenant)};
	snprintf(sig, sizeof(sig), "%d", d ? d->signal : 0);
	rc = aeth__store_exec(s, "inserting an execution",
		"INSERT INTO executions (id, job_id, vm_id, task_id, command, args, "
		"env, exit_code, stdout, stderr, error, started_at, completed_at, "
		"duration_ms, metadata, stdout_truncated, stderr_truncated, "
		"timed_out, signal, stdout_b64, stderr_b64, idempotency_key, "
		"result, tenant_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, "
		"$10, $11, coalesce(to_timestamp($12::bigint / 1000.0) AT TIME ZONE "
		"'UTC', " AETH__NOW "), to_timestamp($13::bigint / 1000.0) AT TIME "
		"ZONE 'UTC', $14, $15, $16, $17, $18, $19, $20, $21, $22, "
		"$23::jsonb, coalesce($24, 'default')) RETURNING " AETH__MS("started_at"),
		(int)AETH__ARRAY_LEN(p), p, &r);
	if (rc == AETH_EEXISTS && d && d->idempotency_key &&
	    strstr(aeth_error_last(), "idempotency"))
		return aeth__error_set(rc, "an execution with idempotency key "
				       "\"%s\" in VM %s was recorded first",
				       d->idempotency_key, e->vm_id);
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

int aeth_store_execution_get(aeth_store_execution **out, aeth_store *s,
			     const char *id)
{
	return aeth__store_get(s, &exec_table, id, NULL, (void **)out);
}

int aeth__store_execution_get_in(aeth_store_execution **out, aeth_store *s,
				 const char *id, const char *tenant)
{
	return aeth__store_get(s, &exec_table, id, tenant, (void **)out);
}

int aeth_store_execution_list(aeth_store_execution ***out, size_t *count,
			      aeth_store *s, const aeth_store_filter *f)
{
	return aeth__store_list(s, &exec_table, f, (void ***)out, count);
}

void aeth_store_execution_free(aeth_store_execution *e)
{
	aeth__record_free(&exec_table, e);
}

void aeth_store_execution_list_free(aeth_store_execution **list)
{
	aeth__record_list_free(&exec_table, (void **)list);
}
