/*
 * lib/worker/record.c - the tasks / vms / executions rows the worker and
 * the submit client write, as parameterised SQL over libpq. The schema
 * (the seed's tables plus vms.owner_worker, vms.error, tasks.queue,
 * tasks.timeout_ms, tasks.updated_at) and its migrations belong to the
 * store module; this file only reads and writes rows.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <libpq-fe.h>

#include "aetherium/store.h"
#include "internal.h"
#include "worker/record.h"

struct aeth__rec {
	PGconn *conn;
	char *url;
};

/* Hide the password in messages. */
static void safe_url(const char *url, char *out, size_t n)
{
	const char *at = strchr(url, '@'), *colon = strstr(url, "://");

	if (at && colon && at > colon) {
		const char *pw = memchr(colon + 3, ':', (size_t)(at - colon - 3));

		if (pw) {
			snprintf(out, n, "%.*s:***%s", (int)(pw - url), url, at);
			return;
		}
	}
	snprintf(out, n, "%s", url);
}

int aeth__rec_open(aeth__rec **out, const char *url)
{
	char shown[512];
	aeth__rec *r;

	*out = NULL;
	if (!url || !*url)
		return aeth__error_set(AETH_EINVALID, "no PostgreSQL URL: set "
				       "AETH_DATABASE_URL or database.url in the config "
				       "(scripts/services.sh env prints one)");
	if (!(r = calloc(1, sizeof(*r))) || !(r->url = strdup(url))) {
		free(r);
		return aeth__error_oom();
	}
	r->conn = PQconnectdb(url);
	if (PQstatus(r->conn) != CONNECTION_OK) {
		char *msg = strdup(PQerrorMessage(r->conn));
		size_t n = msg ? strlen(msg) : 0;

		while (n && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
			msg[--n] = '\0';
		safe_url(url, shown, sizeof(shown));
		aeth__error_set(AETH_EUNAVAILABLE, "PostgreSQL at %s: %s: is it "
				"running? scripts/services.sh start", shown,
				msg ? msg : "connection failed");
		free(msg);
		aeth__rec_free(r);
		return AETH_EUNAVAILABLE;
	}
	PQsetNoticeProcessor(r->conn, NULL, NULL);
	*out = r;
	return 0;
}

void aeth__rec_free(aeth__rec *r)
{
	if (!r)
		return;
	PQfinish(r->conn);
	free(r->url);
	free(r);
}

int aeth__rec_ping(aeth__rec *r)
{
	if (PQstatus(r->conn) != CONNECTION_OK)
		PQreset(r->conn);
	if (PQstatus(r->conn) != CONNECTION_OK)
		return aeth__error_set(AETH_EUNAVAILABLE, "PostgreSQL connection "
				       "lost: %s", PQerrorMessage(r->conn));
	return 0;
}

/* Run `sql` with text params; *res (may be NULL) gets the result. One
 * reconnect and retry when the connection broke (a restarted server). */
static int exec_sql(aeth__rec *r, const char *sql, int n,
		    const char *const *params, PGresult **res)
{
	PGresult *pr = NULL;

	for (int attempt = 0; attempt < 2; attempt++) {
		ExecStatusType st;

		pr = PQexecParams(r->conn, sql, n, NULL, params, NULL, NULL, 0);
		st = PQresultStatus(pr);
		if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
			if (res)
				*res = pr;
			else
				PQclear(pr);
			return 0;
		}
		if (PQstatus(r->conn) == CONNECTION_OK || attempt == 1)
			break;
		PQclear(pr);
		pr = NULL;
		PQreset(r->conn);
	}
	aeth__error_set(PQstatus(r->conn) == CONNECTION_OK ? AETH_ERROR :
			AETH_EUNAVAILABLE, "PostgreSQL: %s",
			pr ? PQresultErrorMessage(pr) : PQerrorMessage(r->conn));
	PQclear(pr);
	return aeth_error_last_code();
}

