/*
 * aetherium/worker.h - the worker run loop: take tasks from the Redis
 * queue, run the handler registered for their type, record every state
 * change in PostgreSQL and hand the result back through the queue.
 *
 * A worker runs `concurrency` slots, each a thread with its own queue and
 * store connection (those handles are single-threaded). Each slot takes
 * tasks first from the worker's own queue "worker:<id>" (where the tasks
 * for VMs this worker owns are routed), then from the shared queues by
 * weight. While a task runs its lease is extended (heartbeat) so no other
 * worker takes it; if this process dies the lease expires and another
 * worker runs the task again (at-least-once).
 *
 * Built-in handlers (aeth_worker_handle_builtin()) implement the seed's
 * vm:create, vm:execute and vm:delete (see task.h and docs/worker.md).
 *
 * Threading: aeth_worker_new/handle/run/free are called from one thread.
 * aeth_worker_stop() may be called from any thread and from a signal
 * handler. Handlers run on the slot threads, several at once.
 */
#ifndef AETHERIUM_WORKER_H
#define AETHERIUM_WORKER_H

#include "common.h"
#include "config.h"

AETH_BEGIN_DECLS

typedef struct aeth_worker aeth_worker;

/** One task being run, handed to a handler. Valid during the call only. */
typedef struct aeth_task aeth_task;

/**
 * Runs one task. Return 0 on success (after aeth_task_set_result(), or
 * the result is JSON null) or a negative AETH_E* code on failure. A
 * failure is retried (with backoff, up to the task's max_retries) unless
 * the handler called aeth_task_fail() with retryable 0 or the code is
 * AETH_EINVALID, AETH_ENOTFOUND or AETH_ESTATE, which retrying cannot
 * fix. The error text is aeth_task_fail()'s message, else
 * aeth_error_last() of the slot thread.
 */
typedef int (*aeth_task_handler)(aeth_task *task, void *userdata);

/** A line of progress for humans ("Creating VM: ...", "Task ... completed
 *  in 3.2s"). `task_id` is NULL for worker-wide lines. Called from any
 *  slot thread, so it must be thread-safe. */
typedef void (*aeth_worker_event_cb)(const char *task_id, const char *line,
				     void *userdata);

/** Options of aeth_worker_new(). NULL / 0 fields take the default given,
 *  which comes from the environment (AETH_DATABASE_URL, AETH_REDIS_URL,
 *  AETH_WORKER_ID) when it is named. Strings are copied. */
typedef struct {
	unsigned int version;      /**< AETH_WORKER_OPTIONS_VERSION */
	const char *id;            /**< default $AETH_WORKER_ID, else hostname-pid-random */
	const char *database_url;  /**< default $AETH_DATABASE_URL */
	const char *redis_url;     /**< default $AETH_REDIS_URL */
	const char *redis_ns;      /**< queue key namespace; default "aeth" */
	unsigned int concurrency;  /**< slots, 1..256; 0 = `config`'s queue.concurrency (default 10) */
	/** Shared queues and weights, "critical=6,high=5,default=3,low=1"
	 *  (a name without "=N" weighs 1); default "default". */
	const char *queues;
	/** queue lease; 0 = $AETH_WORKER_LEASE_MS or 30000; heartbeat every
	 *  third of it. A dead worker's task runs elsewhere after this. */
	unsigned int lease_ms;
	unsigned int grace_ms;     /**< shutdown grace for running tasks; 0 = `config`'s
				      worker.shutdown_timeout_ms (default 30000) */
	const char *backend;       /**< VM backend, "qemu" (default) or "firecracker" */
	const char *accel;         /**< "auto" (default), "kvm", "tcg" */
	const char *image_dir;     /**< guest image; NULL = vm.h's default */
	const char *state_dir;     /**< VM state; NULL = vm.h's default */
	unsigned int vcpus;        /**< vm:create default; 0 = 1 */
	unsigned int memory_mb;    /**< vm:create default; 0 = 256 */
	aeth_worker_event_cb on_event; /**< progress lines (with config
	                                    *  logging.format json: one JSON object
	                                    *  each, docs/metrics.md); may be NULL */
	void *userdata;            /**< passed to on_event */
	int migrate;               /**< non-zero: migrate the database in aeth_worker_run() */
	/** The root disk a vm:create with "rootfs": true boots with (config
	 *  vmm.rootfs); NULL = <image_dir>/rootfs.ext4 (scripts/build-image.sh
	 *  --rootfs). Attached copy-on-write: the file is never modified. */
	const char *rootfs_path;
	/** non-zero: a vm:create without "rootfs" gets rootfs_path too
	 *  (config vmm.use_rootfs); 0: initramfs only. */
	int use_rootfs;
	/** non-zero: refuse vm:create "network" other than "none" (config
	 *  vmm.network false). */
	int deny_network;
	/* version 3 */
	/**
	 * The configuration the worker follows (copied): its image
	 * catalogue (images), network profiles and taps, limits, the VMM
	 * jail (vmm.jail ...) and everything the fields above do not set;
	 * the non-NULL / non-zero fields above win over it. NULL: defaults
	 * and environment (aeth_config_load(NULL)). docs/security.md.
	 */
	const aeth_config *config;
} aeth_worker_options;

