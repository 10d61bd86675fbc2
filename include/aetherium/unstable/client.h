/*
 * aetherium/unstable/client.h - the text aeth-submit prints.
 *
 * UNSTABLE: these functions may change or go in any release, without a
 * soname change; they are not part of the ABI promise of docs/api.md and
 * the symbol list (lib/aetherium.sym) lists them apart. They render the
 * JSON of aeth_client_task(), aeth_client_list() and aeth_client_wait()
 * the way the CLI shows it (its column widths and wording change with
 * the CLI); programs read the JSON. Define AETH_UNSTABLE before including
 * it, to say you know. Thread safety: no shared state.
 */
#ifndef AETHERIUM_UNSTABLE_CLIENT_H
#define AETHERIUM_UNSTABLE_CLIENT_H

#ifndef AETH_UNSTABLE
#error "aetherium/unstable/client.h is not a stable API: define AETH_UNSTABLE to use it"
#endif

#include <stddef.h>

#include "../common.h"
#include "../task.h"

AETH_BEGIN_DECLS

/**
 * Text for humans from the client's JSON (aetherium/task.h): `what`
 * "vms", "tasks" or "workers" gives a table of aeth_client_list()'s
 * array, "task" a summary of one task (for vm:execute its stdout and
 * stderr as printed by the command). *text_out is the caller's
 * (aeth_free()). AETH_EINVALID for JSON of another shape.
 */
AETH_API int aeth_client_render(char **text_out, const char *json,
				const char *what);

/**
 * The exit status a CLI should end with for a finished task's JSON: the
 * command's exit code for a completed vm:execute, 0 for other completed
 * tasks, 1 for a failed one.
 */
AETH_API int aeth_task_exit_status(const char *task_json);

/**
 * As aeth_client_submit_execute(), with "live_output": true in the
 * payload: the worker publishes the command's output while it runs, for
 * aeth_client_follow() and the gateway's streams (docs/gateway.md). The
 * same as aeth_client_submit_execute_ex() with only `live_output` set in
 * its options, which take the command's other fields too (env, cwd,
 * stdin, timeout, idempotency key).
 */
AETH_API int aeth_client_submit_execute_live(char task_id_out[37],
					     aeth_client *c, const char *vm_id,
					     const char *command,
					     const char *const *args,
					     const aeth_submit_options *opts);

/** A piece of a command's output: `stream` 1 stdout, 2 stderr. */
typedef void (*aeth_output_cb)(int stream, const char *data, size_t len,
			       void *userdata);

/**
 * Follow the live output of a vm:execute submitted with live output,
 * calling `cb` for each piece as the worker publishes it, until the
 * command ended (or the task ended without running it). timeout_ms 0
 * waits for good; AETH_ETIMEOUT when it did not end in time. Then
 * aeth_client_wait() gives the task's final row.
 */
AETH_API int aeth_client_follow(aeth_client *c, const char *task_id,
				unsigned int timeout_ms, aeth_output_cb cb,
				void *userdata);

AETH_END_DECLS

#endif
