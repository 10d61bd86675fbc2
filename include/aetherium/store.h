/*
 * aetherium/store.h - PostgreSQL persistence of VMs, tasks and executions.
 *
 * Tables as in the original demo (every column kept) plus a few more; see
 * docs/store.md and migrations/. Times are milliseconds since the Unix
 * epoch (UTC), 0 for NULL. JSON columns are passed as JSON text and
 * checked: invalid JSON gives AETH_EINVALID naming the column. Text longer
 * than its column (name 255, command 500, ...) gives AETH_EINVALID naming
 * the field and the limit.
 *
 * This header reads: connect, migrate, get and list rows. The rows are
 * written by the worker and the submit client (and, for tools and tests,
 * through the unstable aetherium/unstable/store.h): a row written from
 * elsewhere can break the worker's task states and the ledger's rules
 * (docs/queue.md, "Ledger and transport").
 *
 * Ownership: records that the library returns (get, list) belong to the
 * caller and are freed with the matching *_free function, which frees the
 * strings inside too.
 *
 * Records start with `unsigned int version` (docs/api.md): one the caller
 * fills starts from AETH_STORE_X_INIT or aeth_store_x_init(); one the
 * library returns carries the version it filled (fields are only
 * appended, so a program reads those its version has).
 *
 * Thread safety: an aeth_store is one database connection and must be
 * used by one thread at a time (open one per thread, or lock). Different
 * handles may be used from different threads at once.
 */
#ifndef AETHERIUM_STORE_H
#define AETHERIUM_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "common.h"

AETH_BEGIN_DECLS

typedef struct aeth_store aeth_store;

/**
 * Connect to PostgreSQL. `url` is a libpq URL or "key=value" string; NULL
 * means $AETH_DATABASE_URL, else postgresql://aetherium@127.0.0.1:5432/aetherium.
 * On success *out belongs to the caller (aeth_store_free()). A server that
 * cannot be reached gives AETH_EUNAVAILABLE with a message naming where it
 * tried and how to start the development server.
 */
AETH_API int aeth_store_open(aeth_store **out, const char *url);

/**
 * Apply the migrations built into the library that the database lacks, in
 * order, each in its own transaction, under a PostgreSQL advisory lock, and
 * record them in schema_migrations. Safe to run again and from several
 * processes at once. A database with a migration newer than this library
 * knows gives AETH_ESTATE (a newer aetherium migrated it).
 */
AETH_API int aeth_store_migrate(aeth_store *store);

/** The highest applied migration (0 if none) into *version. */
AETH_API int aeth_store_schema_version(int *version, aeth_store *store);

/** Close the connection. NULL is accepted. */
AETH_API void aeth_store_free(aeth_store *store);

/* ---- VMs: status creating|running|stopped|failed|deleted ---------------- */

typedef struct {
	unsigned int version; /**< AETH_STORE_VM_VERSION */
	char id[37];         /**< UUID; insert makes one when empty */
	char *name;          /**< required, <= 255 */
	char *orchestrator;  /**< backend name, required, <= 50 */
	char *status;        /**< NULL on insert: "creating" */
	char *kernel_path;   /**< <= 500, may be NULL */
	char *rootfs_path;   /**< <= 500, may be NULL */
	char *socket_path;   /**< <= 500, may be NULL */
	int vcpu_count;      /**< 0: NULL */
	int memory_mb;       /**< 0: NULL */
	int64_t created_at_ms;
	int64_t started_at_ms; /**< set when status becomes running */
	int64_t stopped_at_ms; /**< set when stopped, failed or deleted */
	int64_t updated_at_ms;
	char *metadata;      /**< JSON text or NULL */
	char *owner_worker;  /**< worker id owning the VM, <= 255, may be NULL */
	char *error;         /**< last failure, may be NULL */
} aeth_store_vm;

#define AETH_STORE_VM_VERSION 1
#define AETH_STORE_VM_INIT {AETH_STORE_VM_VERSION, "", NULL, NULL, NULL, NULL, \
	NULL, NULL, 0, 0, 0, 0, 0, 0, NULL, NULL, NULL}

/** Initialise `vm` for `version` as AETH_STORE_VM_INIT does. 0, or
 *  AETH_EINVALID (NULL, or a version this library does not know). */
AETH_API int aeth_store_vm_init(aeth_store_vm *vm, unsigned int version);

/**
 * Filter for the list functions: NULL/0 fields do not filter. `worker`
 * matches vms.owner_worker / tasks.worker_id; `vm_id` tasks.vm_id /
 * executions.vm_id. Newest first; `limit` 0 means 1000 (at most 10000).
 */
typedef struct {
	unsigned int version; /**< AETH_STORE_FILTER_VERSION */
	const char *status;
	const char *type;    /**< tasks only */
	const char *worker;
	const char *vm_id;
	const char *task_id; /**< executions only */
	unsigned int limit;
} aeth_store_filter;

#define AETH_STORE_FILTER_VERSION 1
#define AETH_STORE_FILTER_INIT \
	{AETH_STORE_FILTER_VERSION, NULL, NULL, NULL, NULL, NULL, 0}

/**
 * Initialise `filter` for `version` (AETH_STORE_FILTER_VERSION, or an
 * older one a program was written for) as AETH_STORE_FILTER_INIT does.
 * 0, or AETH_EINVALID (NULL, or a version this library does not know).
 */
