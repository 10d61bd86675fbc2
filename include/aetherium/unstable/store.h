/*
 * aetherium/unstable/store.h - writing rows of vms, tasks and executions.
 *
 * UNSTABLE: these functions may change or go in any release, without a
 * soname change; they are not part of the ABI promise of docs/api.md and
 * the symbol list (lib/aetherium.sym) lists them apart. They are what the
 * worker and the submit client use inside the library, exported for tools
 * and tests. A row written here bypasses the worker's task states and the
 * ledger's rules (docs/queue.md, "Ledger and transport"): a program that
 * submits and runs tasks uses aeth_client_submit() and aeth_worker_run().
 * Define AETH_UNSTABLE before including it, to say you know.
 *
 * Records passed in are only read, except that insert fills in `id` (when
 * empty) and the time it set (`created_at_ms`, `scheduled_at_ms`,
 * `started_at_ms`). Threads: as aetherium/store.h (one handle, one thread).
 */
#ifndef AETHERIUM_UNSTABLE_STORE_H
#define AETHERIUM_UNSTABLE_STORE_H

#ifndef AETH_UNSTABLE
#error "aetherium/unstable/store.h is not a stable API: define AETH_UNSTABLE to use it"
#endif

#include "../store.h"

AETH_BEGIN_DECLS

/** Insert a VM row. Fills vm->id when empty and vm->created_at_ms.
 * Existing id: AETH_EEXISTS. */
AETH_API int aeth_store_vm_insert(aeth_store *store, aeth_store_vm *vm);

/**
 * Set the status (and updated_at); "running" sets started_at, "stopped"
 * and "failed" set stopped_at, "deleted" sets it if not yet set. `error`
 * replaces vms.error (NULL clears it). Unknown id: AETH_ENOTFOUND.
 */
AETH_API int aeth_store_vm_set_status(aeth_store *store, const char *id,
				      const char *status, const char *error);

/**
 * Rewrite the descriptive columns of vm->id from `vm`: name, orchestrator,
 * kernel/rootfs/socket paths, vcpu_count, memory_mb, metadata,
 * owner_worker (status, error and times are left alone).
 */
AETH_API int aeth_store_vm_update(aeth_store *store, const aeth_store_vm *vm);

/** Insert a task row. Unknown vm_id: AETH_ENOTFOUND; existing id:
 * AETH_EEXISTS; invalid payload JSON: AETH_EINVALID. */
AETH_API int aeth_store_task_insert(aeth_store *store, aeth_store_task *task);

/** Status "running", started_at now, worker_id and retry_count, at once. */
AETH_API int aeth_store_task_start(aeth_store *store, const char *id,
				   const char *worker_id, int retry_count);

/**
 * The end of an attempt, at once: status (completed|failed|retrying|dead),
 * result JSON (NULL: unchanged), error (NULL clears it) and completed_at
 * for final states.
 */
AETH_API int aeth_store_task_finish(aeth_store *store, const char *id,
				    const char *status, const char *result_json,
				    const char *error);

/** Insert an execution (typically when the command starts; fields given
 * here such as exit_code are stored as they are). */
AETH_API int aeth_store_execution_insert(aeth_store *store,
					 aeth_store_execution *exec);

/**
 * Record the end of an execution: exit code (has_exit_code 0: NULL),
 * output, error, completed_at now and duration_ms from started_at.
 */
AETH_API int aeth_store_execution_finish(aeth_store *store, const char *id,
					 int has_exit_code, int exit_code,
					 const char *stdout_data,
					 const char *stderr_data,
					 const char *error);

AETH_END_DECLS

#endif
