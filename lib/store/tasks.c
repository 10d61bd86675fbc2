/* lib/store/tasks.c - rows of the tasks table. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "store/sql.h"

#define COL(sql, kind, field) \
	{sql, AETH__COL_##kind, offsetof(aeth_store_task, field)}

static const aeth__col task_cols[] = {
	COL("id", ID, id),
	COL("type", STR, type),
	COL("status", STR, status),
	COL("priority", INT, priority),
	COL("payload", STR, payload),
	COL("result", STR, result),
	COL("error", STR, error),
	COL("vm_id", ID, vm_id),
	COL("worker_id", STR, worker_id),
	COL("max_retries", INT, max_retries),
	COL("retry_count", INT, retry_count),
	COL(AETH__MS("created_at"), I64, created_at_ms),
	COL(AETH__MS("scheduled_at"), I64, scheduled_at_ms),
	COL(AETH__MS("started_at"), I64, started_at_ms),
	COL(AETH__MS("completed_at"), I64, completed_at_ms),
	COL(AETH__MS("updated_at"), I64, updated_at_ms),
	COL("metadata", STR, metadata),
	COL("queue", STR, queue),
	COL("timeout_ms", I64, timeout_ms),
	COL("tenant_id", STR, tenant),
};

static const aeth__filter_col task_filters[] = {
	AETH__FILTER(status, "status", aeth__task_statuses, NULL),
	AETH__FILTER(type, "type", NULL, NULL),
	AETH__FILTER(worker, "worker_id", NULL, NULL),
	AETH__FILTER(vm_id, "vm_id", NULL, "vm"),
	AETH__FILTER(tenant, "tenant_id", NULL, NULL),
};

static const aeth__table task_table = {
	"tasks", "task", sizeof(aeth_store_task), AETH_STORE_TASK_VERSION,
	task_cols, AETH__ARRAY_LEN(task_cols),
	task_filters, AETH__ARRAY_LEN(task_filters),
	"created_at DESC, id",
};

/* SQL for "status $n changes the timestamps" shared by the updates. */
#define STARTED(n)                                                       \
	"started_at = CASE WHEN " n " = 'running' THEN " AETH__NOW         \
	" ELSE started_at END"
#define COMPLETED(n)                                                     \
	"completed_at = CASE WHEN " n " IN ('completed', 'failed', 'dead') " \
	"THEN " AETH__NOW " ELSE completed_at END"

static int check_task(const aeth_store_task *t, const char *status,
		      bool payload_checked)
{
	int rc;

	if ((rc = aeth__store_check_uuid("task id", t->id)) ||
	    (rc = aeth__store_check_text("task type", t->type, 100, true)) ||
	    (rc = aeth__store_check_status("task", status, aeth__task_statuses)) ||
	    (rc = payload_checked ?
		  aeth__store_check_text("task payload", t->payload, 0, true) :
		  aeth__store_check_json("task payload", t->payload, true)) ||
	    (rc = aeth__store_check_json("task result", t->result, false)) ||
	    (rc = aeth__store_check_text("task error", t->error, 0, false)) ||
	    (rc = aeth__store_check_text("task worker_id", t->worker_id, 255,
					 false)) ||
	    (rc = aeth__store_check_json("task metadata", t->metadata, false)) ||
	    (rc = aeth__store_check_text("task queue", t->queue, 100, false)) ||
	    (rc = aeth__store_check_ref("vm", t->vm_id)))
		return rc;
	if (t->timeout_ms < 0 || t->retry_count < 0 || t->max_retries < 0)
		return aeth__error_set(AETH_EINVALID,
				       "task timeout_ms, retry_count and "
				       "max_retries must not be negative");
	return 0;
}