/* 2: rootfs_path, use_rootfs, deny_network appended; 3: config (callers
 * built with an older, shorter struct are still accepted) */
#define AETH_WORKER_OPTIONS_VERSION 3
#define AETH_WORKER_OPTIONS_INIT                                              \
	{ AETH_WORKER_OPTIONS_VERSION, NULL, NULL, NULL, NULL, 0, NULL, 0, 0,   \
	  NULL, NULL, NULL, NULL, 0, 0, NULL, NULL, 1, NULL, 0, 0, NULL }

/**
 * Initialise `opts` for `version` as AETH_WORKER_OPTIONS_INIT does: the fields that
 * version has (AETH_WORKER_OPTIONS_VERSION, or an older one a program was written
 * for) get the macro's values, and nothing past them is written. For
 * bindings and programs that cannot use the macro. 0, or AETH_EINVALID
 * (NULL, or a version this library does not know: docs/api.md).
 */
AETH_API int aeth_worker_options_init(aeth_worker_options *opts, unsigned int version);

/**
 * Make a worker (nothing connects yet). *out belongs to the caller
 * (aeth_worker_free()). Returns 0, AETH_EINVALID (bad option: the message
 * names it) or AETH_ENOMEM.
 */
AETH_API int aeth_worker_new(aeth_worker **out, const aeth_worker_options *opts);

/**
 * As aeth_worker_new(), with the defaults taken from `cfg` (database.url,
 * redis.url, worker.id, queue.concurrency, queue.weights, vmm.backend,
 * vmm.accel, vmm.image_dir, vmm.state_dir, vmm.vcpus, vmm.memory_mb,
 * worker.shutdown_timeout_ms); the non-NULL / non-zero fields of
 * `overrides` (may be NULL) win over the file. `cfg` may be NULL
 * (aeth_config_load(NULL): defaults and environment).
 */
AETH_API int aeth_worker_new_from_config(aeth_worker **out,
					 const aeth_config *cfg,
					 const aeth_worker_options *overrides);

/**
 * Run `fn` for tasks of `type` (a name aeth_task_type_valid() accepts: 1
 * to 100 characters of A-Z a-z 0-9 _ : . -, the names a client can
 * submit). A later
 * registration for the same type replaces the earlier one. Call before
 * aeth_worker_run(). Returns 0, AETH_EINVALID or AETH_ENOMEM.
 */
AETH_API int aeth_worker_handle(aeth_worker *w, const char *type,
				aeth_task_handler fn, void *userdata);

/** Register the built-in vm:create, vm:execute and vm:delete handlers. */
AETH_API int aeth_worker_handle_builtin(aeth_worker *w);

/** The worker's id (recorded in tasks.worker_id and vms.owner_worker).
 *  Borrowed from `w`. */
AETH_API const char *aeth_worker_id(const aeth_worker *w);

/** The registered task types, comma-separated in registration order
 *  ("vm:create, vm:execute, vm:delete"). Borrowed until the next
 *  aeth_worker_handle(). */
