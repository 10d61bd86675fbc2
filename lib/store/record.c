/*
 * lib/store/record.c - the tasks / vms / executions rows the worker and
 * the submit client write (store_internal.h). Most go through the store's
 * record functions (one piece of SQL per operation, UTC times, the
 * store's field checks and error messages): this file maps "what the
 * worker records when" onto them. The two batch UPDATEs at the end are the
 * store's task start/finish for many rows at once.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "aetherium/store.h"
#include "internal.h"
#include "store/sql.h"
#include "store/store_internal.h"

struct aeth__rec {
	aeth_store *store;
};

int aeth__rec_open(aeth__rec **out, const char *url)
{
	aeth__rec *r;
	int rc;

	*out = NULL;
	if (!url || !*url)
		return aeth__error_set(AETH_EINVALID, "no PostgreSQL URL: set "
				       "AETH_DATABASE_URL or database.url in the config "
				       "(scripts/services.sh env prints one)");
	if (!(r = calloc(1, sizeof(*r))))
		return aeth__error_oom();
	if ((rc = aeth_store_open(&r->store, url)) != 0) {
		free(r);
		return rc;
	}
	*out = r;
	return 0;
}

void aeth__rec_free(aeth__rec *r)
{
	if (!r)
		return;
	aeth_store_free(r->store);
	free(r);
}

aeth_store *aeth__rec_store(aeth__rec *r)
{
	return r ? r->store : NULL;
}

int aeth__rec_migrate(aeth__rec *r)
{
	return aeth_store_migrate(r->store);
}

int aeth__rec_schema_version(aeth__rec *r, int *version)
{
	return aeth_store_schema_version(version, r->store);
}

size_t aeth__rec_schema_known(void)
{
	return aeth__migrations_count;
}

/* Copy a possibly NULL id into a store record's char[37]. */
static void set_id(char dst[37], const char *id)
{
	snprintf(dst, 37, "%s", id ? id : "");
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

static void task_record(aeth_store_task *st, const aeth__task_row *t,
			const char *status, char *payload)
{
	set_id(st->id, t->id);
	set_id(st->vm_id, t->vm_id);
	st->type = (char *)(t->type ? t->type : "");
	st->status = (char *)status;
	st->priority = t->priority;
	st->payload = payload;
	st->error = (char *)t->error;
	st->max_retries = (int)t->max_retries;
	st->queue = (char *)t->queue;
	st->timeout_ms = t->timeout_ms;
	st->tenant = (char *)t->tenant;
}

int aeth__rec_task_insert(aeth__rec *r, const aeth__task_row *t)
{
	aeth_store_task st = AETH_STORE_TASK_INIT;
	char *payload = t->payload_is_json ? NULL : json_or_string(t->payload);
	int rc;

	if (!t->payload_is_json && !payload)
		return aeth__error_oom();
	task_record(&st, t, t->status ? t->status : "pending",
		    payload ? payload : (char *)t->payload);
	rc = aeth__store_task_insert(r->store, &st, t->payload_is_json);
	free(payload);
	return rc;
}

int aeth__rec_task_running(aeth__rec *r, const aeth__task_row *t,
			   const char *worker_id, unsigned int retry_count)
{
	aeth_store_task st = AETH_STORE_TASK_INIT;
	char *payload;
	int rc = aeth_store_task_start(r->store, t->id, worker_id, (int)retry_count);

	if (rc != AETH_ENOTFOUND)
		return rc;
	/* Enqueued straight into Redis, without a row: make one. A payload
	 * that is not JSON is kept as a JSON string so the row still exists
	 * to say why the task failed. */
	if (!(payload = json_or_string(t->payload)))
		return aeth__error_oom();
	task_record(&st, t, "running", payload);
	st.worker_id = (char *)worker_id;
	st.retry_count = (int)retry_count;
	rc = aeth_store_task_insert(r->store, &st);
	if (rc == AETH_EEXISTS) /* a submitter wrote it meanwhile */
		rc = aeth_store_task_start(r->store, t->id, worker_id, (int)retry_count);
	free(payload);
	return rc;
}

int aeth__rec_task_pending(aeth__rec *r, const char *id)
{
	return aeth__store_task_set_status(r->store, id, "pending");
}

int aeth__rec_task_queue(aeth__rec *r, const char *id, const char *queue)
{
	return aeth__store_task_set_queue(r->store, id, queue);
}

int aeth__rec_task_vm(aeth__rec *r, const char *id, const char *vm_id)
{
	return aeth__store_task_set_vm(r->store, id, vm_id);
}

int aeth__rec_task_finish(aeth__rec *r, const char *id, const char *status,
			  const char *result_json, const char *error)
{
	return aeth_store_task_finish(r->store, id, status, result_json, error);
}

/* ---- VMs ---------------------------------------------------------------- */

static void vm_record(aeth_store_vm *v, const aeth__vm_row *vm)
{
	set_id(v->id, vm->id);
	v->name = (char *)vm->name;
	v->orchestrator = (char *)vm->orchestrator;
	v->kernel_path = (char *)vm->kernel_path;
	v->rootfs_path = (char *)vm->rootfs_path;
	v->socket_path = (char *)vm->socket_path;
	v->vcpu_count = (int)vm->vcpus;
	v->memory_mb = (int)vm->memory_mb;
	v->owner_worker = (char *)vm->owner_worker;
	v->metadata = (char *)vm->metadata;
	v->tenant = (char *)vm->tenant;
}

int aeth__rec_vm_insert(aeth__rec *r, const aeth__vm_row *vm)
{
	aeth_store_vm v = AETH_STORE_VM_INIT;

	vm_record(&v, vm);
	return aeth_store_vm_insert(r->store, &v);
}

int aeth__rec_vm_paths(aeth__rec *r, const aeth__vm_row *vm)
{
	aeth_store_vm v = AETH_STORE_VM_INIT;

	vm_record(&v, vm);
	return aeth_store_vm_update(r->store, &v);
}

int aeth__rec_vm_status(aeth__rec *r, const char *id, const char *status,
			const char *error)
{
	return aeth_store_vm_set_status(r->store, id, status, error);
}

int aeth__rec_vm_lookup(aeth__rec *r, const char *id, char status[32],
			char owner[256])
{
	return aeth__rec_vm_lookup_tenant(r, id, status, owner, NULL);
}

int aeth__rec_task_tenant(aeth__rec *r, const char *id, char tenant[65])
{
	aeth_store_task *t = NULL;
	int rc = aeth_store_task_get(&t, r->store, id);

	if (rc == 0)
		snprintf(tenant, 65, "%s", t->tenant ? t->tenant : "default");
	aeth_store_task_free(t);
	return rc;
}

int aeth__rec_vm_lookup_tenant(aeth__rec *r, const char *id, char status[32],
			       char owner[256], char tenant[65])
{
	aeth_store_vm *v = NULL;
	int rc = aeth_store_vm_get(&v, r->store, id);

	if (rc == AETH_ENOTFOUND)
		rc = aeth__error_set(AETH_ENOTFOUND, "VM %s does not exist", id);
	if (rc == 0) {
		snprintf(status, 32, "%s", v->status ? v->status : "");
		snprintf(owner, 256, "%s", v->owner_worker ? v->owner_worker : "");
		if (tenant)
			snprintf(tenant, 65, "%s", v->tenant ? v->tenant : "default");
	}
	aeth_store_vm_free(v);
	return rc;
}

/* Append the ids of `owner`'s VMs in `status` to ids[*n...]. */
static int owned_in(aeth__rec *r, const char *owner, const char *status,
		    char ***ids, size_t *n)
{
	aeth_store_filter f = AETH_STORE_FILTER_INIT;
	aeth_store_vm **list = NULL;
	size_t count = 0;
	char **grown;
	int rc;

	f.worker = owner;
	f.status = status;
	f.limit = 10000;
	if ((rc = aeth_store_vm_list(&list, &count, r->store, &f)) != 0)
		return rc;
	if (!(grown = realloc(*ids, (*n + count + 1) * sizeof(char *)))) {
		aeth_store_vm_list_free(list);
		return aeth__error_oom();
	}
	*ids = grown;
	for (size_t i = 0; i < count; i++) {
		if (!(grown[*n] = strdup(list[i]->id))) {
			rc = aeth__error_oom();
			break;
		}
		grown[++*n] = NULL;
	}
	grown[*n] = NULL;
	aeth_store_vm_list_free(list);
	return rc;
}

int aeth__rec_vms_owned(aeth__rec *r, const char *owner, char ***ids_out)
{
	char **ids = calloc(1, sizeof(char *));
	size_t n = 0;
	int rc;

	*ids_out = NULL;
	if (!ids)
		return aeth__error_oom();
	if ((rc = owned_in(r, owner, "creating", &ids, &n)) != 0 ||
	    (rc = owned_in(r, owner, "running", &ids, &n)) != 0) {
		aeth_strarray_free(ids);
		return rc;
	}
	*ids_out = ids;
	return 0;
}

int aeth__rec_vm_take(aeth__rec *r, const char *id, const char *from,
		      const char *to)
{
	return aeth__store_vm_take(r->store, id, from, to);
}

int aeth__rec_vm_fail_owned(aeth__rec *r, const char *id, const char *owner,
			    const char *error)
{
	return aeth__store_vm_fail_owned(r->store, id, owner, error);
}

/* metadata.host and metadata.state_dir equal these (any state dir when
 * state_dir is NULL)? */
static bool on_host(const char *meta, const char *host, const char *state_dir)
{
	cJSON *m = meta ? cJSON_Parse(meta) : NULL;
	const char *h = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(m, "host"));
	const char *d = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(m,
									   "state_dir"));
	bool yes = h && !strcmp(h, host) &&
		   (!state_dir || (d && !strcmp(d, state_dir)));

	cJSON_Delete(m);
	return yes;
}

