/*
 * lib/client/client.c - submit tasks (record the tasks row, route, enqueue)
 * and wait for their results through the queue.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "aetherium/queue.h"
#include "aetherium/task.h"
#include "aetherium/unstable/client.h"
#include "client/client_internal.h"
#include "client/rows.h"
#include "queue/queue_output.h"
#include "internal.h"
#include "store/store_internal.h"
#include "task/task.h"

struct aeth_client {
	aeth_queue *q;
	aeth__rec *rec;
};

static const aeth_client_options client_defaults = AETH_CLIENT_OPTIONS_INIT;
static const size_t client_sizes[] = {sizeof(aeth_client_options)};
static const aeth__versioned client_options_v = {
	"aeth_client_options", "AETH_CLIENT_OPTIONS_INIT",
	AETH_CLIENT_OPTIONS_VERSION, client_sizes, &client_defaults,
};

static const aeth_submit_options submit_defaults = AETH_SUBMIT_OPTIONS_INIT;
static const size_t submit_sizes[] = {
	AETH__END(aeth_submit_options, priority), /* 1 */
	sizeof(aeth_submit_options),              /* 2 */
};
static const aeth__versioned submit_options_v = {
	"aeth_submit_options", "AETH_SUBMIT_OPTIONS_INIT",
	AETH_SUBMIT_OPTIONS_VERSION, submit_sizes, &submit_defaults,
};

static const aeth_create_options create_defaults = AETH_CREATE_OPTIONS_INIT;
static const size_t create_sizes[] = {
	AETH__END(aeth_create_options, rootfs), /* 1 */
	sizeof(aeth_create_options),            /* 2 */
};
static const aeth__versioned create_options_v = {
	"aeth_create_options", "AETH_CREATE_OPTIONS_INIT",
	AETH_CREATE_OPTIONS_VERSION, create_sizes, &create_defaults,
};

static const aeth_execute_options execute_defaults = AETH_EXECUTE_OPTIONS_INIT;
static const size_t execute_sizes[] = {sizeof(aeth_execute_options)};
static const aeth__versioned execute_options_v = {
	"aeth_execute_options", "AETH_EXECUTE_OPTIONS_INIT",
	AETH_EXECUTE_OPTIONS_VERSION, execute_sizes, &execute_defaults,
};

int aeth_execute_options_init(aeth_execute_options *opts, unsigned int version)
{
	return aeth__versioned_init(&execute_options_v, opts, version);
}

int aeth_client_options_init(aeth_client_options *opts, unsigned int version)
{
	return aeth__versioned_init(&client_options_v, opts, version);
}

int aeth_submit_options_init(aeth_submit_options *opts, unsigned int version)
{
	return aeth__versioned_init(&submit_options_v, opts, version);
}

int aeth_create_options_init(aeth_create_options *opts, unsigned int version)
{
	return aeth__versioned_init(&create_options_v, opts, version);
}

int aeth_client_open(aeth_client **out, const aeth_client_options *opts)
{
	aeth_queue_options qo = AETH_QUEUE_OPTIONS_INIT;
	aeth_client_options o;
	const char *db;
	aeth_client *c;
	int rc;

	if (!out)
		return aeth__error_set(AETH_EINVALID, "aeth_client_open: out is NULL");
	*out = NULL;
	if ((rc = aeth__versioned_copy(&client_options_v, &o, opts)) != 0)
		return rc;
	opts = &o;
	if (!(c = calloc(1, sizeof(*c))))
		return aeth__error_oom();
	qo.url = opts->redis_url;
	qo.ns = opts->redis_ns;
	/* a vm:file_put carries its file: lib/task bounds each type's
	 * payload (4 MiB, a file's 8 MiB in base64), not the queue's 1 MiB */
	qo.max_payload = AETH__FILE_PAYLOAD_MAX;
	db = opts->database_url ? opts->database_url : getenv("AETH_DATABASE_URL");
	if ((rc = aeth_queue_open(&c->q, &qo)) != 0 ||
	    (rc = aeth__rec_open(&c->rec, db)) != 0) {
		aeth_client_free(c);
		return rc;
	}
	*out = c;
	return 0;
}