static int exec_sql_affected(aeth__rec *r, const char *sql, int n,
			     const char *const *params, int *affected)
{
	PGresult *res = NULL;
	int rc = exec_sql(r, sql, n, params, &res);

	if (rc == 0)
		*affected = atoi(PQcmdTuples(res));
	PQclear(res);
	return rc;
}

int aeth__rec_task_insert(aeth__rec *r, const aeth__task_row *t)
{
	char prio[16], retries[16], timeout[16];
	const char *p[10];

	snprintf(prio, sizeof(prio), "%d", t->priority);
	snprintf(retries, sizeof(retries), "%u", t->max_retries);
	snprintf(timeout, sizeof(timeout), "%u", t->timeout_ms);
	p[0] = t->id; p[1] = t->type; p[2] = t->status ? t->status : "pending";
	p[3] = prio; p[4] = t->payload; p[5] = t->vm_id; p[6] = retries;
	p[7] = t->queue; p[8] = timeout; p[9] = t->error;
	return exec_sql(r,
		"INSERT INTO tasks (id, type, status, priority, payload, vm_id, "
		"max_retries, retry_count, queue, timeout_ms, error, created_at, "
		"scheduled_at, updated_at, completed_at) VALUES ($1, $2, $3::text, $4, "
		"$5::jsonb, $6, $7, 0, $8, $9, $10, now(), now(), now(), "
		"CASE WHEN $3::text = 'failed' THEN now() END)", 10, p, NULL);
}

/* `s` if it is JSON, else `s` as a JSON string (malloc'd either way). */
static char *json_or_string(const char *s)
{
	cJSON *j = s ? cJSON_Parse(s) : NULL;
	char *out;

	if (j) {
		cJSON_Delete(j);
		return strdup(s);
	}
	j = cJSON_CreateString(s ? s : "");
	out = j ? cJSON_PrintUnformatted(j) : NULL;
	cJSON_Delete(j);
	return out;
}

int aeth__rec_task_running(aeth__rec *r, const aeth__task_row *t,
			   const char *worker_id, unsigned int retry_count)
{
	char retry[16], retries[16], timeout[16];
	const char *p[8];
	char *payload;
	int n = 0, rc;

	snprintf(retry, sizeof(retry), "%u", retry_count);
	snprintf(retries, sizeof(retries), "%u", t->max_retries);
	snprintf(timeout, sizeof(timeout), "%u", t->timeout_ms);
	p[0] = t->id; p[1] = worker_id; p[2] = retry;
	rc = exec_sql_affected(r,
		"UPDATE tasks SET status = 'running', worker_id = $2, "
		"retry_count = $3, started_at = now(), updated_at = now(), "
		"error = NULL WHERE id = $1", 3, p, &n);
	if (rc != 0 || n > 0)
		return rc;
	/* enqueued straight into Redis, without a row: make one. A payload
	 * that is not JSON is kept as a JSON string so the row still exists
	 * to say why the task failed. */
	payload = json_or_string(t->payload);
	p[0] = t->id; p[1] = t->type ? t->type : ""; p[2] = payload;
	p[3] = worker_id; p[4] = retry; p[5] = retries; p[6] = t->queue;
	p[7] = timeout;
	rc = exec_sql(r,
		"INSERT INTO tasks (id, type, status, priority, payload, worker_id, "
		"retry_count, max_retries, queue, timeout_ms, created_at, "
		"scheduled_at, started_at, updated_at) VALUES ($1, $2, 'running', "
		"0, $3::jsonb, $4, $5, $6, $7, $8, now(), now(), now(), "
		"now()) ON CONFLICT (id) DO UPDATE SET status = 'running', "
		"worker_id = $4, retry_count = $5, started_at = now(), "
		"updated_at = now()", 8, p, NULL);
	free(payload);
	return rc;
}

