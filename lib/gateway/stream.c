/*
 * lib/gateway/stream.c - answers that wait: the end of a task (create a
 * VM, exec, delete, /wait) and the live output of a running vm:execute
 * as Server-Sent Events or NDJSON, the exit status last (docs/gateway.md).
 *
 * They run as lib/http streams: the handler has checked and submitted
 * everything that can fail with a 4xx, then hands over; the stream's own
 * thread takes a pooled connection for a second at a time and blocks in
 * Redis (never polling PostgreSQL), so the server's polling threads never
 * wait on a task and many waits share few connections. The status line (200) is sent first: a wait that ends
 * badly says so in the body ({"error": ...}), with the task's id.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/gateway_internal.h"
#include "internal.h"
#include "queue/queue_output.h"
#include "task/task.h"

#define SLICE_MS 1000
#define KEEPALIVE_MS 10000

typedef struct {
	aeth__gw *gw;
	char task_id[37];
	char what[8];      /* task | exec | vm */
	char fmt[8];       /* "" (one JSON object) | sse | ndjson */
	int64_t deadline;  /* aeth__now_ms() */
	int64_t last_sent;
	char last[48];     /* live stream position */
	aeth__gw_conn *conn;
	aeth__buf *out;    /* during a call of next() */
	bool ended;        /* the 'x' entry was seen */
} gw_stream;

/* ---- one JSON object at the end ------------------------------------------ */

static char *error_body(const char *task_id, const char *code, const char *msg)
{
	cJSON *o = cJSON_CreateObject(), *e = cJSON_CreateObject();
	char *s;

	cJSON_AddStringToObject(e, "code", code);
	cJSON_AddStringToObject(e, "message", msg);
	cJSON_AddItemToObject(o, "error", e);
	cJSON_AddStringToObject(o, "task_id", task_id);
	s = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	return s;
}

/* The answer for `what` from the finished task's JSON (the client's). */
static char *final_body(gw_stream *st, const char *task_json)
{
	cJSON *t = cJSON_Parse(task_json), *o = NULL, *res, *err, *status;
	char *s = NULL;

	if (!t)
		return error_body(st->task_id, "internal", "unreadable task row");
	status = cJSON_GetObjectItemCaseSensitive(t, "status");
	res = cJSON_GetObjectItemCaseSensitive(t, "result");
	err = cJSON_GetObjectItemCaseSensitive(t, "error");
	if (strcmp(st->what, "task") != 0 &&
	    !(cJSON_IsString(status) && !strcmp(status->valuestring, "completed"))) {
		/* create / exec that did not complete: the task's error */
		s = error_body(st->task_id, "task_failed", cJSON_IsString(err)
			       ? err->valuestring : "the task did not complete");
		cJSON_Delete(t);
		return s;
	}
	if (!strcmp(st->what, "task")) {
		/* the API's object (with the tenant), not the client's */
		aeth_store_task *row = NULL;

		if (aeth_store_task_get(&row, aeth__gw_store(st->conn),
					st->task_id) == 0)
			o = aeth__gw_task_object(row);
		aeth_store_task_free(row);
	} else if (!strcmp(st->what, "exec")) {
		o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "task_id", st->task_id);
		if (cJSON_IsObject(res)) {
			/* the worker's vm:execute result (docs/worker.md) */
			static const char *const k[] = {
				"exit_code", "stdout", "stderr", "stdout_b64",
				"stderr_b64", "stdout_truncated",
				"stderr_truncated", "timed_out", "signal",
				"duration_ms"};

			for (size_t i = 0; i < AETH__ARRAY_LEN(k); i++) {
				cJSON *v = cJSON_GetObjectItemCaseSensitive(res, k[i]);

				if (v)
					cJSON_AddItemToObject(o, k[i], cJSON_Duplicate(v, 1));
			}
		}
	} else { /* vm */
		cJSON *id = cJSON_IsObject(res)
			    ? cJSON_GetObjectItemCaseSensitive(res, "vm_id") : NULL;
		aeth_store_vm *vm = NULL;

		o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "task_id", st->task_id);
		if (cJSON_IsString(id) &&
		    aeth_store_vm_get(&vm, aeth__gw_store(st->conn),
				      id->valuestring) == 0)
			cJSON_AddItemToObject(o, "vm", aeth__gw_vm_object(vm));
		aeth_store_vm_free(vm);
	}
	s = o ? cJSON_PrintUnformatted(o) : NULL;
	cJSON_Delete(o);
	cJSON_Delete(t);
	return s;
}

