/*
 * lib/gateway/routes_files.c - /v1/vms/{id}/files: put a file into a VM
 * (PUT, the body is its bytes) and get one out (GET answers its bytes),
 * as vm:file_put / vm:file_get tasks routed to the worker that owns the
 * VM (docs/gateway.md). Scoped like every VM route: another tenant's VM
 * is "not found", exactly as an id that does not exist.
 *
 * The answer's status depends on the task's end (404 for a missing file),
 * so it cannot be a stream that sends 200 first (stream.c): the handler
 * checks and submits, then the answer is made later
 * (aeth__http_respond_later()) by a thread that waits in Redis up to
 * FILE_WAIT_MS, with a connection of the waits' pool a second at a time,
 * while the polling thread serves others. Bytes travel base64 in the task
 * (task.h), so a file is at most AETH__FILE_MAX bytes whatever
 * gateway.max_body_bytes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/gateway_internal.h"
#include "internal.h"
#include "task/task.h"

#define FILE_WAIT_MS 60000u
#define FILE_TASK_TIMEOUT_MS 120000u
#define FILES_ROUTE "/v1/vms/{id}/files" /* its template in the metrics */

/* ?path=: an absolute guest path, or answered 400 and NULL. A NUL is
 * looked for in the raw query: decoded, "%00" would end the C string. */
static const char *path_arg(aeth__gw_ctx *ctx)
{
	const char *p = aeth__http_query_arg(ctx->req, "path");
	int rc;

	if (!p) {
		aeth__http_respond_error(ctx->res, 400, "invalid_argument", "the "
					 "query needs path=, an absolute path in the "
					 "guest (?path=/root/data.bin)");
		return NULL;
	}
	if (strstr(ctx->req->query, "%00"))
		rc = aeth__error_set(AETH_EINVALID, "path holds a NUL character "
				     "(%%00): a guest path cannot");
	else
		rc = aeth__guest_path_check("path", p, strlen(p));
	if (rc != 0) {
		aeth__gw_fail(ctx, rc);
		return NULL;
	}
	return p;
}

/* ?mode=: octal permission bits (e.g. 0755), AETH__FILE_MODE_DEFAULT when
 * absent; -1 answered 400. */
static long mode_arg(aeth__gw_ctx *ctx)
{
	const char *m = aeth__http_query_arg(ctx->req, "mode");
	char *end = NULL;
	long v;

	if (!m)
		return AETH__FILE_MODE_DEFAULT;
	v = *m >= '0' && *m <= '7' ? strtol(m, &end, 8) : -1;
	if (v < 0 || v > 07777 || !end || *end) {
		aeth__http_respond_error(ctx->res, 400, "invalid_argument", "mode "
					 "\"%.16s\" is not permission bits in octal "
					 "(0 to 7777, e.g. 0644)", m);
		return -1;
	}
	return v;
}

/* The answer for a file task that did not complete: the code its message
 * carries (task.h), else 502 with the task's words. */
static void file_failed(aeth__http_response *res, const char *error)
{
	const char *code = aeth__file_error_code(error);
	int status = 502;

	if (code && !strcmp(code, "not_found"))
		status = 404;
	else if (code && !strcmp(code, "too_large"))
		status = 413;
	else if (code)
		status = 400;
	else
		code = "task_failed";
	aeth__http_respond_error(res, status, code, "%s",
				 error ? error : "the task did not complete");
}

/* A submitted file task whose end the answer waits for. */
typedef struct {
	aeth__gw *gw;
	char task_id[37];
	char vm_id[37];
	char tenant[65]; /* whose stream slot it holds (tenant_max_streams) */
	bool put;
	int64_t deadline; /* aeth__now_ms() */
	double t0;        /* the request's aeth__gw_clock(), for the metrics */
	int status;       /* the answer file_next() gave; 0: none */
} file_wait;

/* The later answer ended (sent, or the client went): counted in the
 * metrics with its real status, its slot back. No answer of ours means
 * lib/http gave it: the client left (499), or the gateway is stopping. */
static void file_wait_free(void *ud)
{
	file_wait *fw = ud;

	aeth__gw_metrics_answered(fw->put ? "PUT" : "GET", FILES_ROUTE,
				  fw->status ? fw->status : 499, fw->t0);
	aeth__gw_stream_release(fw->gw, fw->tenant);
	free(fw);
}