int aeth__rec_task_finish(aeth__rec *r, const char *id, const char *status,
			  const char *result_json, const char *error,
			  unsigned int retry_count)
{
	char retry[16];
	const char *p[5] = {id, status, result_json, error, retry};

	snprintf(retry, sizeof(retry), "%u", retry_count);
	return exec_sql(r,
		"UPDATE tasks SET status = $2::text, result = $3::jsonb, error = $4, "
		"retry_count = $5, updated_at = now(), completed_at = CASE WHEN "
		"$2::text IN ('completed', 'failed', 'dead') THEN now() END "
		"WHERE id = $1", 5, p, NULL);
}

#define TASK_JSON                                                            \
	"json_build_object('id', id, 'type', type, 'status', status, "       \
	"'queue', queue, 'payload', payload, 'result', result, 'error', "    \
	"error, 'vm_id', vm_id, 'worker_id', worker_id, 'retry_count', "     \
	"retry_count, 'max_retries', max_retries, 'created_at', created_at, " \
	"'started_at', started_at, 'completed_at', completed_at)"

/* The single text value of a one-row, one-column result. */
static int one_text(aeth__rec *r, const char *sql, int n,
		    const char *const *p, char **out)
{
	PGresult *res = NULL;
	int rc = exec_sql(r, sql, n, p, &res);

	*out = NULL;
	if (rc == 0 && (PQntuples(res) == 0 || PQgetisnull(res, 0, 0)))
		rc = AETH_ENOTFOUND;
	else if (rc == 0 && !(*out = strdup(PQgetvalue(res, 0, 0))))
		rc = aeth__error_oom();
	PQclear(res);
	return rc;
}

int aeth__rec_task_json(aeth__rec *r, const char *id, char **json_out)
{
	const char *p[1] = {id};
	int rc = one_text(r, "SELECT " TASK_JSON " FROM tasks WHERE id::text = $1",
			  1, p, json_out);

	if (rc == AETH_ENOTFOUND)
		return aeth__error_set(rc, "no task %s in the database", id);
	return rc;
}

int aeth__rec_tasks_json(aeth__rec *r, unsigned int limit, char **json_out)
{
	char lim[16];
	const char *p[1] = {lim};

	snprintf(lim, sizeof(lim), "%u", limit ? limit : 20);
	return one_text(r, "SELECT coalesce(json_agg(t), '[]') FROM (SELECT "
			TASK_JSON " AS t FROM tasks ORDER BY created_at DESC, id "
			"LIMIT $1) s", 1, p, json_out);
}

int aeth__rec_vm_insert(aeth__rec *r, const aeth__vm_row *vm)
{
	char vcpus[16], mem[16];
	const char *p[9];

	snprintf(vcpus, sizeof(vcpus), "%u", vm->vcpus);
	snprintf(mem, sizeof(mem), "%u", vm->memory_mb);
	p[0] = vm->id; p[1] = vm->name; p[2] = vm->orchestrator;
	p[3] = vm->kernel_path; p[4] = vm->rootfs_path; p[5] = vm->socket_path;
	p[6] = vcpus; p[7] = mem; p[8] = vm->owner_worker;
	return exec_sql(r,
		"INSERT INTO vms (id, name, orchestrator, status, kernel_path, "
		"rootfs_path, socket_path, vcpu_count, memory_mb, owner_worker, "
		"created_at) VALUES ($1, $2, $3, 'creating', $4, $5, $6, $7, $8, "
		"$9, now())", 9, p, NULL);
}

int aeth__rec_vm_paths(aeth__rec *r, const aeth__vm_row *vm)
{
	const char *p[4] = {vm->id, vm->kernel_path, vm->rootfs_path,
			    vm->socket_path};

	return exec_sql(r, "UPDATE vms SET kernel_path = $2, rootfs_path = $3, "
			"socket_path = $4 WHERE id = $1", 4, p, NULL);
}

int aeth__rec_vm_status(aeth__rec *r, const char *id, const char *status,
			const char *error)
{
	const char *p[3] = {id, status, error};

	return exec_sql(r,
		"UPDATE vms SET status = $2::text, error = coalesce($3, error), "
		"started_at = CASE WHEN $2::text = 'running' THEN coalesce(started_at, "
		"now()) ELSE started_at END, stopped_at = CASE WHEN $2::text IN "
		"('stopped', 'failed', 'deleted') THEN now() ELSE stopped_at END "
		"WHERE id = $1", 3, p, NULL);
}

