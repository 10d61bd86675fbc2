/*
 * lib/common/log.c - the log callback. Set once at start-up (see log.h),
 * read by any thread afterwards.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <pthread.h>
#include <stdatomic.h>

#include "internal.h"

static aeth_log_cb log_cb;
static void *log_userdata;
static aeth_log_level log_min = AETH_LOG_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error",
					  "off"};

void aeth_log_set(aeth_log_cb cb, aeth_log_level min_level, void *userdata)
{
	log_cb = cb;
	log_min = min_level;
	log_userdata = userdata;
}

int aeth_log_level_parse(const char *name)
{
	if (!name)
		return -1;
	for (size_t i = 0; i < AETH__ARRAY_LEN(level_names); i++)
		if (strcmp(name, level_names[i]) == 0)
			return (int)i;
	if (strcmp(name, "warning") == 0)
		return AETH_LOG_WARN;
	return -1;
}

/* --- context and format (docs/metrics.md, "Structured logs") --------- */

#define CTX_MAX 72
static pthread_mutex_t default_mu = PTHREAD_MUTEX_INITIALIZER;
static char default_worker[CTX_MAX];
static _Thread_local char ctx_worker[CTX_MAX], ctx_task[CTX_MAX],
	ctx_vm[CTX_MAX];
static atomic_int format_json;

static void ctx_copy(char *dst, const char *src)
{
	snprintf(dst, CTX_MAX, "%s", src ? src : "");
}

void aeth__log_worker_default(const char *worker_id)
{
	pthread_mutex_lock(&default_mu);
	ctx_copy(default_worker, worker_id);
	pthread_mutex_unlock(&default_mu);
}

void aeth__log_ctx_worker(const char *worker_id) { ctx_copy(ctx_worker, worker_id); }
void aeth__log_ctx_task(const char *task_id) { ctx_copy(ctx_task, task_id); }
const char *aeth__log_ctx_task_get(void) { return ctx_task; }
void aeth__log_ctx_vm(const char *vm_id) { ctx_copy(ctx_vm, vm_id); }
void aeth__log_set_json(bool json) { atomic_store(&format_json, json ? 1 : 0); }
bool aeth__log_json(void) { return atomic_load(&format_json) != 0; }

/* A JSON string: quotes, backslash and control characters escaped; other
 * bytes (UTF-8) as they are. */
static void json_string(aeth__buf *b, const char *s)
{
	aeth__buf_append(b, "\"", 1);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			aeth__buf_printf(b, "\\%c", *p);
		else if (*p == '\n')
			aeth__buf_append(b, "\\n", 2);
		else if (*p < 0x20 || *p == 0x7f)
			aeth__buf_printf(b, "\\u%04x", *p);
		else
			aeth__buf_append(b, p, 1);
	}
	aeth__buf_append(b, "\"", 1);
}

void aeth__log_format_line(aeth__buf *b, const char *level, const char *message)
{
	struct timespec ts;
	struct tm tm;
	char secs[32], stamp[48], worker[CTX_MAX];

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(secs, sizeof(secs), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(stamp, sizeof(stamp), "%s.%03ldZ", secs,
		 (long)(ts.tv_nsec / 1000000L));
	if (ctx_worker[0]) {
		memcpy(worker, ctx_worker, CTX_MAX);
	} else {
		pthread_mutex_lock(&default_mu);
		memcpy(worker, default_worker, CTX_MAX);
		pthread_mutex_unlock(&default_mu);
	}
	if (aeth__log_json()) {
		aeth__buf_printf(b, "{\"time\":\"%s\",\"level\":", stamp);
		json_string(b, level);
		if (worker[0]) {
			aeth__buf_printf(b, ",\"worker\":");
			json_string(b, worker);
		}
		if (ctx_task[0]) {
			aeth__buf_printf(b, ",\"task_id\":");
			json_string(b, ctx_task);
		}
		if (ctx_vm[0]) {
			aeth__buf_printf(b, ",\"vm_id\":");
			json_string(b, ctx_vm);
		}
		aeth__buf_printf(b, ",\"message\":");
		json_string(b, message);
		aeth__buf_printf(b, "}");
		return;
	}
	aeth__buf_printf(b, "%s %-5s", stamp, level);
	if (worker[0])
		aeth__buf_printf(b, " worker=%s", worker);
	if (ctx_task[0])
		aeth__buf_printf(b, " task=%s", ctx_task);
	if (ctx_vm[0])
		aeth__buf_printf(b, " vm=%s", ctx_vm);
	aeth__buf_printf(b, " %s", message);
}

void aeth_log_stderr(aeth_log_level level, const char *message,
		     void *userdata)
{
	aeth__buf b = AETH__BUF_INIT;

	(void)userdata;
	aeth__log_format_line(&b, level < AETH_LOG_OFF ? level_names[level] : "?",
			      message);
	aeth__buf_append(&b, "\n", 1);
	if (b.data)
		fputs(b.data, stderr);
	aeth__buf_free(&b);
}

bool aeth__log_enabled(aeth_log_level level)
{
	return log_cb != NULL && level >= log_min && level < AETH_LOG_OFF;
}

void aeth__log(aeth_log_level level, const char *fmt, ...)
{
	char msg[2048], shown[4096];
	va_list ap;

	if (!aeth__log_enabled(level))
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* messages quote names, commands and guest output: no control
	 * character of theirs reaches the log as is */
	aeth__escape_text(shown, sizeof(shown), msg, true);
	log_cb(level, shown, log_userdata);
}