/* The completed vm:file_put's answer: its result, with the task's id. */
static void put_answer(aeth__http_response *res, const file_wait *fw,
		       cJSON *result)
{
	char *s;

	cJSON_DeleteItemFromObjectCaseSensitive(result, "vm_id");
	cJSON_AddStringToObject(result, "task_id", fw->task_id);
	cJSON_AddStringToObject(result, "vm_id", fw->vm_id);
	if (!(s = cJSON_PrintUnformatted(result)))
		aeth__http_respond_error(res, 500, "internal", "out of memory");
	else
		aeth__http_respond_take(res, 200, "application/json", s, strlen(s));
}

/* The completed vm:file_get's answer: the file's bytes. */
static void get_answer(aeth__http_response *res, const file_wait *fw,
		       const cJSON *result)
{
	const cJSON *b64 = cJSON_GetObjectItemCaseSensitive(result, "data");
	const cJSON *mode = cJSON_GetObjectItemCaseSensitive(result, "mode");
	unsigned char *data = NULL;
	size_t len = 0;
	char hdr[16];
	int rc;

	rc = cJSON_IsString(b64)
	     ? aeth__base64_decode(&data, &len, "the file's data", b64->valuestring,
				   strlen(b64->valuestring), AETH__FILE_MAX)
	     : aeth__error_set(AETH_EINVALID, "task %s's result has no data",
			       fw->task_id);
	if (rc != 0) {
		aeth__http_respond_error(res, 502, "task_failed", "%s",
					 aeth_error_last());
		return;
	}
	/* in range before the cast: converting an out-of-range double (a
	 * result not written by our worker) is undefined */
	snprintf(hdr, sizeof(hdr), "%04o", cJSON_IsNumber(mode) &&
		 mode->valuedouble >= 0 && mode->valuedouble <= 07777
		 ? (unsigned int)mode->valuedouble : 0u);
	aeth__http_respond_header(res, "X-File-Mode", hdr);
	aeth__http_respond_header(res, "Cache-Control", "no-store");
	aeth__http_respond_take(res, 200, "application/octet-stream",
				(char *)data, len);
}

/* The answer from the finished task's JSON (aeth_client_wait()'s). */
static void answer(aeth__http_response *res, const file_wait *fw,
		   const char *task_json)
{
	cJSON *task = cJSON_Parse(task_json);
	const cJSON *status = cJSON_GetObjectItemCaseSensitive(task, "status");
	cJSON *result = cJSON_GetObjectItemCaseSensitive(task, "result");

	if (cJSON_IsString(status) && !strcmp(status->valuestring, "completed") &&
	    cJSON_IsObject(result)) {
		if (fw->put)
			put_answer(res, fw, result);
		else
			get_answer(res, fw, result);
	} else {
		const cJSON *err = cJSON_GetObjectItemCaseSensitive(task, "error");

		file_failed(res, cJSON_IsString(err) ? err->valuestring : NULL);
	}
	cJSON_Delete(task);
}

/* aeth__http_respond_later()'s slice: wait in Redis for the task's end
 * with a connection of the waits' pool, taken for this slice only. */
static int file_next(aeth__http_response *res, int64_t deadline_ms, void *ud)
{
	file_wait *fw = ud;
	int64_t now = aeth__now_ms();
	aeth__gw_conn *conn;
	char *json = NULL;
	const char *code;
	int rc;

	if (now >= fw->deadline) {
		aeth__http_respond_error(res, 504, "timeout", "task %s did not "
					 "finish in %u s; GET /v1/tasks/%s shows it "
					 "later", fw->task_id, FILE_WAIT_MS / 1000,
					 fw->task_id);
		fw->status = 504;
		return 0;
	}
	if (!(conn = aeth__gw_conn_get(fw->gw, true, deadline_ms - now)))
		return 1;
	now = aeth__now_ms();
	rc = aeth_client_wait(&json, conn->client, fw->task_id,
			      deadline_ms > now ? (unsigned int)(deadline_ms - now)
						: 1u, NULL, NULL);
	aeth__gw_conn_put(fw->gw, conn);
	if (rc == AETH_ETIMEOUT)
		return 1;
	if (rc != 0) {
		int status = aeth__gw_status_of(rc, &code);

		aeth__http_respond_error(res, status, code, "%s", aeth_error_last());
	} else {
		answer(res, fw, json);
		aeth_free(json);
	}
	fw->status = aeth__http_response_status(res);
	return 0;
}