/* A config key's text, NULL when unset or empty (borrowed from cfg). */
static const char *cfg_str(const aeth_config *cfg, const char *key)
{
	const char *v = NULL;

	if (aeth_config_get_string(&v, cfg, key) != 0 || !v || !*v)
		return NULL;
	return v;
}

int aeth_client_open_config(aeth_client **out, const aeth_config *cfg)
{
	aeth_client_options o = AETH_CLIENT_OPTIONS_INIT;
	aeth_config *own = NULL;
	int rc;

	if (!cfg) {
		if ((rc = aeth_config_load(&own, NULL)) != 0)
			return rc;
		cfg = own;
	}
	o.database_url = cfg_str(cfg, "database.url");
	o.redis_url = cfg_str(cfg, "redis.url");
	rc = aeth_client_open(out, &o);
	aeth_config_free(own);
	return rc;
}

aeth_store *aeth__client_store(aeth_client *c)
{
	return aeth__rec_store(c->rec);
}

aeth_queue *aeth__client_queue(aeth_client *c)
{
	return c->q;
}

void aeth_client_free(aeth_client *c)
{
	if (!c)
		return;
	aeth_queue_free(c->q);
	aeth__rec_free(c->rec);
	free(c);
}

/* Where a task for `vm_id` must go; fails (recorded by the caller) when
 * the VM does not exist, was deleted or is not running (a vm:delete also
 * goes to the owner of a failed or stopped VM: it removes what is left). */
static int route(aeth_client *c, const char *type, const char *vm_id,
		 const char *tenant, char **queue)
{
	char status[32], owner[256], its[65];
	int rc = aeth__rec_vm_lookup_tenant(c->rec, vm_id, status, owner, its);

	/* another tenant's VM: the same words as for an id that is not there */
	if (rc == 0 && tenant && strcmp(tenant, its) != 0)
		rc = AETH_ENOTFOUND;
	if (rc == AETH_ENOTFOUND)
		return aeth__error_set(AETH_ENOTFOUND, "VM %s does not exist "
				       "(aeth-submit -list vms shows the VMs)", vm_id);
	if (rc != 0)
		return rc;
	if (!strcmp(status, "deleted"))
		return aeth__error_set(AETH_ESTATE, "VM %s was deleted", vm_id);
	if (strcmp(status, "running") != 0 &&
	    !(!strcmp(type, AETH__TASK_DELETE) &&
	      (!strcmp(status, "failed") || !strcmp(status, "stopped"))))
		return aeth__error_set(AETH_ESTATE, "VM %s is %s, not running",
				       vm_id, status);
	if (!owner[0])
		return aeth__error_set(AETH_ESTATE, "VM %s has no owning worker",
				       vm_id);
	if ((rc = aeth__owner_check(c->q, vm_id, owner)) != 0)
		return rc;
	*queue = aeth__sprintf("worker:%s", owner);
	return *queue ? 0 : AETH_ENOMEM;
}

/* Record a task that cannot run as failed, keeping the error message.
 * row->payload_is_json says whether the payload parsed as JSON (one that
 * did not is kept as a JSON string). */
static int reject(aeth_client *c, aeth__task_row *row, int rc)
{
	char *why = strdup(aeth_error_last());
	char *payload = NULL;

	if (!row->payload_is_json) {
		cJSON *s = cJSON_CreateString(row->payload ? row->payload : "");

		payload = s ? cJSON_PrintUnformatted(s) : NULL;
		cJSON_Delete(s);
		row->payload = payload ? payload : "null";
		row->payload_is_json = true;
	}
	row->status = "failed";
	row->error = why ? why : "rejected";
	row->vm_id = NULL;
	if (aeth__rec_task_insert(c->rec, row) != 0)
		aeth__warn("cannot record rejected task %s: %s", row->id,
			   aeth_error_last());
	aeth__error_set(rc, "task %s failed: %s", row->id, why ? why : "rejected");
	free(why);
	free(payload);
	return rc;
}

