/*
 * aetherium/task.h - the task types of the distributed demo and helpers
 * for submitting them.
 *
 * Task types (payload -> result), as in the seed's demo:
 *   "vm:create"   {"name", "vcpus", "memory_mb"}
 *                 -> {"vm_id", "name", "status": "running"}
 *   "vm:execute"  {"vm_id", "command", "args": [...]} and optionally
 *                 "env": {"K": "V"}, "cwd": "/abs", "timeout_ms": N, "stdin": "..."
 *                 -> {"vm_id", "exit_code", "stdout", "stderr"}
 *   "vm:delete"   {"vm_id"} -> {"vm_id", "status": "deleted"}
 * docs/worker.md describes them in full.
 *
 * Thread safety: the functions here keep no shared state and may be
 * called from any thread.
 */
#ifndef AETHERIUM_TASK_H
#define AETHERIUM_TASK_H

#include <stddef.h>

#include "common.h"

AETH_BEGIN_DECLS

/**
 * Split `line` into words the way a POSIX shell splits the words of a
 * simple command, without expanding anything: blanks separate words,
 * '...' keeps its contents literally, "..." keeps its contents except for
 * the escapes \" \\ \$ \` and \<newline>, a backslash outside quotes takes
 * the next character literally, and adjacent parts join into one word
 * ("a'b c'd" is the one word "ab cd"; '' is an empty word). $VAR, *, ~ are
 * plain characters. This is how aeth-submit splits -args.
 *
 * On success *argv_out is a NULL-terminated array (empty for a blank
 * line) that belongs to the caller: free it with aeth_strarray_free().
 * If `argc_out` is not NULL it receives the number of words.
 * Returns 0, AETH_EINVALID for an unterminated quote or a trailing lone
 * backslash (the message says where), AETH_ETOOBIG beyond 1 MiB of input
 * or 4096 words, or AETH_ENOMEM. `line` NULL counts as empty.
 */
AETH_API int aeth_args_split(const char *line, char ***argv_out,
			     size_t *argc_out);

/**
 * Check a task payload (JSON text of `len` bytes) for the task type
 * `type` ("vm:create", "vm:execute", "vm:delete"). Returns 0 if the
 * worker would accept it, AETH_EINVALID with a message naming the field
 * and the problem (or the unknown type), or AETH_ETOOBIG.
 */
AETH_API int aeth_task_payload_validate(const char *type, const char *json,
					size_t len);

AETH_END_DECLS

#endif
