/*
 * lib/vm/qmp.h - a minimal QEMU Machine Protocol client over a Unix socket,
 * with deadlines (absolute, aeth__now_ms clock). One command at a time.
 */
#ifndef AETH_VM_QMP_H
#define AETH_VM_QMP_H

#include <stdint.h>

/* Connect, read the greeting, negotiate capabilities. Returns an fd
 * (caller closes) or a negative code; retries connect until deadline. */
int aeth__qmp_open(const char *path, int64_t deadline_ms);

/*
 * Run `execute` (e.g. "query-status"); events are skipped. On success
 * *reply_out (if not NULL) gets the "return" value as JSON text
 * (malloc'd). A QMP "error" reply gives AETH_ERROR with its desc.
 */
int aeth__qmp_execute(int fd, const char *execute, int64_t deadline_ms,
		      char **reply_out);
/* The same with an "arguments" object (JSON text the caller built from
 * trusted values), e.g. "{\"id\":\"ser0\"}"; NULL = none. */
int aeth__qmp_execute_args(int fd, const char *execute, const char *args_json,
			   int64_t deadline_ms, char **reply_out);
/* The same, handing QEMU the descriptor `passfd` with the command (for
 * "getfd"); passfd < 0: none. */
int aeth__qmp_execute_fd(int fd, const char *execute, const char *args_json,
			 int passfd, int64_t deadline_ms, char **reply_out);

#endif
