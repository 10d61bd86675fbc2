/*
 * lib/common/log.c - the log callback. Set once at start-up (see log.h),
 * read by any thread afterwards.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

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

void aeth_log_stderr(aeth_log_level level, const char *message,
		     void *userdata)
{
	struct timespec ts;
	struct tm tm;
	char stamp[32];

	(void)userdata;
	clock_gettime(CLOCK_REALTIME, &ts);
	localtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%H:%M:%S", &tm);
	fprintf(stderr, "%s.%03ld %-5s %s\n", stamp, ts.tv_nsec / 1000000L,
		level < AETH_LOG_OFF ? level_names[level] : "?", message);
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
