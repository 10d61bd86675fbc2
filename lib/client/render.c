/*
 * lib/client/render.c - text for humans from the client's JSON: tables of
 * VMs and tasks, and one task's outcome.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "aetherium/unstable/client.h"
#include "internal.h"

typedef struct {
	const char *key;
	const char *title;
	int width; /* 0 = as wide as needed (last column) */
} column;

static const column vm_cols[] = {
	{"id", "ID", 36}, {"name", "NAME", 16}, {"status", "STATUS", 9},
	{"orchestrator", "BACKEND", 8}, {"vcpu_count", "VCPU", 4},
	{"memory_mb", "MEM", 5}, {"owner_worker", "WORKER", 0},
};
static const column task_cols[] = {
	{"id", "ID", 36}, {"type", "TYPE", 10}, {"status", "STATUS", 9},
	{"retry_count", "RETRY", 5}, {"created_at", "CREATED", 19},
	{"error", "ERROR", 0},
};

static const column worker_cols[] = {
	{"id", "ID", 24}, {"host", "HOST", 16}, {"pid", "PID", 7},
	{"state", "STATE", 7}, {"seen_ago", "LAST HEARTBEAT", 14},
	{"queues", "QUEUES", 24}, {"pool_text", "POOLS", 24},
	{"types", "TYPES", 0},
};

/* A field as short text: strings as is, numbers, arrays of strings joined
 * with ",", "-" for null. */
static void cell(cJSON *row, const char *key, char *out, size_t n)
{
	cJSON *v = cJSON_GetObjectItemCaseSensitive(row, key);

	if (cJSON_IsString(v) && v->valuestring)
		snprintf(out, n, "%s", v->valuestring);
	else if (cJSON_IsNumber(v))
		snprintf(out, n, "%.0f", v->valuedouble);
	else if (cJSON_IsArray(v)) {
		const cJSON *e;
		size_t k = 0;

		out[0] = '\0';
		cJSON_ArrayForEach(e, v)
			if (cJSON_IsString(e) && k < n)
				k += (size_t)snprintf(out + k, n - k, "%s%s", k ? "," : "",
						      e->valuestring);
	} else
		snprintf(out, n, "-");
	for (char *p = out; *p; p++)
		if (*p == '\n' || *p == '\t')
			*p = ' ';
	/* timestamps: "2026-11-26T18:57:00.123" -> "2026-11-26 18:57:00.123" */
	if (strlen(out) > 19 && out[4] == '-' && out[10] == 'T')
		out[10] = ' ';
}

static int table(cJSON *rows, const column *cols, size_t ncols, char **text)
{
	aeth__buf b = AETH__BUF_INIT;
	cJSON *row;
	int rc = 0;

	for (size_t i = 0; i < ncols && rc == 0; i++)
		rc = aeth__buf_printf(&b, "%-*s%s", cols[i].width, cols[i].title,
				      i + 1 < ncols ? "  " : "\n");
	cJSON_ArrayForEach(row, rows) {
		for (size_t i = 0; i < ncols && rc == 0; i++) {
			char v[256];

			size_t w = cols[i].width ? (size_t)cols[i].width : sizeof(v) - 1;

			cell(row, cols[i].key, v, sizeof(v));
			/* a value cut to its column ends in '~' (the whole of
			 * it: -json) */
			if (strlen(v) > w || (!cols[i].width && strlen(v) == w))
				v[w - 1] = '~';
			rc = aeth__buf_printf(&b, "%-*.*s%s", cols[i].width, (int)w,
					      v, i + 1 < ncols ? "  " : "\n");
		}
	}
	if (rc == 0 && cJSON_GetArraySize(rows) == 0)
		rc = aeth__buf_printf(&b, "(none)\n");
	if (rc != 0) {
		aeth__buf_free(&b);
		return rc;
	}
	*text = aeth__buf_detach(&b, NULL);
	return 0;
}

static const char *str(cJSON *o, const char *key)
{
	cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* One stream of a vm:execute result, with what its flags say. */
static void render_stream(aeth__buf *b, cJSON *res, const char *name,
			  const char *text)
{
	char key[32];

	if (text && *text)
		aeth__buf_printf(b, "--- %s ---\n%s%s", name, text,
				 text[strlen(text) - 1] == '\n' ? "" : "\n");
	snprintf(key, sizeof(key), "%s_truncated", name);
	if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(res, key)))
		aeth__buf_printf(b, "[%s cut: the worker keeps 256 KiB]\n", name);
	snprintf(key, sizeof(key), "%s_b64", name);
	if (cJSON_GetObjectItemCaseSensitive(res, key))
		aeth__buf_printf(b, "[%s is not UTF-8: -json has its bytes in "
				 "%s_b64]\n", name, name);
}