AETH_API const char *aeth_worker_types(aeth_worker *w);

/**
 * Connect, migrate the database (when options.migrate), reconcile the VMs
 * this worker id owned before (reattach the live ones, mark the others
 * failed and clean them up), then take and run tasks until
 * aeth_worker_stop(). On stop it takes no new tasks, lets running ones
 * finish within grace_ms, then gives the rest back to the queue (they run
 * again elsewhere) and returns. Lost Redis or PostgreSQL connections are
 * retried with backoff; they do not end the run.
 * Returns 0 after a stop, or a negative code when it could not start
 * (services unreachable, migration failed, no handlers).
 */
AETH_API int aeth_worker_run(aeth_worker *w);

/**
 * Wait until aeth_worker_run() (on another thread) takes tasks: it has
 * connected, migrated and entered the worker registry (what aeth-worker
 * prints as "Listening for tasks..."). Returns 0 then, AETH_ETIMEOUT after
 * timeout_ms, or AETH_ESTATE when that run has ended (run()'s return value
 * says why).
 */
AETH_API int aeth_worker_wait_ready(aeth_worker *w, unsigned int timeout_ms);

/**
 * Ask a running aeth_worker_run() to stop. Async-signal-safe (it writes
 * one byte to a pipe): call it from a SIGTERM/SIGINT handler. Calling it
 * before run() makes run() return at once.
 */
AETH_API void aeth_worker_stop(aeth_worker *w);

/** Free the worker (after aeth_worker_run() returned). NULL is accepted.
 *  VMs it owns keep running; a later worker with the same id reattaches. */
AETH_API void aeth_worker_free(aeth_worker *w);

/**
 * One finding of aeth_worker_check(): `status` 0 ok, 1 warning (works,
 * but not as well as it could), 2 failure (something needed is missing);
 * `fix` says what to do (may be empty). Strings are borrowed for the call.
 */
typedef void (*aeth_check_cb)(const char *what, int status,
			      const char *detail, const char *fix,
			      void *userdata);

/**
 * Diagnose this host for running a worker with `cfg` (NULL: defaults and
 * environment): VMM binaries (qemu-system-x86_64, firecracker), which
 * accelerator really works (KVM, PVM, TCG), how VMMs are confined (jail,
 * seccomp, namespaces, their user, cgroups, overlay dir), the guest image
 * and its manifest, the image catalogue, network profiles, taps and
 * limits, Redis and PostgreSQL reachable and how (credentials, TLS, a
 * profile that reaches them), the database migrated.
 * Calls `cb` once per finding. Returns 0 when nothing needed is missing,
 * AETH_ERROR otherwise.
 */
AETH_API int aeth_worker_check(const aeth_config *cfg, aeth_check_cb cb,
			       void *userdata);

/* ---- for handlers ---- */

/** The task's id (UUID), type and payload JSON. Borrowed from `task`. */
AETH_API const char *aeth_task_id(const aeth_task *task);
AETH_API const char *aeth_task_type(const aeth_task *task);
AETH_API const char *aeth_task_payload(const aeth_task *task);

/** How many times this task was tried before (0 on the first run). */
AETH_API unsigned int aeth_task_retry_count(const aeth_task *task);

/** The worker running the task. Borrowed. */
AETH_API aeth_worker *aeth_task_worker(aeth_task *task);

/** Set the result (JSON text, copied). Returns 0, AETH_EINVALID (not
 *  JSON) or AETH_ENOMEM. */
AETH_API int aeth_task_set_result(aeth_task *task, const char *json);

/**
 * Record why the task failed and whether retrying could help. Returns
 * AETH_ERROR so a handler can `return aeth_task_fail(t, 0, "...")`.
 */
AETH_API int aeth_task_fail(aeth_task *task, int retryable, const char *message);

/** Non-zero when the handler should give up: the shutdown grace is
 *  over, the lease was lost or the task ran past its timeout. */
AETH_API int aeth_task_cancelled(const aeth_task *task);

/** Report a progress line for this task (see aeth_worker_event_cb). */
AETH_API void aeth_task_say(aeth_task *task, const char *line);

AETH_END_DECLS

#endif
