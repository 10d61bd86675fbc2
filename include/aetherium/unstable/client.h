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

#include "../common.h"

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

AETH_END_DECLS

#endif