int aeth__rec_vms_on_host(aeth__rec *r, const char *me, const char *host,
			  const char *state_dir, char ***ids_out, char ***owners_out)
{
	static const char *const live[] = {"creating", "running"};
	char **ids = calloc(1, sizeof(char *)), **owners = calloc(1, sizeof(char *));
	size_t n = 0;
	int rc = 0;

	*ids_out = *owners_out = NULL;
	for (size_t k = 0; k < 2 && rc == 0 && ids && owners; k++) {
		aeth_store_filter f = AETH_STORE_FILTER_INIT;
		aeth_store_vm **list = NULL;
		size_t count = 0;

		f.status = live[k];
		f.limit = 10000;
		if ((rc = aeth_store_vm_list(&list, &count, r->store, &f)) != 0)
			break;
		for (size_t i = 0; i < count && rc == 0; i++) {
			aeth_store_vm *v = list[i];
			char **gi, **go;

			if (!v->owner_worker || !strcmp(v->owner_worker, me) ||
			    !on_host(v->metadata, host, state_dir))
				continue;
			gi = realloc(ids, (n + 2) * sizeof(char *));
			if (gi) {
				ids = gi;
				ids[n] = ids[n + 1] = NULL;
			}
			go = gi ? realloc(owners, (n + 2) * sizeof(char *)) : NULL;
			if (go) {
				owners = go;
				owners[n] = owners[n + 1] = NULL;
			}
			if (!gi || !go || !(ids[n] = strdup(v->id)) ||
			    !(owners[n] = strdup(v->owner_worker))) {
				rc = aeth__error_oom();
				break;
			}
			n++;
			ids[n] = owners[n] = NULL;
		}
		aeth_store_vm_list_free(list);
	}
	if (!ids || !owners)
		rc = aeth__error_oom();
	if (rc != 0) {
		aeth_strarray_free(ids);
		aeth_strarray_free(owners);
		return rc;
	}
	*ids_out = ids;
	*owners_out = owners;
	return 0;
}

