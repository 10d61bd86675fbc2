/*
 * lib/gateway/routes_files.c - /v1/vms/{id}/files: put a file into a VM
 * (PUT, the body is its bytes) and get one out (GET answers its bytes),
 * as vm:file_put / vm:file_get tasks routed to the worker that owns the
 * VM (docs/gateway.md). Scoped like every VM route: another tenant's VM
 * is "not found", exactly as an id that does not exist.
 *
 * The answer's status depends on the task's end (404 for a missing file),
 * so the handler waits for it, up to FILE_WAIT_MS: a file call is one or
 * two round trips to the guest agent, seconds at worst; the polling
 * thread's other connections wait meanwhile (lib/http/http.h), the price
 * of a plain status code. Bytes travel base64 in the task (task.h), so a
 * file is at most AETH__FILE_MAX bytes whatever gateway.max_body_bytes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/gateway_internal.h"
#include "internal.h"
#include "task/task.h"

#define FILE_WAIT_MS 60000u
#define FILE_TASK_TIMEOUT_MS 120000u

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
static void file_failed(aeth__gw_ctx *ctx, const char *error)
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
	aeth__http_respond_error(ctx->res, status, code, "%s",
				 error ? error : "the task did not complete");
}

/*
 * Submit `type` with `payload` for the caller's VM `vm` and wait for its
 * end: the completed task's result (the caller's to cJSON_Delete()), or
 * answered and NULL.
 */
static cJSON *run_file_task(aeth__gw_ctx *ctx, const aeth_store_vm *vm,
			    const char *type, const char *payload, char id[37])
{
	aeth_submit_options so = AETH_SUBMIT_OPTIONS_INIT;
	cJSON *task, *status, *res = NULL;
	char *json = NULL;
	int rc;

	so.tenant = vm->tenant;
	so.timeout_ms = FILE_TASK_TIMEOUT_MS;
	if ((rc = aeth_client_submit(id, NULL, ctx->conn->client, type, payload,
				     &so)) != 0 ||
	    (rc = aeth_client_wait(&json, ctx->conn->client, id, FILE_WAIT_MS,
				   NULL, NULL)) != 0) {
		if (rc == AETH_ETIMEOUT)
			aeth__error_set(rc, "task %s (%s) did not finish in %u s; GET "
					"/v1/tasks/%s shows it later", id, type,
					FILE_WAIT_MS / 1000, id);
		aeth__gw_fail(ctx, rc);
		return NULL;
	}
	aeth__http_respond_header(ctx->res, "X-Task-Id", id);
	task = cJSON_Parse(json);
	aeth_free(json);
	status = cJSON_GetObjectItemCaseSensitive(task, "status");
	if (cJSON_IsString(status) && !strcmp(status->valuestring, "completed"))
		res = cJSON_DetachItemFromObjectCaseSensitive(task, "result");
	if (!cJSON_IsObject(res)) {
		const cJSON *err = cJSON_GetObjectItemCaseSensitive(task, "error");

		file_failed(ctx, cJSON_IsString(err) ? err->valuestring : NULL);
		cJSON_Delete(res);
		res = NULL;
	}
	cJSON_Delete(task);
	return res;
}

void aeth__gw_vm_file_put(aeth__gw_ctx *ctx, const char *vm_id)
{
	aeth_store_vm *vm = NULL;
	const char *path;
	char id[37] = "", *b64 = NULL, *payload = NULL;
	cJSON *p = NULL, *res;
	long mode;

	if (aeth__gw_own_vm(ctx, vm_id, &vm) != 0 || !(path = path_arg(ctx)) ||
	    (mode = mode_arg(ctx)) < 0)
		goto out;
	if (ctx->req->body_len > AETH__FILE_MAX) {
		aeth__http_respond_error(ctx->res, 413, "too_large", "the file is %zu "
					 "bytes, more than the limit of %d for a file "
					 "through the queue", ctx->req->body_len,
					 AETH__FILE_MAX);
		goto out;
	}
	if (!(b64 = aeth__base64(ctx->req->body, ctx->req->body_len)) ||
	    !(p = cJSON_CreateObject()) ||
	    !cJSON_AddStringToObject(p, "vm_id", vm->id) ||
	    !cJSON_AddStringToObject(p, "path", path) ||
	    !cJSON_AddNumberToObject(p, "mode", (double)mode) ||
	    !cJSON_AddStringToObject(p, "data", b64) ||
	    !(payload = cJSON_PrintUnformatted(p))) {
		aeth__http_respond_error(ctx->res, 500, "internal", "out of memory");
		goto out;
	}
	if ((res = run_file_task(ctx, vm, AETH__TASK_FILE_PUT, payload, id))) {
		cJSON_DeleteItemFromObjectCaseSensitive(res, "vm_id");
		cJSON_AddStringToObject(res, "task_id", id);
		cJSON_AddStringToObject(res, "vm_id", vm->id);
		aeth__gw_json(ctx, 200, res);
	}
out:
	free(payload);
	cJSON_Delete(p);
	free(b64);
	aeth_store_vm_free(vm);
}

void aeth__gw_vm_file_get(aeth__gw_ctx *ctx, const char *vm_id)
{
	aeth_store_vm *vm = NULL;
	const char *path;
	char id[37] = "", *payload = NULL, hdr[16];
	unsigned char *data = NULL;
	size_t len = 0;
	cJSON *p = NULL, *res = NULL, *b64, *mode;
	int rc;

	if (aeth__gw_own_vm(ctx, vm_id, &vm) != 0 || !(path = path_arg(ctx)))
		goto out;
	if (!(p = cJSON_CreateObject()) ||
	    !cJSON_AddStringToObject(p, "vm_id", vm->id) ||
	    !cJSON_AddStringToObject(p, "path", path) ||
	    !(payload = cJSON_PrintUnformatted(p))) {
		aeth__http_respond_error(ctx->res, 500, "internal", "out of memory");
		goto out;
	}
	if (!(res = run_file_task(ctx, vm, AETH__TASK_FILE_GET, payload, id)))
		goto out;
	b64 = cJSON_GetObjectItemCaseSensitive(res, "data");
	mode = cJSON_GetObjectItemCaseSensitive(res, "mode");
	rc = cJSON_IsString(b64)
	     ? aeth__base64_decode(&data, &len, "the file's data", b64->valuestring,
				   strlen(b64->valuestring), AETH__FILE_MAX)
	     : aeth__error_set(AETH_EINVALID, "task %s's result has no data", id);
	if (rc != 0) {
		aeth__http_respond_error(ctx->res, 502, "task_failed", "%s",
					 aeth_error_last());
		goto out;
	}
	snprintf(hdr, sizeof(hdr), "%04o", cJSON_IsNumber(mode)
		 ? (unsigned int)mode->valuedouble & 07777u : 0u);
	aeth__http_respond_header(ctx->res, "X-File-Mode", hdr);
	aeth__http_respond_header(ctx->res, "Cache-Control", "no-store");
	aeth__http_respond_take(ctx->res, 200, "application/octet-stream",
				(char *)data, len);
	data = NULL;
out:
	free(data);
	free(payload);
	cJSON_Delete(p);
	cJSON_Delete(res);
	aeth_store_vm_free(vm);
}