static int put_body(gw_stream *st, char *s)
{
	if (!s)
		return -1;
	aeth__buf_printf(st->out, "%s\n", s);
	free(s);
	return 0;
}

/* ---- live output ----------------------------------------------------------- */

static void event(gw_stream *st, const char *name, cJSON *o)
{
	char *s = cJSON_PrintUnformatted(o);

	cJSON_Delete(o);
	if (!s)
		return;
	if (!strcmp(st->fmt, "sse"))
		aeth__buf_printf(st->out, "event: %s\ndata: %s\n\n", name, s);
	else
		aeth__buf_printf(st->out, "%s\n", s);
	free(s);
	st->last_sent = aeth__now_ms();
}

static void on_entry(char kind, const char *data, size_t len, void *ud)
{
	gw_stream *st = ud;
	cJSON *o = cJSON_CreateObject();

	if (kind == 'x') {
		cJSON *x = cJSON_ParseWithLength(data, len);
		cJSON *v;

		cJSON_AddStringToObject(o, "task_id", st->task_id);
		if (x && (v = cJSON_GetObjectItemCaseSensitive(x, "exit_code")))
			cJSON_AddItemToObject(o, "exit_code", cJSON_Duplicate(v, 1));
		if (x && (v = cJSON_GetObjectItemCaseSensitive(x, "error")))
			cJSON_AddItemToObject(o, "error", cJSON_Duplicate(v, 1));
		cJSON_Delete(x);
		event(st, "exit", o);
		st->ended = true;
	} else {
		char *text = aeth__utf8_sanitize(data, len);
		const char *name = kind == 'e' ? "stderr" : "stdout";

		cJSON_AddStringToObject(o, "stream", name);
		cJSON_AddStringToObject(o, "data", text ? text : "");
		cJSON_AddNumberToObject(o, "t_ms", (double)aeth__wall_ms());
		free(text);
		event(st, name, o);
	}
}

/* No 'x' came and the task row is final (it failed before its command
 * ran, or the worker could not publish): end from the row. */
static int end_from_row(gw_stream *st)
{
	aeth_store_task *t = NULL;
	cJSON *o;
	int rc = aeth_store_task_get(&t, aeth__gw_store(st->conn), st->task_id);

	if (rc != 0)
		return 1;
	if (!strcmp(t->status, "pending") || !strcmp(t->status, "running") ||
	    !strcmp(t->status, "retrying")) {
		aeth_store_task_free(t);
		return 1;
	}
	/* anything published before the row became final is in the stream */
	aeth__queue_output_read(aeth__gw_queue(st->conn), st->task_id, st->last, 0,
				on_entry, st);
	if (!st->ended) {
		cJSON *res = t->result ? cJSON_Parse(t->result) : NULL;
		cJSON *v = res ? cJSON_GetObjectItemCaseSensitive(res, "exit_code")
			       : NULL;

		o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "task_id", st->task_id);
		if (v)
			cJSON_AddItemToObject(o, "exit_code", cJSON_Duplicate(v, 1));
		else
			cJSON_AddStringToObject(o, "error", t->error ? t->error
						: "the task ended without output");
		cJSON_Delete(res);
		event(st, "exit", o);
	}
	aeth_store_task_free(t);
	return 0;
}

static int next_live(gw_stream *st, int64_t slice_end)
{
	int64_t now = aeth__now_ms();
	int n;

	n = aeth__queue_output_read(aeth__gw_queue(st->conn), st->task_id, st->last,
				    (unsigned int)(slice_end > now ? slice_end - now : 1),
				    on_entry, st);
	if (st->ended)
		return 0;
	if (n < 0)
		return -1;
	if (n == 0 && end_from_row(st) == 0)
		return 0;
	if (aeth__now_ms() - st->last_sent >= KEEPALIVE_MS) {
		/* lets proxies and the server see that the client is still
		 * there while a command is silent */
		aeth__buf_printf(st->out, !strcmp(st->fmt, "sse") ? ":\n\n" : "\n");
		st->last_sent = aeth__now_ms();
	}
	return 1;
}