/*
 * Submit `type` with `payload` for the caller's VM `vm`, then answer
 * later, when it ended (file_next()): the handler returns at once.
 */
static void run_file_task(aeth__gw_ctx *ctx, const aeth_store_vm *vm,
			  const char *type, const char *payload)
{
	aeth_submit_options so = AETH_SUBMIT_OPTIONS_INIT;
	file_wait *fw = calloc(1, sizeof(*fw));
	int rc;

	if (!fw) {
		aeth__http_respond_error(ctx->res, 500, "internal", "out of memory");
		return;
	}
	/* a wait like any stream: within gateway.tenant_max_streams and
	 * max_streams, reserved before anything is enqueued */
	if (aeth__gw_stream_reserve(ctx) != 0) {
		free(fw);
		return;
	}
	fw->gw = ctx->gw;
	snprintf(fw->tenant, sizeof(fw->tenant), "%s", ctx->who.tenant);
	fw->put = !strcmp(type, AETH__TASK_FILE_PUT);
	snprintf(fw->vm_id, sizeof(fw->vm_id), "%s", vm->id);
	fw->deadline = aeth__now_ms() + FILE_WAIT_MS;
	fw->t0 = ctx->t0;
	so.tenant = vm->tenant;
	so.timeout_ms = FILE_TASK_TIMEOUT_MS;
	if ((rc = aeth_client_submit(fw->task_id, NULL, ctx->conn->client, type,
				     payload, &so)) != 0) {
		aeth__gw_fail(ctx, rc);
		free(fw);
		return;
	}
	aeth__http_respond_header(ctx->res, "X-Task-Id", fw->task_id);
	/* the slot is the later answer's now: file_wait_free() gives it back */
	ctx->stream_slot = false;
	aeth__http_respond_later(ctx->res, file_next, file_wait_free, fw,
				 fw->deadline + 5000);
}

/*
 * PUT (`put`) or GET: the caller's VM, the path and (PUT) the mode and the
 * body's size checked, the task's payload built and submitted; the answer
 * comes when it ends.
 */
static void file_route(aeth__gw_ctx *ctx, const char *vm_id, bool put)
{
	aeth_store_vm *vm = NULL;
	const char *path;
	char *b64 = NULL, *payload = NULL;
	cJSON *p = NULL;
	long mode = 0;

	if (aeth__gw_own_vm(ctx, vm_id, &vm) != 0 || !(path = path_arg(ctx)) ||
	    (put && (mode = mode_arg(ctx)) < 0))
		goto out;
	if (put && ctx->req->body_len > AETH__FILE_MAX) {
		aeth__http_respond_error(ctx->res, 413, "too_large", "the file is %zu "
					 "bytes, more than the limit of %d for a file "
					 "through the queue", ctx->req->body_len,
					 AETH__FILE_MAX);
		goto out;
	}
	if ((put && !(b64 = aeth__base64(ctx->req->body, ctx->req->body_len))) ||
	    !(p = cJSON_CreateObject()) ||
	    !cJSON_AddStringToObject(p, "vm_id", vm->id) ||
	    !cJSON_AddStringToObject(p, "path", path) ||
	    (put && (!cJSON_AddNumberToObject(p, "mode", (double)mode) ||
		     !cJSON_AddStringToObject(p, "data", b64))) ||
	    !(payload = cJSON_PrintUnformatted(p))) {
		aeth__http_respond_error(ctx->res, 500, "internal", "out of memory");
		goto out;
	}
	run_file_task(ctx, vm, put ? AETH__TASK_FILE_PUT : AETH__TASK_FILE_GET,
		      payload);
out:
	free(payload);
	cJSON_Delete(p);
	free(b64);
	aeth_store_vm_free(vm);
}

void aeth__gw_vm_file_put(aeth__gw_ctx *ctx, const char *vm_id)
{
	file_route(ctx, vm_id, true);
}

void aeth__gw_vm_file_get(aeth__gw_ctx *ctx, const char *vm_id)
{
	file_route(ctx, vm_id, false);
}
