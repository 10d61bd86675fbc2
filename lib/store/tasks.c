/* lib/store/tasks.c - rows of the tasks table. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "store/store_internal.h"

#define TASK_COLS                                                          \
	"id, type, status, priority, payload, result, error, vm_id, "      \
	"worker_id, max_retries, retry_count, " AETH__MS("created_at") ", " \
	AETH__MS("scheduled_at") ", " AETH__MS("started_at") ", "          \
	AETH__MS("completed_at") ", " AETH__MS("updated_at") ", "          \
	"metadata, queue, timeout_ms"

/* SQL for "status $n changes the timestamps" shared by the updates. */
#define STARTED(n)                                                       \
	"started_at = CASE WHEN " n " = 'running' THEN " AETH__NOW         \
	" ELSE started_at END"
#define COMPLETED(n)                                                     \
	"completed_at = CASE WHEN " n " IN ('completed', 'failed', 'dead') " \
	"THEN " AETH__NOW " ELSE completed_at END"

static int check_task(const aeth_store_task *t, const char *status)
{
	int rc;

	if ((rc = aeth__store_check_uuid("task id", t->id)) ||
	    (rc = aeth__store_check_text("task type", t->type, 100, true)) ||
	    (rc = aeth__store_check_status("task", status, aeth__task_statuses)) ||
	    (rc = aeth__store_check_json("task payload", t->payload, true)) ||
	    (rc = aeth__store_check_json("task result", t->result, false)) ||
	    (rc = aeth__store_check_text("task error", t->error, 0, false)) ||
	    (rc = aeth__store_check_text("task worker_id", t->worker_id, 255,
					 false)) ||
	    (rc = aeth__store_check_json("task metadata", t->metadata, false)) ||
	    (rc = aeth__store_check_text("task queue", t->queue, 100, false)))
		return rc;
	if (t->vm_id[0] && !aeth__uuid_valid(t->vm_id))
		return aeth__error_set(AETH_ENOTFOUND, "vm %.36s not found (not a UUID)",
				       t->vm_id);
	if (t->timeout_ms < 0 || t->retry_count < 0 || t->max_retries < 0)
		return aeth__error_set(AETH_EINVALID,
				       "task timeout_ms, retry_count and "
				       "max_retries must not be negative");
	return 0;
}

