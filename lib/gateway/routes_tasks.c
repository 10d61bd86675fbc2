/*
 * lib/gateway/routes_tasks.c - /v1/tasks (submit any registered type,
 * get, list, wait, cancel, live output) and the operator's /v1/workers
 * and /v1/queues (docs/gateway.md).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


#include "aetherium/queue.h"
#include "aetherium/unstable/store.h"
#include "gateway/gateway_internal.h"
#include "queue/queue_output.h"
#include "internal.h"

/* The caller's task `id` into *out, or answered 404 and nonzero. */
static int own_task(aeth__gw_ctx *ctx, const char *id, aeth_store_task **out)
{
	int rc;

	*out = NULL;
	if (!aeth__uuid_valid(id))
		rc = aeth__error_set(AETH_ENOTFOUND, "task %s not found", id);
	else
		rc = aeth__store_task_get_in(out, aeth__gw_store(ctx->conn), id,
					     aeth__gw_scope(ctx));
	if (rc != 0)
		aeth__gw_fail(ctx, rc);
	return rc;
}

void aeth__gw_tasks_list(aeth__gw_ctx *ctx, const char *unused)
{
	aeth_store_filter f = AETH_STORE_FILTER_INIT;
	aeth_store_task **list = NULL;
	long n = 100;
	cJSON *a;
	int rc;

	(void)unused;
	if (aeth__gw_query_int(ctx, "limit", 1, 10000, &n) != 0)
		return;
	f.tenant = aeth__gw_scope(ctx);
	f.status = aeth__http_query_arg(ctx->req, "status");
	f.type = aeth__http_query_arg(ctx->req, "type");
	f.vm_id = aeth__http_query_arg(ctx->req, "vm_id");
	f.limit = (unsigned int)n;
	if ((rc = aeth_store_task_list(&list, NULL, aeth__gw_store(ctx->conn),
				       &f)) != 0) {
		aeth__gw_fail(ctx, rc);
		return;
	}
	a = cJSON_CreateArray();
	for (size_t i = 0; a && list[i]; i++)
		cJSON_AddItemToArray(a, aeth__gw_task_object(list[i]));
	aeth_store_task_list_free(list);
	aeth__gw_json(ctx, 200, a);
}

/* ?timeout_ms=N into *ms, at most gateway.wait_max_s (also when absent);
 * nonzero: answered 400. */
static int wait_arg(aeth__gw_ctx *ctx, unsigned int *ms)
{
	long max = (long)ctx->gw->wait_max_s * 1000, v = max;

	if (aeth__gw_query_int(ctx, "timeout_ms", 1, 86400000, &v) != 0)
		return -1;
	*ms = (unsigned int)(v < max ? v : max);
	return 0;
}

void aeth__gw_task_get(aeth__gw_ctx *ctx, const char *id)
{
	aeth_store_task *t = NULL;

	if (own_task(ctx, id, &t) == 0)
		aeth__gw_json(ctx, 200, aeth__gw_task_object(t));
	aeth_store_task_free(t);
}

void aeth__gw_task_wait(aeth__gw_ctx *ctx, const char *id)
{
	aeth_store_task *t = NULL;
	unsigned int ms;

	if (wait_arg(ctx, &ms) == 0 && own_task(ctx, id, &t) == 0)
		aeth__gw_stream_task(ctx, t->id, "task", NULL, ms);
	aeth_store_task_free(t);
}

void aeth__gw_task_output(aeth__gw_ctx *ctx, const char *id)
{
	const char *fmt = aeth__http_query_arg(ctx->req, "format");
	aeth_store_task *t = NULL;
	unsigned int ms;

	if (!fmt || (strcmp(fmt, "sse") && strcmp(fmt, "ndjson")))
		fmt = "sse";
	if (wait_arg(ctx, &ms) == 0 && own_task(ctx, id, &t) == 0)
		aeth__gw_stream_task(ctx, t->id, "exec", fmt, ms);
	aeth_store_task_free(t);
}

/* A vm:create through /v1/tasks counts against the quota the same way:
 * the one path is POST /v1/vms, so refuse it here and say so. */