static const aeth_store_task task_defaults = AETH_STORE_TASK_INIT;
static const size_t task_sizes[] = {
	AETH__END(aeth_store_task, timeout_ms), /* 1 */
	sizeof(aeth_store_task),                /* 2 */
};
static const aeth__versioned task_v = {
	"aeth_store_task", "AETH_STORE_TASK_INIT", AETH_STORE_TASK_VERSION,
	task_sizes, &task_defaults,
};

int aeth_store_task_init(aeth_store_task *task, unsigned int version)
{
	return aeth__versioned_init(&task_v, task, version);
}

int aeth_store_task_insert(aeth_store *s, aeth_store_task *t)
{
	return aeth__store_task_insert(s, t, false);
}

static int task_insert(aeth_store *s, aeth_store_task *t, bool payload_checked);

/* On a current copy of the caller's record; what insert fills in goes
 * back (fields every version has). */
int aeth__store_task_insert(aeth_store *s, aeth_store_task *t,
			    bool payload_checked)
{
	aeth_store_task cur;
	int rc;

	if (!t)
		return aeth__error_set(AETH_EINVALID, "task record is NULL");
	if ((rc = aeth__versioned_copy(&task_v, &cur, t)) != 0)
		return rc;
	rc = task_insert(s, &cur, payload_checked);
	memcpy(t->id, cur.id, sizeof(t->id));
	t->created_at_ms = cur.created_at_ms;
	t->scheduled_at_ms = cur.scheduled_at_ms;
	return rc;
}

static int task_insert(aeth_store *s, aeth_store_task *t, bool payload_checked)
{
	char prio[16], maxr[16], retries[16], sched[32], timeout[32];
	const char *status;
	PGresult *r;
	int rc;

	if (!t)
		return aeth__error_set(AETH_EINVALID, "task record is NULL");
	status = t->status ? t->status : "pending";
	if ((rc = check_task(t, status, payload_checked)))
		return rc;
	if (!t->id[0])
		aeth__uuid_new(t->id);
	snprintf(prio, sizeof(prio), "%d", t->priority);
	snprintf(maxr, sizeof(maxr), "%d", t->max_retries);
	snprintf(retries, sizeof(retries), "%d", t->retry_count);
	snprintf(sched, sizeof(sched), "%lld", (long long)t->scheduled_at_ms);
	snprintf(timeout, sizeof(timeout), "%lld", (long long)t->timeout_ms);
	const char *p[] = {t->id, t->type, status, prio, t->payload, t->result,
			   t->error, aeth__store_nz(t->vm_id), t->worker_id, maxr,
			   retries, t->scheduled_at_ms ? sched : NULL, t->metadata,
			   t->queue, t->timeout_ms ? timeout : NULL,
			   aeth__store_nz(t->tenant)};
	rc = aeth__store_exec(s, "inserting a task",
		"INSERT INTO tasks (id, type, status, priority, payload, result, "
		"error, vm_id, worker_id, max_retries, retry_count, scheduled_at, "
		"metadata, queue, timeout_ms, created_at, updated_at, started_at, "
		"completed_at, tenant_id) VALUES ($1, $2, $3::text, $4, $5, $6, $7, $8, "
		"$9, $10, $11, "
		"coalesce(to_timestamp($12::bigint / 1000.0) AT TIME ZONE 'UTC', "
		AETH__NOW "), $13, $14, $15, " AETH__NOW ", " AETH__NOW ", "
		"CASE WHEN $3::text = 'running' THEN " AETH__NOW " END, "
		"CASE WHEN $3::text IN ('completed', 'failed', 'dead') THEN " AETH__NOW
		" END, coalesce($16, 'default')) RETURNING " AETH__MS("created_at") ", "
		AETH__MS("scheduled_at"),
		(int)AETH__ARRAY_LEN(p), p, &r);
	if (rc == AETH_EEXISTS)
		return aeth__error_set(rc, "task %s already exists", t->id);
	if (rc == AETH_ENOTFOUND)
		return aeth__error_set(rc, "vm %s not found (task %s refers to it)",
				       t->vm_id, t->id);
	if (rc != 0)
		return rc;
	t->created_at_ms = aeth__row_i64(r, 0, 0);
	t->scheduled_at_ms = aeth__row_i64(r, 0, 1);
	PQclear(r);
	return 0;
}

