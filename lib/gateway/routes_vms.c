/*
 * lib/gateway/routes_vms.c - /v1/vms: create (within the tenant's
 * quota), get, list, delete, and exec in a VM (docs/gateway.md). Every
 * read is scoped to the caller's tenant: another tenant's VM is "not
 * found", exactly as an id that does not exist.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/gateway_internal.h"
#include "internal.h"
#include "metrics/metrics.h"
#include "task/task.h"

#define WAIT_GRACE_MS 120000u /* beyond a command's timeout: boot, queue */
#define QUOTA_WAIT_MS 5000u   /* for the tenant's quota lock: others' creates */

void aeth__gw_whoami(aeth__gw_ctx *ctx, const char *id)
{
	cJSON *o = cJSON_CreateObject();

	(void)id;
	cJSON_AddStringToObject(o, "tenant", ctx->who.tenant);
	cJSON_AddStringToObject(o, "key_prefix", ctx->who.key_prefix);
	cJSON_AddBoolToObject(o, "operator", ctx->who.operator_);
	aeth__gw_json(ctx, 200, o);
}

/* The caller's VM `id` into *out, or answered 404 and nonzero. */
int aeth__gw_own_vm(aeth__gw_ctx *ctx, const char *id, aeth_store_vm **out)
{
	int rc;

	*out = NULL;
	if (!aeth__uuid_valid(id))
		rc = aeth__error_set(AETH_ENOTFOUND, "vm %s not found", id);
	else
		rc = aeth__store_vm_get_in(out, aeth__gw_store(ctx->conn), id,
					   aeth__gw_scope(ctx));
	if (rc != 0)
		aeth__gw_fail(ctx, rc);
	return rc;
}

void aeth__gw_vm_get(aeth__gw_ctx *ctx, const char *id)
{
	aeth_store_vm *vm = NULL;

	if (aeth__gw_own_vm(ctx, id, &vm) == 0)
		aeth__gw_json(ctx, 200, aeth__gw_vm_object(vm));
	aeth_store_vm_free(vm);
}

void aeth__gw_vms_list(aeth__gw_ctx *ctx, const char *id)
{
	aeth_store_filter f = AETH_STORE_FILTER_INIT;
	aeth_store_vm **list = NULL;
	long n = 100;
	cJSON *a;
	int rc;

	(void)id;
	if (aeth__gw_query_int(ctx, "limit", 1, 10000, &n) != 0)
		return;
	f.tenant = aeth__gw_scope(ctx);
	f.status = aeth__http_query_arg(ctx->req, "status");
	f.limit = (unsigned int)n;
	rc = aeth_store_vm_list(&list, NULL, aeth__gw_store(ctx->conn), &f);
	if (rc != 0) {
		aeth__gw_fail(ctx, rc);
		return;
	}
	a = cJSON_CreateArray();
	for (size_t i = 0; a && list[i]; i++)
		cJSON_AddItemToArray(a, aeth__gw_vm_object(list[i]));
	aeth_store_vm_list_free(list);
	aeth__gw_json(ctx, 200, a);
}

/* An optional member: absent/null is fine, another type refused. */
static int opt_str(const cJSON *o, const char *k, const char **out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);

	*out = NULL;
	if (!v || cJSON_IsNull(v))
		return 0;
	if (!cJSON_IsString(v))
		return aeth__error_set(AETH_EINVALID, "\"%s\" must be a string", k);
	*out = v->valuestring;
	return 0;
}

/* An optional whole number from min to max: absent/null leaves *out. */
int aeth__gw_opt_int(const cJSON *o, const char *k, long min, long max,
		     long *out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);

	if (!v || cJSON_IsNull(v))
		return 0;
	/* the range first: converting an out-of-range double is undefined */
	if (!cJSON_IsNumber(v) || v->valuedouble < (double)min ||
	    v->valuedouble > (double)max ||
	    v->valuedouble != (double)(long)v->valuedouble)
		return aeth__error_set(AETH_EINVALID, "\"%s\" must be a whole number "
				       "from %ld to %ld", k, min, max);
	*out = (long)v->valuedouble;
	return 0;
}

static int opt_uint(const cJSON *o, const char *k, unsigned int max,
		    unsigned int *out)
{
	long v = (long)*out;
	int rc = aeth__gw_opt_int(o, k, 0, (long)max, &v);

	if (rc == 0)
		*out = (unsigned int)v;
	return rc;
}

static bool opt_wait(const cJSON *body, const aeth__http_request *req)
{
	const cJSON *w = cJSON_GetObjectItemCaseSensitive(body, "wait");
	const char *q = aeth__http_query_arg(req, "wait");

	if (q)
		return strcmp(q, "false") != 0 && strcmp(q, "0") != 0;
	return !cJSON_IsFalse(w);
}