void aeth__gw_task_submit(aeth__gw_ctx *ctx, const char *unused)
{
	aeth_submit_options so = AETH_SUBMIT_OPTIONS_INIT;
	const cJSON *type, *payload, *queue;
	char id[37] = "", *text = NULL, *used = NULL;
	long retries, timeout, prio;
	cJSON *body = aeth__gw_body(ctx), *o;
	int rc;

	(void)unused;
	if (!body)
		return;
	type = cJSON_GetObjectItemCaseSensitive(body, "type");
	payload = cJSON_GetObjectItemCaseSensitive(body, "payload");
	queue = cJSON_GetObjectItemCaseSensitive(body, "queue");
	if (!cJSON_IsString(type)) {
		aeth__http_respond_error(ctx->res, 400, "invalid_argument", "\"type\" "
					 "(a string: vm:execute, vm:delete or a type a "
					 "worker registered) is required");
		goto out;
	}
	if (!strcmp(type->valuestring, "vm:create")) {
		aeth__http_respond_error(ctx->res, 400, "invalid_argument", "create "
					 "VMs with POST /v1/vms (it applies the "
					 "tenant's quota)");
		goto out;
	}
	if (payload && !cJSON_IsObject(payload)) {
		aeth__http_respond_error(ctx->res, 400, "invalid_argument",
					 "\"payload\" must be a JSON object");
		goto out;
	}
	if (queue && !cJSON_IsString(queue)) {
		aeth__http_respond_error(ctx->res, 400, "invalid_argument",
					 "\"queue\" must be a string");
		goto out;
	}
	so.queue = queue ? queue->valuestring : NULL;
	retries = so.max_retries;
	timeout = so.timeout_ms;
	prio = so.priority;
	/* out of range is an error, never a silent default */
	if (aeth__gw_opt_int(body, "max_retries", 0, 100, &retries) != 0 ||
	    aeth__gw_opt_int(body, "timeout_ms", 0, 86400000, &timeout) != 0 ||
	    aeth__gw_opt_int(body, "priority", -1000, 1000, &prio) != 0) {
		aeth__gw_fail(ctx, AETH_EINVALID);
		goto out;
	}
	so.max_retries = (unsigned int)retries;
	so.timeout_ms = (unsigned int)timeout;
	so.priority = (int)prio;
	if (!(so.tenant = aeth__gw_owner(ctx, body)))
		goto out;
	text = payload ? cJSON_PrintUnformatted(payload) : NULL;
	rc = aeth_client_submit(id, &used, ctx->conn->client, type->valuestring,
				text ? text : "{}", &so);
	if (rc != 0) {
		aeth__gw_fail(ctx, rc);
		goto out;
	}
	o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "task_id", id);
	cJSON_AddStringToObject(o, "status", "pending");
	aeth__gw_json(ctx, 202, o);
out:
	free(text);
	free(used);
	cJSON_Delete(body);
}

/* Cancel a task that has not started; a running vm:execute is killed by
 * its worker through the cancel mark (docs/gateway.md). */
void aeth__gw_task_cancel(aeth__gw_ctx *ctx, const char *id)
{
	aeth_store_task *t = NULL;
	cJSON *o;
	int rc;

	if (own_task(ctx, id, &t) != 0)
		return;
	if (strcmp(t->status, "pending") != 0 && strcmp(t->status, "retrying") != 0 &&
	    strcmp(t->status, "running") != 0) {
		aeth__http_respond_error(ctx->res, 409, "conflict", "task %s is %s: "
					 "nothing to cancel", t->id, t->status);
		aeth_store_task_free(t);
		return;
	}
	rc = aeth_queue_cancel(aeth__gw_queue(ctx->conn), NULL, t->id);
	if (rc == AETH_ESTATE)
		rc = aeth__queue_cancel_mark(aeth__gw_queue(ctx->conn), t->id);
	else if (rc == 0 || rc == AETH_ENOTFOUND)
		rc = aeth_store_task_finish(aeth__gw_store(ctx->conn), t->id,
					    "failed", NULL, "cancelled through the API");
	if (rc != 0) {
		aeth__gw_fail(ctx, rc);
	} else {
		o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "task_id", t->id);
		cJSON_AddStringToObject(o, "status", !strcmp(t->status, "running")
					? "cancelling" : "cancelled");
		aeth__gw_json(ctx, 202, o);
	}
	aeth_store_task_free(t);
}

/* Operator routes: workers and queues are the whole system's. */
static int operator_only(aeth__gw_ctx *ctx)
{
	if (ctx->who.operator_)
		return 0;
	aeth__http_respond_error(ctx->res, 403, "forbidden", "workers and queues "
				 "are shown to operator keys only (aeth-gateway "
				 "keys create -operator)");
	return 1;
}

void aeth__gw_workers(aeth__gw_ctx *ctx, const char *unused)
{
	char *json = NULL;
	int rc;

	(void)unused;
	if (operator_only(ctx) != 0)
		return;
	rc = aeth_queue_worker_list(&json, aeth__gw_queue(ctx->conn));
	if (rc != 0)
		aeth__gw_fail(ctx, rc);
	else
		aeth__http_respond_take(ctx->res, 200, "application/json", json,
					strlen(json));
}

void aeth__gw_queues(aeth__gw_ctx *ctx, const char *unused)
{
	char **names = NULL;
	cJSON *a;
	int rc;

	(void)unused;
	if (operator_only(ctx) != 0)
		return;
	if ((rc = aeth_queue_queues(&names, aeth__gw_queue(ctx->conn))) != 0) {
		aeth__gw_fail(ctx, rc);
		return;
	}
	a = cJSON_CreateArray();
	for (size_t i = 0; a && names[i] && i < 1000; i++) {
		aeth_queue_counts c = AETH_QUEUE_COUNTS_INIT;
		cJSON *o = cJSON_CreateObject();

		cJSON_AddStringToObject(o, "name", names[i]);
		if (aeth_queue_count(&c, aeth__gw_queue(ctx->conn), names[i]) == 0)
			for (int s = 0; s < AETH_QUEUE_NSTATES; s++)
				cJSON_AddNumberToObject(o, aeth_queue_state_name(
							(aeth_queue_state)s),
							(double)c.n[s]);
		cJSON_AddItemToArray(a, o);
	}
	aeth_strarray_free(names);
	aeth__gw_json(ctx, 200, a);
}