/*
 * Submit a task whose payload is `payload` (JSON text), or the tree
 * `built` printed as `payload` (the helpers below): either way the payload
 * is parsed at most once here, and what the checks found (is it JSON,
 * which VM it targets) travels on as values.
 */
static int submit(aeth_client *c, const char *type, const char *payload,
		  const cJSON *built, const aeth_submit_options *opts,
		  char task_id_out[37], char **queue_out)
{
	aeth_queue_enqueue_options eo = AETH_QUEUE_ENQUEUE_OPTIONS_INIT;
	aeth__task_row row = {0};
	aeth_submit_options so;
	char id[37], *queue = NULL, *vm_id = NULL;
	int rc;

	if (!c || !type)
		return aeth__error_set(AETH_EINVALID, "aeth_client_submit: NULL argument");
	if ((rc = aeth__versioned_copy(&submit_options_v, &so, opts)) != 0 ||
	    (rc = aeth__task_type_check(type)) != 0)
		return rc;
	opts = &so;
	aeth__uuid_new(id);
	if (task_id_out)
		memcpy(task_id_out, id, 37);
	if (queue_out)
		*queue_out = NULL;
	row.id = id;
	row.type = type;
	row.payload = payload ? payload : "{}";
	row.priority = opts->priority;
	row.max_retries = opts->max_retries;
	row.timeout_ms = opts->timeout_ms;
	row.queue = opts->queue ? opts->queue : "default";
	row.tenant = opts->tenant;
	if (built) {
		row.payload_is_json = true;
		rc = aeth__payload_check_tree(&vm_id, type, built);
	} else {
		rc = aeth__payload_check(&vm_id, &row.payload_is_json, type,
					 row.payload, strlen(row.payload));
	}
	if (rc != 0)
		return reject(c, &row, rc);
	if (aeth__task_type_targets_vm(type)) {
		if ((rc = route(c, type, vm_id, opts->tenant, &queue)) != 0) {
			free(vm_id);
			return reject(c, &row, rc);
		}
		row.queue = queue;
		row.vm_id = vm_id;
	} else if (!aeth_queue_name_valid(row.queue)) {
		return aeth__error_set(AETH_EINVALID, "queue name \"%s\" is not valid",
				       row.queue);
	} else if (!aeth__task_type_builtin(type) &&
		   (rc = aeth__type_check(c->q, type, row.queue)) != 0) {
		return reject(c, &row, rc);
	}
	row.status = "pending";
	rc = aeth__rec_task_insert(c->rec, &row);
	if (rc == 0) {
		eo.queue = row.queue;
		eo.id = id;
		eo.max_retries = opts->max_retries;
		eo.timeout_ms = opts->timeout_ms;
		rc = aeth_queue_enqueue(NULL, c->q, type, row.payload, &eo);
		/* our own id, there already: a re-sent enqueue whose first reply
		 * was lost, or the ledger reconciler put the task back first */
		if (rc == AETH_EEXISTS)
			rc = 0;
		if (rc != 0)
			aeth__rec_task_finish(c->rec, id, "failed", NULL,
					      aeth_error_last());
	}
	if (rc == 0 && queue_out)
		*queue_out = strdup(row.queue);
	free(queue);
	free(vm_id);
	return rc;
}

int aeth_client_submit(char task_id_out[37], char **queue_out, aeth_client *c,
		       const char *type, const char *payload,
		       const aeth_submit_options *opts)
{
	return submit(c, type, payload, NULL, opts, task_id_out, queue_out);
}

/* Submit the payload tree `o` (freed here; NULL: out of memory). */
static int submit_built(aeth_client *c, const char *type, cJSON *o,
			const aeth_submit_options *opts, char id[37])
{
	char *text = o ? cJSON_PrintUnformatted(o) : NULL;
	int rc = text ? submit(c, type, text, o, opts, id, NULL) : aeth__error_oom();

	cJSON_Delete(o);
	free(text);
	return rc;
}