int aeth_store_task_insert(aeth_store *s, aeth_store_task *t)
{
	char prio[16], maxr[16], retries[16], sched[32], timeout[32];
	const char *status;
	PGresult *r;
	int rc;

	if (!t)
		return aeth__error_set(AETH_EINVALID, "task record is NULL");
	status = t->status ? t->status : "pending";
	if ((rc = check_task(t, status)))
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
			   t->queue, t->timeout_ms ? timeout : NULL};
	rc = aeth__store_exec(s, "inserting a task",
		"INSERT INTO tasks (id, type, status, priority, payload, result, "
		"error, vm_id, worker_id, max_retries, retry_count, scheduled_at, "
		"metadata, queue, timeout_ms, created_at, updated_at, started_at, "
		"completed_at) VALUES ($1, $2, $3::text, $4, $5, $6, $7, $8, $9, $10, $11, "
		"coalesce(to_timestamp($12::bigint / 1000.0) AT TIME ZONE 'UTC', "
		AETH__NOW "), $13, $14, $15, " AETH__NOW ", " AETH__NOW ", "
		"CASE WHEN $3::text = 'running' THEN " AETH__NOW " END, "
		"CASE WHEN $3::text IN ('completed', 'failed', 'dead') THEN " AETH__NOW
		" END) RETURNING " AETH__MS("created_at") ", " AETH__MS("scheduled_at"),
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

static int task_from_row(const PGresult *r, int row, aeth_store_task **out)
{
	aeth_store_task *t = calloc(1, sizeof(*t));

	*out = NULL;
	if (!t)
		return aeth__error_oom();
	aeth__row_id(r, row, 0, t->id);
	t->priority = aeth__row_int(r, row, 3);
	aeth__row_id(r, row, 7, t->vm_id);
	t->max_retries = aeth__row_int(r, row, 9);
	t->retry_count = aeth__row_int(r, row, 10);
	t->created_at_ms = aeth__row_i64(r, row, 11);
	t->scheduled_at_ms = aeth__row_i64(r, row, 12);
	t->started_at_ms = aeth__row_i64(r, row, 13);
	t->completed_at_ms = aeth__row_i64(r, row, 14);
	t->updated_at_ms = aeth__row_i64(r, row, 15);
	t->timeout_ms = aeth__row_i64(r, row, 18);
	if (aeth__row_str(r, row, 1, &t->type) ||
	    aeth__row_str(r, row, 2, &t->status) ||
	    aeth__row_str(r, row, 4, &t->payload) ||
	    aeth__row_str(r, row, 5, &t->result) ||
	    aeth__row_str(r, row, 6, &t->error) ||
	    aeth__row_str(r, row, 8, &t->worker_id) ||
	    aeth__row_str(r, row, 16, &t->metadata) ||
	    aeth__row_str(r, row, 17, &t->queue)) {
		aeth_store_task_free(t);
		return AETH_ENOMEM;
	}
	*out = t;
	return 0;
}

int aeth_store_task_get(aeth_store *s, const char *id, aeth_store_task **out)
{
	const char *p[] = {id};
	PGresult *r;
	int rc;

	if (!out)
		return aeth__error_set(AETH_EINVALID, "aeth_store_task_get: out is NULL");
	*out = NULL;
	if ((rc = aeth__store_check_id("task", id)) ||
	    (rc = aeth__store_exec(s, "reading a task",
				   "SELECT " TASK_COLS " FROM tasks WHERE id = $1",
				   1, p, &r)))
		return rc;
	rc = PQntuples(r) == 1 ? task_from_row(r, 0, out)
			       : aeth__error_set(AETH_ENOTFOUND, "task %s not found", id);
	PQclear(r);
	return rc;
}

int aeth_store_task_set_status(aeth_store *s, const char *id, const char *status)
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

int aeth_store_task_set_result(aeth_store *s, const char *id, const char *json)
{
	int rc = aeth__store_check_json("task result", json, false);

	return rc ? rc : set_column(s, id, "UPDATE tasks SET result = $2, "
				    "updated_at = " AETH__NOW " WHERE id = $1", json);
}

int aeth_store_task_set_error(aeth_store *s, const char *id, const char *error)
{
	int rc = aeth__store_check_text("task error", error, 0, false);

	return rc ? rc : set_column(s, id, "UPDATE tasks SET error = $2, "
				    "updated_at = " AETH__NOW " WHERE id = $1", error);
}

int aeth_store_task_set_worker(aeth_store *s, const char *id, const char *worker)
{
	int rc = aeth__store_check_text("task worker_id", worker, 255, false);

	return rc ? rc : set_column(s, id, "UPDATE tasks SET worker_id = $2, "
				    "updated_at = " AETH__NOW " WHERE id = $1", worker);
}

int aeth_store_task_set_retry_count(aeth_store *s, const char *id, int n)
{
	char v[16];

	if (n < 0)
		return aeth__error_set(AETH_EINVALID,
				       "task retry_count must not be negative");
	snprintf(v, sizeof(v), "%d", n);
	return set_column(s, id, "UPDATE tasks SET retry_count = $2, "
			  "updated_at = " AETH__NOW " WHERE id = $1", v);
}

int aeth_store_task_set_vm(aeth_store *s, const char *id, const char *vm_id)
{
	int rc;

	if (vm_id && *vm_id && !aeth__uuid_valid(vm_id))
		return aeth__error_set(AETH_ENOTFOUND, "vm %.40s not found (not a UUID)",
				       vm_id);
	rc = set_column(s, id, "UPDATE tasks SET vm_id = $2, updated_at = "
			AETH__NOW " WHERE id = $1", aeth__store_nz(vm_id));
	if (rc == AETH_ENOTFOUND && vm_id && strstr(aeth_error_last(), "foreign"))
		return aeth__error_set(rc, "vm %s not found", vm_id);
	return rc;
}

int aeth_store_task_list(aeth_store *s, const aeth_store_filter *f,
			 aeth_store_task ***out, size_t *count)
{
	char limit[16];
	aeth_store_task **list;
	PGresult *r;
	int rc, n;

	if (!out)
		return aeth__error_set(AETH_EINVALID, "aeth_store_task_list: out is NULL");
	*out = NULL;
	if (count)
		*count = 0;
	if (f && f->status &&
	    (rc = aeth__store_check_status("task", f->status, aeth__task_statuses)))
		return rc;
	if (f && f->vm_id && *f->vm_id && !aeth__uuid_valid(f->vm_id))
		return aeth__error_set(AETH_ENOTFOUND, "vm %.40s not found (not a UUID)",
				       f->vm_id);
	snprintf(limit, sizeof(limit), "%u", aeth__store_limit(f));
	const char *p[] = {f ? f->status : NULL, f ? f->type : NULL,
			   f ? f->worker : NULL, f ? aeth__store_nz(f->vm_id) : NULL,
			   limit};
	rc = aeth__store_exec(s, "listing tasks",
		"SELECT " TASK_COLS " FROM tasks WHERE ($1::text IS NULL OR status = $1)"
		" AND ($2::text IS NULL OR type = $2)"
		" AND ($3::text IS NULL OR worker_id = $3)"
		" AND ($4::uuid IS NULL OR vm_id = $4::uuid)"
		" ORDER BY created_at DESC, id LIMIT $5::int", 5, p, &r);
	if (rc != 0)
		return rc;
	n = PQntuples(r);
	if (!(list = calloc((size_t)n + 1, sizeof(*list)))) {
		PQclear(r);
		return aeth__error_oom();
	}
	for (int i = 0; i < n; i++)
		if ((rc = task_from_row(r, i, &list[i])) != 0) {
			aeth_store_task_list_free(list);
			PQclear(r);
			return rc;
		}
	PQclear(r);
	*out = list;
	if (count)
		*count = (size_t)n;
	return 0;
}

void aeth_store_task_free(aeth_store_task *t)
{
	if (!t)
		return;
	free(t->type);
	free(t->status);
	free(t->payload);
	free(t->result);
	free(t->error);
	free(t->worker_id);
	free(t->metadata);
	free(t->queue);
	free(t);
}

void aeth_store_task_list_free(aeth_store_task **list)
{
	if (!list)
		return;
	for (aeth_store_task **t = list; *t; t++)
		aeth_store_task_free(*t);
	free(list);
}
