/*
 * aetherium/log.h - where the library's diagnostics go.
 *
 * The library never prints on its own: by default messages are dropped.
 * A program installs a callback (the CLIs install one that writes to
 * stderr). The callback may be called from any thread the library uses,
 * so it must be thread-safe.
 */
#ifndef AETHERIUM_LOG_H
#define AETHERIUM_LOG_H

#include "common.h"

AETH_BEGIN_DECLS

typedef enum {
	AETH_LOG_DEBUG = 0,
	AETH_LOG_INFO = 1,
	AETH_LOG_WARN = 2,
	AETH_LOG_ERROR = 3,
	AETH_LOG_OFF = 4
} aeth_log_level;

typedef void (*aeth_log_cb)(aeth_log_level level, const char *message,
			    void *userdata);

/**
 * Install the log callback (NULL removes it) and the lowest level passed
 * to it. Call before other threads use the library.
 */
AETH_API void aeth_log_set(aeth_log_cb cb, aeth_log_level min_level,
			   void *userdata);

/** A ready-made callback writing "LEVEL message\n" to stderr. */
AETH_API void aeth_log_stderr(aeth_log_level level, const char *message,
			      void *userdata);

/** Parse "debug", "info", "warn", "error", "off"; -1 if unknown. */
AETH_API int aeth_log_level_parse(const char *name);

AETH_END_DECLS

#endif