/* "rootfs": true or false. */
static int add_rootfs(cJSON *o, const char *rootfs)
{
	int on;

	if (!strcmp(rootfs, "default") || !strcmp(rootfs, "true"))
		on = 1;
	else if (!strcmp(rootfs, "none") || !strcmp(rootfs, "false"))
		on = 0;
	else
		return aeth__error_set(AETH_EINVALID, "rootfs '%s': give default "
				       "(the image's root disk) or none; a VM boots "
				       "only images of the worker's catalogue, so "
				       "choose another disk with an image name "
				       "(-image NAME)", rootfs);
	return cJSON_AddBoolToObject(o, "rootfs", on) ? 0 : aeth__error_oom();
}

int aeth_client_submit_create_ex(char id[37], aeth_client *c,
				 const aeth_create_options *vm,
				 const aeth_submit_options *opts)
{
	aeth_create_options co;
	cJSON *o;
	int rc;

	if (!vm)
		return aeth__error_set(AETH_EINVALID, "vm:create needs "
				       "aeth_create_options with a name");
	if ((rc = aeth__versioned_copy(&create_options_v, &co, vm)) != 0)
		return rc;
	vm = &co;
	if (!vm->name)
		return aeth__error_set(AETH_EINVALID, "vm:create needs a name "
				       "(aeth_create_options.name)");
	if (!(o = cJSON_CreateObject()))
		return aeth__error_oom();
	/* absent fields leave the worker's defaults */
	cJSON_AddStringToObject(o, "name", vm->name);
	if (vm->vcpus)
		cJSON_AddNumberToObject(o, "vcpus", vm->vcpus);
	if (vm->memory_mb)
		cJSON_AddNumberToObject(o, "memory_mb", vm->memory_mb);
	if (vm->network)
		cJSON_AddStringToObject(o, "network", vm->network);
	if (vm->tap)
		cJSON_AddStringToObject(o, "tap", vm->tap);
	if (vm->rootfs)
		rc = add_rootfs(o, vm->rootfs);
	if (vm->image)
		cJSON_AddStringToObject(o, "image", vm->image);
	if (vm->ttl_s)
		cJSON_AddNumberToObject(o, "ttl", vm->ttl_s);
	if (rc != 0) {
		cJSON_Delete(o);
		return rc;
	}
	return submit_built(c, AETH__TASK_CREATE, o, opts, id);
}

int aeth_client_submit_execute(char id[37], aeth_client *c, const char *vm_id,
			       const char *command, const char *const *args,
			       const aeth_submit_options *opts)
{
	return submit_built(c, AETH__TASK_EXECUTE,
			    aeth__execute_payload_tree(vm_id ? vm_id : "",
						       command ? command : "", args),
			    opts, id);
}

/* The optional vm:execute fields of `x` into payload `o`. */
static int add_execute_fields(cJSON *o, const aeth_execute_options *x)
{
	if (x->env) {
		cJSON *env = cJSON_AddObjectToObject(o, "env");

		for (size_t i = 0; env && x->env[i]; i++) {
			const char *eq = strchr(x->env[i], '=');
			char *k;

			if (!eq || eq == x->env[i])
				return aeth__error_set(AETH_EINVALID, "env entry "
						       "\"%.80s\" is not KEY=VALUE",
						       x->env[i]);
			if (!(k = strndup(x->env[i], (size_t)(eq - x->env[i]))))
				return aeth__error_oom();
			cJSON_DeleteItemFromObjectCaseSensitive(env, k);
			if (!cJSON_AddStringToObject(env, k, eq + 1)) {
				free(k);
				return aeth__error_oom();
			}
			free(k);
		}
		if (!env)
			return aeth__error_oom();
	}
	if ((x->cwd && !cJSON_AddStringToObject(o, "cwd", x->cwd)) ||
	    (x->timeout_ms && !cJSON_AddNumberToObject(o, "timeout_ms", x->timeout_ms)) ||
	    (x->stdin_data && !cJSON_AddStringToObject(o, "stdin", x->stdin_data)) ||
	    (x->idempotency_key &&
	     !cJSON_AddStringToObject(o, "idempotency_key", x->idempotency_key)))
		return aeth__error_oom();
	return 0;
}