AETH_API int aeth_store_filter_init(aeth_store_filter *filter,
				    unsigned int version);

/** The VM with `id` into *out (caller's; aeth_store_vm_free()).
 * Unknown: AETH_ENOTFOUND. */
AETH_API int aeth_store_vm_get(aeth_store_vm **out, aeth_store *store,
			       const char *id);

/**
 * VMs matching `filter` (NULL: all, newest first) into *out, a
 * NULL-terminated array (caller's; aeth_store_vm_list_free()), and their
 * number into *count (may be NULL).
 */
AETH_API int aeth_store_vm_list(aeth_store_vm ***out, size_t *count,
				aeth_store *store,
				const aeth_store_filter *filter);

/** Free one record (NULL accepted). */
AETH_API void aeth_store_vm_free(aeth_store_vm *vm);

/** Free a list and its records (NULL accepted). */
AETH_API void aeth_store_vm_list_free(aeth_store_vm **list);

/* ---- Tasks: status pending|running|completed|failed|retrying|dead ------- */

typedef struct {
	unsigned int version; /**< AETH_STORE_TASK_VERSION */
	char id[37];        /**< UUID (the queue's task id); made when empty */
	char *type;         /**< "vm:create", ...; required, <= 100 */
	char *status;       /**< NULL on insert: "pending" */
	int priority;
	char *payload;      /**< JSON text, required */
	char *result;       /**< JSON text or NULL */
	char *error;
	char vm_id[37];     /**< empty: NULL; must name an existing VM */
	char *worker_id;    /**< <= 255 */
	int max_retries;
	int retry_count;
	int64_t created_at_ms;
	int64_t scheduled_at_ms; /**< 0 on insert: now */
	int64_t started_at_ms;   /**< set when status becomes running */
	int64_t completed_at_ms; /**< set when completed, failed or dead */
	int64_t updated_at_ms;
	char *metadata;     /**< JSON text or NULL */
	char *queue;        /**< queue name, <= 100, may be NULL */
	int64_t timeout_ms; /**< 0: NULL */
} aeth_store_task;

#define AETH_STORE_TASK_VERSION 1
#define AETH_STORE_TASK_INIT {AETH_STORE_TASK_VERSION, "", NULL, NULL, 0, \
	NULL, NULL, NULL, "", NULL, 0, 0, 0, 0, 0, 0, 0, NULL, NULL, 0}

/** Initialise `task` for `version` as AETH_STORE_TASK_INIT does. 0, or
 *  AETH_EINVALID (NULL, or a version this library does not know). */
AETH_API int aeth_store_task_init(aeth_store_task *task, unsigned int version);

/** The task with `id` into *out (caller's; aeth_store_task_free()). */
AETH_API int aeth_store_task_get(aeth_store_task **out, aeth_store *store,
				 const char *id);

/** Tasks matching `filter`; as aeth_store_vm_list(). */
AETH_API int aeth_store_task_list(aeth_store_task ***out, size_t *count,
				  aeth_store *store,
				  const aeth_store_filter *filter);

AETH_API void aeth_store_task_free(aeth_store_task *task);
AETH_API void aeth_store_task_list_free(aeth_store_task **list);

/* ---- Executions: one command run in a VM ------------------------------- */

typedef struct {
	unsigned int version; /**< AETH_STORE_EXECUTION_VERSION */
	char id[37];        /**< made when empty */
	char job_id[37];    /**< empty: NULL */
	char vm_id[37];     /**< empty: NULL; must name an existing VM */
	char task_id[37];   /**< empty: NULL; must name an existing task */
	char *command;      /**< required, <= 500 */
	char *args;         /**< JSON text (array) or NULL */
	char *env;          /**< JSON text (object) or NULL */
	int has_exit_code;  /**< 0: exit_code is NULL (still running, or error) */
	int exit_code;
	char *stdout_data;  /**< the stdout column */
	char *stderr_data;  /**< the stderr column */
	char *error;
	int64_t started_at_ms;   /**< 0 on insert: now */
	int64_t completed_at_ms;
	int duration_ms;
	char *metadata;     /**< JSON text or NULL */
} aeth_store_execution;

#define AETH_STORE_EXECUTION_VERSION 1
#define AETH_STORE_EXECUTION_INIT {AETH_STORE_EXECUTION_VERSION, "", "", "", \
	"", NULL, NULL, NULL, 0, 0, NULL, NULL, NULL, 0, 0, 0, NULL}

/** Initialise `exec` for `version` as AETH_STORE_EXECUTION_INIT does. 0,
 *  or AETH_EINVALID (NULL, or a version this library does not know). */
AETH_API int aeth_store_execution_init(aeth_store_execution *exec,
				       unsigned int version);

AETH_API int aeth_store_execution_get(aeth_store_execution **out,
				      aeth_store *store, const char *id);

/** Executions matching `filter` (vm_id, task_id, limit; oldest first). */
AETH_API int aeth_store_execution_list(aeth_store_execution ***out,
				       size_t *count, aeth_store *store,
				       const aeth_store_filter *filter);

AETH_API void aeth_store_execution_free(aeth_store_execution *exec);
AETH_API void aeth_store_execution_list_free(aeth_store_execution **list);

AETH_END_DECLS

#endif