/*
 * Would a VM of `vcpus` and `mem` more put `tenant` over a limit? 0, or
 * answered 403 naming the limit. Called under the tenant's quota lock
 * (aeth__store_quota_lock), held until the vm:create task's row is
 * written: the usage counts that row, so two creates, in this gateway or
 * another on the same database, cannot both take the last place.
 */
static int quota_check(aeth__gw_ctx *ctx, const char *tenant,
		       unsigned int vcpus, unsigned int mem)
{
	aeth__gw *gw = ctx->gw;
	aeth_store *s = aeth__gw_store(ctx->conn);
	aeth__tenant_limits lim;
	aeth__tenant_usage use;
	const char *which = NULL;
	int rc, limit = 0, have = 0, want = 0;

	if (!vcpus)
		vcpus = (unsigned int)gw->default_vcpus;
	if (!mem)
		mem = (unsigned int)gw->default_memory_mb;
	if ((rc = aeth__gw_limits(gw, s, tenant, &lim)) != 0 ||
	    (rc = aeth__store_tenant_usage(s, tenant, gw->default_vcpus,
					   gw->default_memory_mb, &use)) != 0) {
		aeth__gw_fail(ctx, rc);
		return rc;
	}
	if (use.vms + 1 > lim.max_vms)
		which = "max_vms", limit = lim.max_vms, have = use.vms, want = 1;
	else if (use.vcpus + (int)vcpus > lim.max_vcpus)
		which = "max_vcpus", limit = lim.max_vcpus, have = use.vcpus,
		want = (int)vcpus;
	else if (use.memory_mb + (int)mem > lim.max_memory_mb)
		which = "max_memory_mb", limit = lim.max_memory_mb,
		have = use.memory_mb, want = (int)mem;
	if (!which)
		return 0;
	aeth__metric_inc(AETH__M_GW_REFUSALS, which, NULL);
	aeth__http_respond_error(ctx->res, 403, "quota_exceeded", "tenant %s is "
				 "at its limit %s %d: it holds %d and asks for %d "
				 "more (delete a VM, or ask the operator: "
				 "aeth-gateway tenants set)", tenant, which, limit,
				 have, want);
	return 1;
}

/* 202 {"task_id"} for a task not waited for. */
static void accepted(aeth__gw_ctx *ctx, const char *task_id)
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "task_id", task_id);
	cJSON_AddStringToObject(o, "status", "pending");
	aeth__gw_json(ctx, 202, o);
}

/* A submit that failed: the task row (if any) records why; the answer
 * carries its id. */
static void submit_failed(aeth__gw_ctx *ctx, int rc, const char *task_id)
{
	const char *code;
	int status = aeth__gw_status_of(rc, &code);

	(void)task_id;
	aeth__http_respond_error(ctx->res, status, code, "%s", aeth_error_last());
}

void aeth__gw_vm_create(aeth__gw_ctx *ctx, const char *unused)
{
	aeth_create_options co = AETH_CREATE_OPTIONS_INIT;
	aeth_submit_options so = AETH_SUBMIT_OPTIONS_INIT;
	const char *rootfs = NULL;
	char id[37] = "", name[64];
	cJSON *body = aeth__gw_body(ctx);
	int rc;

	(void)unused;
	if (!body)
		return;
	if ((rc = opt_str(body, "name", &co.name)) ||
	    (rc = opt_uint(body, "vcpus", 64, &co.vcpus)) ||
	    (rc = opt_uint(body, "memory_mb", 1048576, &co.memory_mb)) ||
	    (rc = opt_str(body, "image", &co.image)) ||
	    (rc = opt_str(body, "network", &co.network)) ||
	    (rc = opt_str(body, "rootfs", &rootfs)) ||
	    (rc = opt_uint(body, "ttl_s", 31536000, &co.ttl_s))) {
		aeth__gw_fail(ctx, rc);
		cJSON_Delete(body);
		return;
	}
	if (co.network && !strcmp(co.network, "tap")) {
		/* a host device name: the operator's, not a tenant's */
		aeth__http_respond_error(ctx->res, 400, "invalid_argument", "network "
					 "\"tap\" names a host device: give a network "
					 "profile of the workers' catalogue");
		cJSON_Delete(body);
		return;
	}
	co.rootfs = rootfs;
	if (!co.name) {
		aeth__uuid_new(id);
		snprintf(name, sizeof(name), "vm-%.8s", id);
		co.name = name;
	}
	if (!(so.tenant = aeth__gw_owner(ctx, body))) {
		cJSON_Delete(body);
		return;
	}
	/* a wait is a stream: refused before anything is enqueued */
	if (opt_wait(body, ctx->req) && aeth__gw_stream_reserve(ctx) != 0) {
		cJSON_Delete(body);
		return;
	}
	if ((rc = aeth__store_quota_lock(aeth__gw_store(ctx->conn), so.tenant,
					 QUOTA_WAIT_MS)) != 0) {
		aeth__gw_fail(ctx, rc);
		cJSON_Delete(body);
		return;
	}
	if (quota_check(ctx, so.tenant, co.vcpus, co.memory_mb) != 0) {
		aeth__store_quota_unlock(aeth__gw_store(ctx->conn), so.tenant);
		cJSON_Delete(body);
		return;
	}
	rc = aeth_client_submit_create_ex(id, ctx->conn->client, &co, &so);
	aeth__store_quota_unlock(aeth__gw_store(ctx->conn), so.tenant);
	if (rc != 0)
		submit_failed(ctx, rc, id);
	else if (!opt_wait(body, ctx->req))
		accepted(ctx, id);
	else
		aeth__gw_stream_task(ctx, id, "vm", NULL,
				     ctx->gw->wait_max_s * 1000u);
	cJSON_Delete(body);
}