int aeth_client_submit_execute_ex(char id[37], aeth_client *c, const char *vm_id,
				  const char *command, const char *const *args,
				  const aeth_execute_options *x,
				  const aeth_submit_options *opts)
{
	aeth_execute_options xo;
	cJSON *o;
	int rc;

	if (x && (rc = aeth__versioned_copy(&execute_options_v, &xo, x)) != 0)
		return rc;
	o = aeth__execute_payload_tree(vm_id ? vm_id : "", command ? command : "",
				       args);
	if (o && x && (rc = add_execute_fields(o, &xo)) != 0) {
		cJSON_Delete(o);
		return rc;
	}
	return submit_built(c, AETH__TASK_EXECUTE, o, opts, id);
}

int aeth_client_submit_execute_live(char id[37], aeth_client *c,
				    const char *vm_id, const char *command,
				    const char *const *args,
				    const aeth_submit_options *opts)
{
	cJSON *o = aeth__execute_payload_tree(vm_id ? vm_id : "",
					      command ? command : "", args);

	if (o && !cJSON_AddBoolToObject(o, "live_output", true)) {
		cJSON_Delete(o);
		o = NULL;
	}
	return submit_built(c, AETH__TASK_EXECUTE, o, opts, id);
}

typedef struct {
	aeth_output_cb cb;
	void *userdata;
	bool ended;
} follow_state;

static void follow_entry(char kind, const char *data, size_t len, void *ud)
{
	follow_state *f = ud;

	if (kind == 'x')
		f->ended = true;
	else if (f->cb)
		f->cb(kind == 'e' ? 2 : 1, data, len, f->userdata);
}

int aeth_client_follow(aeth_client *c, const char *task_id,
		       unsigned int timeout_ms, aeth_output_cb cb, void *userdata)
{
	follow_state f = {cb, userdata, false};
	int64_t end = aeth__now_ms() + timeout_ms;
	char last[48] = "0";

	if (!c || !aeth__uuid_valid(task_id))
		return aeth__error_set(AETH_EINVALID, "aeth_client_follow: give a "
				       "client and a task id");
	for (;;) {
		unsigned int slice = 1000;
		char *json = NULL;
		bool final = false;
		int n;

		if (timeout_ms && aeth__now_ms() >= end)
			return aeth__error_set(AETH_ETIMEOUT, "task %s did not end "
					       "within %u ms", task_id, timeout_ms);
		n = aeth__queue_output_read(c->q, task_id, last, slice,
					    follow_entry, &f);
		if (f.ended)
			return 0;
		if (n < 0)
			return n;
		if (n > 0)
			continue;
		/* nothing came: a task that ended without live output (it failed
		 * before its command ran, or was submitted without it) */
		if (aeth__client_task_json(&json, &final, c->rec, task_id) == 0 &&
		    final) {
			free(json);
			n = aeth__queue_output_read(c->q, task_id, last, 0,
						    follow_entry, &f);
			return n < 0 ? n : 0;
		}
		free(json);
		aeth_error_clear();
	}
}

int aeth_client_submit_delete(char id[37], aeth_client *c, const char *vm_id,
			      const aeth_submit_options *opts)
{
	return submit_built(c, AETH__TASK_DELETE,
			    aeth__delete_payload_tree(vm_id ? vm_id : ""), opts, id);
}

