/*
 * lib/queue/queue_output.h - live output of running tasks and the cancel
 * mark of a running one, in Redis (lib/queue/output.c; docs/gateway.md).
 *
 * A task's output is a Redis stream "{<ns>:<task id>}:out" of entries
 * {k: "o" | "e" | "x", d: bytes}: stdout, stderr, and last the end
 * ("x", JSON {"exit_code": N} or {"error": "..."}). The stream is bounded
 * (MAXLEN ~ AETH__OUT_MAXLEN entries) and expires (AETH__OUT_TTL_S after
 * its last entry), so a reader that comes late or never does costs
 * nothing for long. Workers append, the gateway reads (XREAD BLOCK).
 */
#ifndef AETH_QUEUE_OUTPUT_H
#define AETH_QUEUE_OUTPUT_H

#include <stdbool.h>
#include <stddef.h>

#include "aetherium/queue.h"

#define AETH__OUT_MAXLEN 4096
#define AETH__OUT_TTL_S 600

/* Append one entry of `kind` ('o', 'e', 'x') to the stream of `task_id`. */
int aeth__queue_output_append(aeth_queue *q, const char *task_id, char kind,
			      const void *data, size_t len);

typedef void (*aeth__output_cb)(char kind, const char *data, size_t len,
				void *userdata);

/*
 * Entries after `last_id` ("0" for the start; updated to the last one
 * read, room for 48 bytes), waiting up to block_ms for the first: the
 * number read (0 when none came), or a negative error.
 */
int aeth__queue_output_read(aeth_queue *q, const char *task_id,
			    char last_id[48], unsigned int block_ms,
			    aeth__output_cb cb, void *userdata);

/* Ask the worker running `task_id` to cancel it (a mark it looks at
 * while the task runs; kept an hour). */
int aeth__queue_cancel_mark(aeth_queue *q, const char *task_id);
/* 1 when `task_id` was marked, 0 when not, or a negative error. */
int aeth__queue_cancel_marked(aeth_queue *q, const char *task_id);

#endif