/* ---- the stream ------------------------------------------------------------- */

static int next_slice(aeth__buf *out, int64_t deadline_ms, gw_stream *st);

/* One slice (a second at most) with a pooled connection, given back after
 * it: many waits share gateway.connections, none holds one for long. */
static int next(aeth__buf *out, int64_t deadline_ms, void *ud)
{
	gw_stream *st = ud;
	int rc = next_slice(out, deadline_ms, st);

	aeth__gw_conn_put(st->gw, st->conn);
	st->conn = NULL;
	return rc;
}

static int next_slice(aeth__buf *out, int64_t deadline_ms, gw_stream *st)
{
	int64_t now = aeth__now_ms(), slice_end = now + SLICE_MS;
	char *json = NULL;
	int rc;

	st->out = out;
	if (slice_end > deadline_ms)
		slice_end = deadline_ms;
	if (now >= st->deadline) {
		char msg[160];

		snprintf(msg, sizeof(msg), "task %s did not finish in time; GET "
			 "/v1/tasks/%s shows it later", st->task_id, st->task_id);
		if (st->fmt[0])
			aeth__buf_printf(out, !strcmp(st->fmt, "sse") ? "event: error\n"
					 "data: " : "");
		if (put_body(st, error_body(st->task_id, "timeout", msg)) != 0)
			return -1;
		if (!strcmp(st->fmt, "sse"))
			aeth__buf_printf(out, "\n"); /* the event's end */
		return 0;
	}
	if (!st->conn && !(st->conn = aeth__gw_conn_get(st->gw, true, SLICE_MS)))
		return 1; /* none free yet: try again */
	if (st->fmt[0])
		return next_live(st, slice_end);
	rc = aeth_client_wait(&json, st->conn->client, st->task_id,
			      (unsigned int)(slice_end > now ? slice_end - now : 1),
			      NULL, NULL);
	if (rc == AETH_ETIMEOUT)
		return 1;
	if (rc != 0) {
		const char *code;

		aeth__gw_status_of(rc, &code);
		return put_body(st, error_body(st->task_id, code,
					       aeth_error_last())) ? -1 : 0;
	}
	rc = put_body(st, final_body(st, json));
	free(json);
	return rc ? -1 : 0;
}

static void done(void *ud)
{
	gw_stream *st = ud;

	aeth__gw_conn_put(st->gw, st->conn);
	free(st);
}

int aeth__gw_stream_task(aeth__gw_ctx *ctx, const char *task_id,
			 const char *what, const char *format,
			 unsigned int timeout_ms)
{
	gw_stream *st = calloc(1, sizeof(*st));
	const char *type = "application/json";
	char hdr[64];

	if (!st) {
		aeth__http_respond_error(ctx->res, 500, "internal", "out of memory");
		return AETH_ENOMEM;
	}
	st->gw = ctx->gw;
	snprintf(st->task_id, sizeof(st->task_id), "%s", task_id);
	snprintf(st->what, sizeof(st->what), "%s", what);
	snprintf(st->fmt, sizeof(st->fmt), "%s", format ? format : "");
	snprintf(st->last, sizeof(st->last), "0");
	st->deadline = aeth__now_ms() + timeout_ms;
	st->last_sent = aeth__now_ms();
	if (format && !strcmp(format, "sse"))
		type = "text/event-stream";
	else if (format)
		type = "application/x-ndjson";
	snprintf(hdr, sizeof(hdr), "%s", task_id);
	aeth__http_respond_header(ctx->res, "X-Task-Id", hdr);
	aeth__http_respond_header(ctx->res, "Cache-Control", "no-store");
	return aeth__http_respond_stream(ctx->res, 200, type, next, done, st,
					 st->deadline + 5000);
}