int aeth_client_wait(char **json_out, aeth_client *c, const char *task_id,
		     unsigned int timeout_ms, aeth_wait_progress_cb progress,
		     void *userdata)
{
	int64_t start = aeth__now_ms();
	aeth_queue_task *t = NULL;
	bool forwarded, final = true;
	int rc;

	*json_out = NULL;
again:
	t = NULL;
	for (;;) {
		unsigned int waited = (unsigned int)(aeth__now_ms() - start);
		unsigned int slice = 5000;

		if (timeout_ms && waited >= timeout_ms)
			return aeth__error_set(AETH_ETIMEOUT, "task %s did not finish "
					       "within %u ms of waiting; the task goes "
					       "on (aeth-submit -status %s shows it "
					       "later; -cancel %s stops it if it has "
					       "not started)", task_id, timeout_ms,
					       task_id, task_id);
		if (timeout_ms && timeout_ms - waited < slice)
			slice = timeout_ms - waited;
		rc = aeth_queue_wait_result(&t, c->q, NULL, task_id, slice);
		if (rc == 0)
			break;
		if (rc == AETH_ENOTFOUND)
			break; /* rejected at submit or expired: the row says */
		if (rc != AETH_ETIMEOUT)
			return rc;
		if (progress) {
			aeth_queue_task *now = NULL;
			const char *state = "unknown";

			if (aeth_queue_get(&now, c->q, NULL, task_id) == 0)
				state = aeth_queue_state_name(now->state);
			progress(task_id, state, (unsigned int)(aeth__now_ms() - start),
				 userdata);
			aeth_queue_task_free(now);
		}
	}
	/* a copy acked by a worker that forwarded it to the VM's owner */
	forwarded = t && t->result && strstr(t->result, "\"forwarded_to\"");
	aeth_queue_task_free(t);
	rc = aeth__client_task_json(json_out, &final, c->rec, task_id);
	if (rc == 0 && forwarded && !final &&
	    (!timeout_ms || aeth__now_ms() - start < timeout_ms)) {
		/* forwarded to the VM owner's queue (forward.c): wait there */
		free(*json_out);
		*json_out = NULL;
		goto again;
	}
	return rc;
}

int aeth_client_cancel(aeth_client *c, const char *task_id)
{
	char *json = NULL;
	bool final = false;
	int rc;

	if (!aeth__uuid_valid(task_id))
		return aeth__error_set(AETH_EINVALID, "\"%s\" is not a task id (a "
				       "UUID)", task_id ? task_id : "");
	rc = aeth_queue_cancel(c->q, NULL, task_id);
	if (rc == AETH_ESTATE)
		return aeth__error_set(rc, "task %s is running on a worker and "
				       "cannot be cancelled: it goes on until it "
				       "ends or passes its timeout_ms", task_id);
	if (rc == 0)
		return aeth__rec_task_finish(c->rec, task_id, "failed", NULL,
					     "cancelled before it ran");
	if (rc != AETH_ENOTFOUND)
		return rc;
	if (aeth__client_task_json(&json, &final, c->rec, task_id) != 0)
		return aeth__error_set(AETH_ENOTFOUND, "no task %s", task_id);
	free(json);
	return final ? aeth__error_set(AETH_ESTATE, "task %s has ended already",
				       task_id)
		     : aeth__error_set(AETH_ENOTFOUND, "task %s is in no queue "
				       "(the ledger reconciler puts it back)",
				       task_id);
}

int aeth_client_task(char **json_out, aeth_client *c, const char *task_id)
{
	*json_out = NULL;
	if (!aeth__uuid_valid(task_id))
		return aeth__error_set(AETH_EINVALID, "\"%s\" is not a task id (a "
				       "UUID)", task_id ? task_id : "");
	return aeth__client_task_json(json_out, NULL, c->rec, task_id);
}

int aeth_client_list(char **json_out, aeth_client *c, const char *what,
		     unsigned int limit)
{
	*json_out = NULL;
	if (what && !strcmp(what, "vms"))
		return aeth__client_vms_json(c->rec, json_out);
	if (what && !strcmp(what, "tasks"))
		return aeth__client_tasks_json(c->rec, limit, json_out);
	if (what && !strcmp(what, "workers"))
		return aeth_queue_worker_list(json_out, c->q);
	return aeth__error_set(AETH_EINVALID, "cannot list \"%s\": use vms, tasks "
			       "or workers", what ? what : "");
}