int aeth__rec_vm_lookup(aeth__rec *r, const char *id, char status[32],
			char owner[256])
{
	const char *p[1] = {id};
	PGresult *res = NULL;
	int rc = exec_sql(r, "SELECT status, coalesce(owner_worker, '') FROM vms "
			  "WHERE id::text = $1", 1, p, &res);

	if (rc == 0 && PQntuples(res) == 0)
		rc = aeth__error_set(AETH_ENOTFOUND, "VM %s does not exist", id);
	if (rc == 0) {
		snprintf(status, 32, "%s", PQgetvalue(res, 0, 0));
		snprintf(owner, 256, "%s", PQgetvalue(res, 0, 1));
	}
	PQclear(res);
	return rc;
}

int aeth__rec_vms_owned(aeth__rec *r, const char *owner, char ***ids_out)
{
	const char *p[1] = {owner};
	PGresult *res = NULL;
	int rc = exec_sql(r, "SELECT id FROM vms WHERE owner_worker = $1 AND "
			  "status IN ('creating', 'running')", 1, p, &res);
	char **ids;
	int n;

	*ids_out = NULL;
	if (rc != 0)
		return rc;
	n = PQntuples(res);
	if (!(ids = calloc((size_t)n + 1, sizeof(char *)))) {
		PQclear(res);
		return aeth__error_oom();
	}
	for (int i = 0; i < n; i++)
		if (!(ids[i] = strdup(PQgetvalue(res, i, 0)))) {
			rc = aeth__error_oom();
			break;
		}
	PQclear(res);
	if (rc != 0)
		aeth_strarray_free(ids);
	else
		*ids_out = ids;
	return rc;
}

int aeth__rec_vms_json(aeth__rec *r, char **json_out)
{
	return one_text(r, "SELECT coalesce(json_agg(json_build_object('id', id, "
			"'name', name, 'status', status, 'orchestrator', orchestrator, "
			"'vcpu_count', vcpu_count, 'memory_mb', memory_mb, "
			"'owner_worker', owner_worker, 'created_at', created_at, "
			"'started_at', started_at, 'stopped_at', stopped_at, 'error', "
			"error) ORDER BY created_at, id), '[]') FROM vms", 0, NULL,
			json_out);
}

int aeth__rec_exec_insert(aeth__rec *r, const aeth__exec_row *e)
{
	char id[37], code[16], start[32], end[32], dur[32];
	const char *p[12];

	aeth__uuid_new(id);
	snprintf(code, sizeof(code), "%d", e->exit_code);
	snprintf(start, sizeof(start), "%lld", (long long)e->started_ms);
	snprintf(end, sizeof(end), "%lld", (long long)e->completed_ms);
	snprintf(dur, sizeof(dur), "%lld", (long long)e->duration_ms);
	p[0] = id; p[1] = e->vm_id; p[2] = e->command; p[3] = e->args_json;
	p[4] = e->env_json; p[5] = e->error ? NULL : code; p[6] = e->out;
	p[7] = e->err; p[8] = e->error; p[9] = start; p[10] = end;
	p[11] = e->task_id;
	return exec_sql(r,
		"INSERT INTO executions (id, vm_id, command, args, env, exit_code, "
		"stdout, stderr, error, started_at, completed_at, duration_ms, task_id) "
		"VALUES ($1, $2, $3, $4::jsonb, $5::jsonb, $6, $7, $8, $9, "
		"to_timestamp($10::bigint / 1000.0), to_timestamp($11::bigint / "
		"1000.0), $11::bigint - $10::bigint, $12)", 12, p, NULL);
}

int aeth__rec_migrate(aeth__rec *r)
{
	aeth_store *s = NULL;
	int rc = aeth_store_open(&s, r->url);

	if (rc == 0)
		rc = aeth_store_migrate(s);
	aeth_store_free(s);
	return rc;
}