/* ---- Executions --------------------------------------------------------- */

int aeth__rec_exec_insert(aeth__rec *r, const aeth__exec_row *e)
{
	aeth_store_execution x = AETH_STORE_EXECUTION_INIT;
	int64_t dur = e->duration_ms;

	set_id(x.vm_id, e->vm_id);
	set_id(x.task_id, e->task_id);
	x.command = (char *)e->command;
	x.args = (char *)e->args_json;
	x.env = (char *)e->env_json;
	x.has_exit_code = e->error == NULL;
	x.exit_code = e->exit_code;
	x.stdout_data = (char *)e->out;
	x.stderr_data = (char *)e->err;
	x.error = (char *)e->error;
	x.started_at_ms = e->started_ms;
	x.completed_at_ms = e->completed_ms;
	x.duration_ms = dur < 0 ? 0 : dur > INT32_MAX ? INT32_MAX : (int)dur;
	x.tenant = (char *)e->tenant;
	return aeth__store_execution_insert_detail(r->store, &x, e);
}

int aeth__rec_exec_by_key(aeth__rec *r, const char *vm_id, const char *key,
			  char **result_out)
{
	return aeth__store_execution_by_key(r->store, vm_id, key, result_out);
}

/* ---- Batches (several short tasks of one slot) -------------------------- */

/*
 * The two task-row writes of aeth__rec_task_running / _finish for several
 * tasks in one statement each: a worker that takes many short tasks at
 * once pays one PostgreSQL round trip per batch instead of two per task.
 * These are the only statements of the worker outside lib/store: calls of
 * the SQL functions aeth_task_rows_running / aeth_task_rows_completed
 * (migration 0005: the same UPDATEs as aeth_store_task_start /
 * aeth_store_task_finish, applied to the rows given as parallel arrays,
 * with the plan pinned to primary-key probes), run through the store's own
 * executor (error mapping, reconnect).
 */
/* Mark in done[] the ids[] the statement's RETURNING id rows name. The
 * ids of a batch are distinct (one dequeue): n rows back means all. */
static void mark_returned(PGresult *res, const char *const *ids, size_t n,
			  bool *done)
{
	if ((size_t)PQntuples(res) == n) {
		for (size_t i = 0; i < n; i++)
			done[i] = true;
		return;
	}
	for (int row = 0; row < PQntuples(res); row++) {
		const char *id = PQgetvalue(res, row, 0);

		for (size_t i = 0; i < n; i++)
			if (!done[i] && !strcasecmp(ids[i], id)) {
				done[i] = true;
				break;
			}
	}
}