int aeth_store_task_get(aeth_store_task **out, aeth_store *s, const char *id)
{
	return aeth__store_get(s, &task_table, id, NULL, (void **)out);
}

int aeth__store_task_get_in(aeth_store_task **out, aeth_store *s,
			    const char *id, const char *tenant)
{
	return aeth__store_get(s, &task_table, id, tenant, (void **)out);
}

int aeth__store_task_set_status(aeth_store *s, const char *id,
				const char *status)
{
	const char *p[] = {id, status};
	int rc;

	if ((rc = aeth__store_check_status("task", status, aeth__task_statuses)))
		return rc;
	return aeth__store_update_one(s, "task", id,
		"UPDATE tasks SET status = $2::text, updated_at = " AETH__NOW ", "
		STARTED("$2::text") ", " COMPLETED("$2::text") " WHERE id = $1", 2, p);
}

int aeth_store_task_start(aeth_store *s, const char *id, const char *worker_id,
			  int retry_count)
{
	char retries[16];
	const char *p[] = {id, worker_id, retries};
	int rc;

	if ((rc = aeth__store_check_text("task worker_id", worker_id, 255, false)))
		return rc;
	snprintf(retries, sizeof(retries), "%d", retry_count < 0 ? 0 : retry_count);
	return aeth__store_update_one(s, "task", id,
		"UPDATE tasks SET status = 'running', worker_id = $2, "
		"retry_count = $3, started_at = " AETH__NOW ", updated_at = "
		AETH__NOW " WHERE id = $1", 3, p);
}

int aeth_store_task_finish(aeth_store *s, const char *id, const char *status,
			   const char *result_json, const char *error)
{
	const char *p[] = {id, status, result_json, error};
	int rc;

	if ((rc = aeth__store_check_status("task", status, aeth__task_statuses)) ||
	    (rc = aeth__store_check_json("task result", result_json, false)) ||
	    (rc = aeth__store_check_text("task error", error, 0, false)))
		return rc;
	return aeth__store_update_one(s, "task", id,
		"UPDATE tasks SET status = $2::text, result = coalesce($3::jsonb, result), "
		"error = $4, updated_at = " AETH__NOW ", " STARTED("$2::text") ", "
		COMPLETED("$2::text") " WHERE id = $1", 4, p);
}

/* One column from one parameter; `col` is a constant of this file. */
static int set_column(aeth_store *s, const char *id, const char *sql,
		      const char *value)
{
	const char *p[] = {id, value};

	return aeth__store_update_one(s, "task", id, sql, 2, p);
}

int aeth__store_task_set_queue(aeth_store *s, const char *id, const char *queue)
{
	int rc = aeth__store_check_text("task queue", queue, 100, false);

	return rc ? rc : set_column(s, id, "UPDATE tasks SET queue = $2, "
				    "updated_at = " AETH__NOW " WHERE id = $1", queue);
}

int aeth__store_task_set_vm(aeth_store *s, const char *id, const char *vm_id)
{
	int rc = aeth__store_check_ref("vm", vm_id);

	return rc ? rc : set_column(s, id, "UPDATE tasks SET vm_id = $2::uuid, "
				    "updated_at = " AETH__NOW " WHERE id = $1", vm_id);
}

int aeth_store_task_list(aeth_store_task ***out, size_t *count, aeth_store *s,
			 const aeth_store_filter *f)
{
	return aeth__store_list(s, &task_table, f, (void ***)out, count);
}

void aeth_store_task_free(aeth_store_task *t)
{
	aeth__record_free(&task_table, t);
}

void aeth_store_task_list_free(aeth_store_task **list)
{
	aeth__record_list_free(&task_table, (void **)list);
}