/* The vm:execute payload from the request: the fields the worker takes
 * (aetherium/task.h), the VM from the path. */
static int exec_payload(const cJSON *body, const char *vm_id, char **out,
			unsigned int *timeout_ms, bool *live)
{
	static const char *const keep[] = {"command", "args", "env", "cwd",
					   "timeout_ms", "stdin"};
	cJSON *p = cJSON_CreateObject();
	int rc;

	*out = NULL;
	*timeout_ms = 0;
	if (!p)
		return aeth__error_oom();
	cJSON_AddStringToObject(p, "vm_id", vm_id);
	for (size_t i = 0; i < AETH__ARRAY_LEN(keep); i++) {
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, keep[i]);

		if (v)
			cJSON_AddItemToObject(p, keep[i], cJSON_Duplicate(v, true));
	}
	if (*live)
		cJSON_AddBoolToObject(p, "live_output", true);
	if ((rc = opt_uint(body, "timeout_ms", 86400000u, timeout_ms)) == 0 &&
	    !(*out = cJSON_PrintUnformatted(p)))
		rc = aeth__error_oom();
	cJSON_Delete(p);
	return rc;
}

void aeth__gw_vm_exec(aeth__gw_ctx *ctx, const char *vm_id)
{
	aeth_submit_options so = AETH_SUBMIT_OPTIONS_INIT;
	const char *stream = NULL;
	aeth_store_vm *vm = NULL;
	char id[37] = "", *payload = NULL;
	unsigned int timeout_ms = 0;
	bool live;
	cJSON *body;
	int rc;

	if (aeth__gw_own_vm(ctx, vm_id, &vm) != 0)
		return;
	if (!(body = aeth__gw_body(ctx))) {
		aeth_store_vm_free(vm);
		return;
	}
	if ((rc = opt_str(body, "stream", &stream)) == 0 && stream &&
	    strcmp(stream, "sse") != 0 && strcmp(stream, "ndjson") != 0)
		rc = aeth__error_set(AETH_EINVALID, "\"stream\" is \"sse\" or "
				     "\"ndjson\" (or absent: wait for the result)");
	live = stream != NULL;
	if (rc == 0)
		rc = exec_payload(body, vm->id, &payload, &timeout_ms, &live);
	if (rc != 0) {
		aeth__gw_fail(ctx, rc);
	} else if (aeth__gw_stream_reserve(ctx) == 0) {
		/* (else answered 429 / 503, nothing enqueued) */
		so.tenant = vm->tenant;
		so.timeout_ms = timeout_ms ? timeout_ms + WAIT_GRACE_MS : 1800000;
		rc = aeth_client_submit(id, NULL, ctx->conn->client, "vm:execute",
					payload, &so);
		if (rc != 0)
			submit_failed(ctx, rc, id);
		else
			aeth__gw_stream_task(ctx, id, "exec", stream,
					     timeout_ms ? timeout_ms + WAIT_GRACE_MS
							: ctx->gw->wait_max_s * 1000u);
	}
	free(payload);
	cJSON_Delete(body);
	aeth_store_vm_free(vm);
}

void aeth__gw_vm_delete(aeth__gw_ctx *ctx, const char *id)
{
	aeth_submit_options so = AETH_SUBMIT_OPTIONS_INIT;
	aeth_store_vm *vm = NULL;
	char task[37] = "";
	int rc;

	if (aeth__gw_own_vm(ctx, id, &vm) != 0)
		return;
	so.tenant = vm->tenant;
	if (opt_wait(NULL, ctx->req) && aeth__gw_stream_reserve(ctx) != 0) {
		aeth_store_vm_free(vm);
		return;
	}
	rc = aeth_client_submit_delete(task, ctx->conn->client, vm->id, &so);
	if (rc != 0)
		submit_failed(ctx, rc, task);
	else if (!opt_wait(NULL, ctx->req))
		accepted(ctx, task);
	else
		aeth__gw_stream_task(ctx, task, "task", NULL,
				     ctx->gw->wait_max_s * 1000u);
	aeth_store_vm_free(vm);
}