/* One element of a PostgreSQL array literal ("{a,b}") being built in `b`:
 * `s` double-quoted with its quotes and backslashes escaped, or NULL.
 * Non-zero when out of memory (the literal is then incomplete). */
static int arr_add(aeth__buf *b, const char *s)
{
	int rc = aeth__buf_append(b, b->len ? "," : "{", 1);

	if (!s)
		return rc | aeth__buf_append(b, "NULL", 4);
	rc |= aeth__buf_append(b, "\"", 1);
	while (*s) {
		size_t k = strcspn(s, "\"\\");

		rc |= aeth__buf_append(b, s, k);
		s += k;
		if (*s) {
			const char esc[2] = {'\\', *s++};

			rc |= aeth__buf_append(b, esc, 2);
		}
	}
	return rc | aeth__buf_append(b, "\"", 1);
}

/* A number element, or NULL when !have. */
static int arr_num(aeth__buf *b, bool have, long long v)
{
	char num[24];

	snprintf(num, sizeof(num), "%lld", v);
	return arr_add(b, have ? num : NULL);
}

/* Run `sql` with the array literals arrs[0..narr-1] (built with arr_add;
 * `bad` if that ran out of memory) as $1.. and `worker_id` after them;
 * frees the arrays. */
static int batch_exec(aeth__rec *r, const char *what, const char *sql,
		      aeth__buf *arrs, int narr, int bad, const char *worker_id,
		      const char *const *ids, size_t n, bool *done)
{
	const char *params[5];
	PGresult *res = NULL;
	int rc;

	for (int i = 0; i < narr; i++) {
		bad |= aeth__buf_append(&arrs[i], arrs[i].len ? "}" : "{}",
					arrs[i].len ? 1 : 2);
		params[i] = arrs[i].data;
	}
	params[narr] = worker_id;
	rc = bad ? aeth__error_oom() :
		aeth__store_exec(r->store, what, sql, narr + 1, params, &res);
	for (int i = 0; i < narr; i++)
		aeth__buf_free(&arrs[i]);
	if (rc == 0)
		mark_returned(res, ids, n, done);
	PQclear(res);
	return rc;
}

int aeth__rec_tasks_running(aeth__rec *r, const char *const *ids,
			    const unsigned int *retry_counts, size_t n,
			    const char *worker_id, bool *recorded)
{
	aeth__buf a[2] = {AETH__BUF_INIT, AETH__BUF_INIT};
	int rc;

	for (size_t i = 0; i < n; i++)
		recorded[i] = false;
	if ((rc = aeth__store_check_text("task worker_id", worker_id, 255, false)))
		return rc;
	for (size_t i = 0; i < n; i++)
		rc |= arr_add(&a[0], ids[i]) | arr_num(&a[1], true, retry_counts[i]);
	return batch_exec(r, "recording tasks running",
		"SELECT aeth_task_rows_running($1::uuid[], $2::int[], $3)",
		a, 2, rc, worker_id, ids, n, recorded);
}

int aeth__rec_tasks_completed(aeth__rec *r, const char *const *ids,
			      const char *const *results,
			      const int64_t *started_ms,
			      const unsigned int *retry_counts,
			      const char *worker_id, size_t n, bool *recorded)
{
	aeth__buf a[4] = {AETH__BUF_INIT, AETH__BUF_INIT, AETH__BUF_INIT, AETH__BUF_INIT};
	int rc = 0;

	for (size_t i = 0; i < n; i++)
		recorded[i] = false;
	/* results are JSON (aeth_task_set_result parsed them; the ::jsonb
	 * cast checks again): only their size here. A bad one fails the
	 * statement, and the one-row fallback names it. */
	for (size_t i = 0; rc == 0 && i < n; i++)
		rc = aeth__store_check_text("task result", results[i], 0, false);
	if (rc == 0)
		rc = aeth__store_check_text("task worker_id", worker_id, 255, false);
	if (rc != 0)
		return rc;
	for (size_t i = 0; i < n; i++) {
		bool deferred = started_ms && started_ms[i] > 0;

		/* the result as JSON text: "null" stays JSON null (r::jsonb),
		 * as aeth_store_task_finish writes it; NULL keeps the row's.
		 * A row without a start keeps what its running write set. */
		rc |= arr_add(&a[0], ids[i]) | arr_add(&a[1], results[i]) |
		      arr_num(&a[2], deferred, deferred ? started_ms[i] : 0) |
		      arr_num(&a[3], deferred, deferred ? retry_counts[i] : 0);
	}
	return batch_exec(r, "recording tasks completed",
		"SELECT aeth_task_rows_completed($1::uuid[], $2::text[], "
		"$3::bigint[], $4::int[], $5)", a, 4, rc, worker_id, ids, n, recorded);
}
