/*
 * lib/common/error.c - thread-local last error.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

#define ERROR_MSG_MAX 1024

static _Thread_local struct {
	int code;
	char msg[ERROR_MSG_MAX];
} last_error;

static const char *const code_text[] = {
	"ok",                   /* AETH_OK */
	"error",                /* AETH_ERROR */
	"not found",            /* AETH_ENOTFOUND */
	"timed out",            /* AETH_ETIMEOUT */
	"busy",                 /* AETH_EBUSY */
	"invalid argument",     /* AETH_EINVALID */
	"unavailable",          /* AETH_EUNAVAILABLE */
	"out of memory",        /* AETH_ENOMEM */
	"protocol error",       /* AETH_EPROTO */
	"already exists",       /* AETH_EEXISTS */
	"cancelled",            /* AETH_ECANCELLED */
	"too big",              /* AETH_ETOOBIG */
	"I/O error",            /* AETH_EIO */
	"wrong state",          /* AETH_ESTATE */
};

const char *aeth_strerror(int code)
{
	if (code > 0 || (size_t)-code >= AETH__ARRAY_LEN(code_text))
		return "unknown error";
	return code_text[-code];
}

const char *aeth_error_last(void)
{
	return last_error.code == AETH_OK && last_error.msg[0] == '\0'
		       ? "no error"
		       : last_error.msg;
}

int aeth_error_last_code(void)
{
	return last_error.code;
}

void aeth_error_clear(void)
{
	last_error.code = AETH_OK;
	last_error.msg[0] = '\0';
}

void aeth__error_save(aeth__error_saved *s)
{
	_Static_assert(sizeof(s->msg) == ERROR_MSG_MAX, "same size as msg");
	s->code = last_error.code;
	memcpy(s->msg, last_error.msg, sizeof(s->msg));
}

void aeth__error_restore(const aeth__error_saved *s)
{
	last_error.code = s->code;
	memcpy(last_error.msg, s->msg, sizeof(last_error.msg));
}

static int error_vset(int code, const char *suffix, const char *fmt,
		      va_list ap)
{
	char tmp[ERROR_MSG_MAX];

	/* Format into a scratch buffer: fmt's arguments may point into msg. */
	vsnprintf(tmp, sizeof(tmp), fmt, ap);
	/* Truncation is accepted: a message is capped at ERROR_MSG_MAX. */
	size_t n = strlen(tmp);

	memcpy(last_error.msg, tmp, n + 1);
	if (suffix && n + 2 < sizeof(last_error.msg)) {
		memcpy(last_error.msg + n, ": ", 3);
		n += 2;
		size_t room = sizeof(last_error.msg) - n - 1;
		size_t sl = strlen(suffix);
		if (sl > room)
			sl = room;
		memcpy(last_error.msg + n, suffix, sl);
		last_error.msg[n + sl] = '\0';
	}
	last_error.code = code;
	return code;
}

int aeth__error_set(int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	error_vset(code, NULL, fmt, ap);
	va_end(ap);
	return code;
}

int aeth__error_errno(int code, const char *fmt, ...)
{
	char errbuf[256];
	int saved = errno;
	va_list ap;

	snprintf(errbuf, sizeof(errbuf), "%s", strerror(saved));
	va_start(ap, fmt);
	error_vset(code, errbuf, fmt, ap);
	va_end(ap);
	errno = saved;
	return code;
}

int aeth__error_wrap(int code, const char *fmt, ...)
{
	char old[ERROR_MSG_MAX];
	va_list ap;

	snprintf(old, sizeof(old), "%s", last_error.msg);
	va_start(ap, fmt);
	error_vset(code, old[0] ? old : NULL, fmt, ap);
	va_end(ap);
	return code;
}

int aeth__error_oom(void)
{
	return aeth__error_set(AETH_ENOMEM, "out of memory");
}