static int task_text(cJSON *t, char **text)
{
	aeth__buf b = AETH__BUF_INIT;
	const char *type = str(t, "type"), *status = str(t, "status");
	cJSON *res = cJSON_GetObjectItemCaseSensitive(t, "result");
	cJSON *retry = cJSON_GetObjectItemCaseSensitive(t, "retry_count");

	aeth__buf_printf(&b, "Task %s (%s): %s", str(t, "id") ? str(t, "id") : "?",
			 type ? type : "?", status ? status : "?");
	if (str(t, "worker_id"))
		aeth__buf_printf(&b, " by worker %s", str(t, "worker_id"));
	if (cJSON_IsNumber(retry) && retry->valuedouble > 0)
		aeth__buf_printf(&b, " after %.0f retries", retry->valuedouble);
	aeth__buf_printf(&b, "\n");
	if (str(t, "error"))
		aeth__buf_printf(&b, "  Error: %s\n", str(t, "error"));
	if (cJSON_IsObject(res) && type && !strcmp(type, "vm:execute")) {
		cJSON *code = cJSON_GetObjectItemCaseSensitive(res, "exit_code");
		const char *so = str(res, "stdout"), *se = str(res, "stderr");

		cJSON *sig = cJSON_GetObjectItemCaseSensitive(res, "signal");
		cJSON *dur = cJSON_GetObjectItemCaseSensitive(res, "duration_ms");

		aeth__buf_printf(&b, "  Exit code: %.0f",
				 cJSON_IsNumber(code) ? code->valuedouble : -1.0);
		if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(res, "timed_out")))
			aeth__buf_printf(&b, " (timed out)");
		if (cJSON_IsNumber(sig))
			aeth__buf_printf(&b, " (signal %.0f)", sig->valuedouble);
		if (cJSON_IsNumber(dur))
			aeth__buf_printf(&b, ", %.0f ms", dur->valuedouble);
		aeth__buf_printf(&b, "\n");
		render_stream(&b, res, "stdout", so);
		render_stream(&b, res, "stderr", se);
	} else if (cJSON_IsObject(res)) {
		cJSON *f;

		cJSON_ArrayForEach(f, res) {
			char v[512];

			cell(res, f->string, v, sizeof(v));
			aeth__buf_printf(&b, "  %s: %s\n", f->string, v);
		}
	}
	*text = aeth__buf_detach(&b, NULL);
	return *text ? 0 : aeth__error_oom();
}

/* The registry (aeth_queue_worker_list()): the heartbeat's age as text. */
static int workers_table(cJSON *rows, char **text)
{
	cJSON *row;

	cJSON_ArrayForEach(row, rows) {
		cJSON *age = cJSON_GetObjectItemCaseSensitive(row, "age_ms");
		char ago[32];

		cJSON *pools = cJSON_GetObjectItemCaseSensitive(row, "pools"), *p;
		aeth__buf b = AETH__BUF_INIT;

		snprintf(ago, sizeof(ago), "%.1fs ago", cJSON_IsNumber(age) ?
			 age->valuedouble / 1000 : 0.0);
		cJSON_AddStringToObject(row, "seen_ago", ago);
		/* "small 3/4+1": ready of size, + booting */
		cJSON_ArrayForEach(p, pools) {
			const char *name = str(p, "name");
			cJSON *sz = cJSON_GetObjectItemCaseSensitive(p, "size");
			cJSON *rd = cJSON_GetObjectItemCaseSensitive(p, "ready");
			cJSON *bt = cJSON_GetObjectItemCaseSensitive(p, "booting");

			aeth__buf_printf(&b, "%s%s %.0f/%.0f", b.len ? ", " : "",
					 name ? name : "?",
					 cJSON_IsNumber(rd) ? rd->valuedouble : 0.0,
					 cJSON_IsNumber(sz) ? sz->valuedouble : 0.0);
			if (cJSON_IsNumber(bt) && bt->valuedouble > 0)
				aeth__buf_printf(&b, "+%.0f", bt->valuedouble);
		}
		cJSON_AddStringToObject(row, "pool_text", b.len ? b.data : "-");
		aeth__buf_free(&b);
	}
	return table(rows, worker_cols, AETH__ARRAY_LEN(worker_cols), text);
}

int aeth_client_render(char **text_out, const char *json, const char *what)
{
	cJSON *j = json ? cJSON_Parse(json) : NULL;
	int rc;

	*text_out = NULL;
	if (!j || !what)
		rc = aeth__error_set(AETH_EINVALID, "nothing to render: not JSON");
	else if (!strcmp(what, "vms") && cJSON_IsArray(j))
		rc = table(j, vm_cols, AETH__ARRAY_LEN(vm_cols), text_out);
	else if (!strcmp(what, "tasks") && cJSON_IsArray(j))
		rc = table(j, task_cols, AETH__ARRAY_LEN(task_cols), text_out);
	else if (!strcmp(what, "workers") && cJSON_IsArray(j))
		rc = workers_table(j, text_out);
	else if (!strcmp(what, "task") && cJSON_IsObject(j))
		rc = task_text(j, text_out);
	else
		rc = aeth__error_set(AETH_EINVALID, "cannot render \"%s\" from this "
				     "JSON", what);
	cJSON_Delete(j);
	return rc;
}

int aeth_task_exit_status(const char *task_json)
{
	cJSON *j = task_json ? cJSON_Parse(task_json) : NULL;
	cJSON *res = cJSON_GetObjectItemCaseSensitive(j, "result");
	const char *status = str(j, "status"), *type = str(j, "type");
	int code = 1;

	if (status && !strcmp(status, "completed")) {
		code = 0;
		if (type && !strcmp(type, "vm:execute")) {
			cJSON *c = cJSON_GetObjectItemCaseSensitive(res, "exit_code");

			code = cJSON_IsNumber(c) ? (int)c->valuedouble & 0xff : 1;
		}
	}
	cJSON_Delete(j);
	return code;
}
