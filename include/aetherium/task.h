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
#include "config.h"

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
AETH_API int aeth_args_split(char ***argv_out, size_t *argc_out,
			     const char *line);

/**
 * Whether `type` is a valid task type name: 1 to 100 characters of A-Z
 * a-z 0-9 _ : . - ("vm:create", "app:build.v2"). The one rule the queue
 * (aeth_queue_enqueue()), the worker (aeth_worker_handle()) and the
 * submit client (aeth_client_submit()) apply, each refusing another name
 * with AETH_EINVALID. 1 or 0.
 */
AETH_API int aeth_task_type_valid(const char *type);

/**
 * Check a task payload (JSON text of `len` bytes) for the task type
 * `type` ("vm:create", "vm:execute", "vm:delete"). Returns 0 if the
 * worker would accept it, AETH_EINVALID with a message naming the field
 * and the problem (or the unknown type), or AETH_ETOOBIG.
 */
AETH_API int aeth_task_payload_validate(const char *type, const char *json,
					size_t len);

/* ---- submitting tasks and waiting for them (aeth-submit, Python) ---- */

/** A connection to the queue (Redis) and the database (PostgreSQL) for
 *  submitting tasks. One thread at a time; open one per thread. */
typedef struct aeth_client aeth_client;

/** Options of aeth_client_open(). NULL / 0 mean the defaults given. */
typedef struct {
	unsigned int version;     /**< AETH_CLIENT_OPTIONS_VERSION */
	const char *database_url; /**< default $AETH_DATABASE_URL */
	const char *redis_url;    /**< default $AETH_REDIS_URL */
	const char *redis_ns;     /**< queue key namespace; default "aeth" */
} aeth_client_options;

#define AETH_CLIENT_OPTIONS_VERSION 1
#define AETH_CLIENT_OPTIONS_INIT { AETH_CLIENT_OPTIONS_VERSION, NULL, NULL, NULL }

/**
 * Initialise `opts` for `version` as AETH_CLIENT_OPTIONS_INIT does: the fields that
 * version has (AETH_CLIENT_OPTIONS_VERSION, or an older one a program was written
 * for) get the macro's values, and nothing past them is written. For
 * bindings and programs that cannot use the macro. 0, or AETH_EINVALID
 * (NULL, or a version this library does not know: docs/api.md).
 */
AETH_API int aeth_client_options_init(aeth_client_options *opts, unsigned int version);

/** Connect to both servers. *out is the caller's (aeth_client_free()).
 *  AETH_EUNAVAILABLE names the server that did not answer and the fix. */
AETH_API int aeth_client_open(aeth_client **out, const aeth_client_options *opts);

/** As aeth_client_open() with database.url and redis.url from `cfg`
 *  (NULL: aeth_config_load(NULL), i.e. defaults and environment). */
AETH_API int aeth_client_open_config(aeth_client **out, const aeth_config *cfg);

/** Close the connections. NULL is accepted. */
AETH_API void aeth_client_free(aeth_client *c);

/** Options of aeth_client_submit(). */
typedef struct {
	unsigned int version;     /**< AETH_SUBMIT_OPTIONS_VERSION */
	/** Queue for vm:create and custom types; NULL = "default". vm:execute
	 *  and vm:delete always go to the queue of the worker owning the VM. */
	const char *queue;
	unsigned int max_retries; /**< retries after the first try (INIT: 3) */
	unsigned int timeout_ms;  /**< task run-time limit, 0 = none (INIT: 1800000) */
	int priority;             /**< recorded in tasks.priority */
	/* version 2 */
	/** The tenant the task (and a VM it creates) belongs to; NULL:
	 *  "default". With a tenant, a vm:execute / vm:delete of a VM of
	 *  another tenant fails as if the VM did not exist (docs/gateway.md). */
	const char *tenant;
} aeth_submit_options;

/* 2: tenant appended */
#define AETH_SUBMIT_OPTIONS_VERSION 2
#define AETH_SUBMIT_OPTIONS_INIT { AETH_SUBMIT_OPTIONS_VERSION, NULL, 3, 1800000, 0, NULL }

/**
 * Initialise `opts` for `version` as AETH_SUBMIT_OPTIONS_INIT does: the fields that
 * version has (AETH_SUBMIT_OPTIONS_VERSION, or an older one a program was written
 * for) get the macro's values, and nothing past them is written. For
 * bindings and programs that cannot use the macro. 0, or AETH_EINVALID
 * (NULL, or a version this library does not know: docs/api.md).
 */
AETH_API int aeth_submit_options_init(aeth_submit_options *opts, unsigned int version);

/**
 * Record a task (tasks row "pending") and enqueue it. `type` is any task
 * type name (aeth_task_type_valid(): the built-in "vm:create",
 * "vm:execute", "vm:delete", or one a worker registered with
 * aeth_worker_handle()); another name gives AETH_EINVALID and records
 * nothing. The payload (NULL: "{}") is checked first: field by field for
 * the built-in types (aeth_task_payload_validate()), for other types only
 * that it is JSON, and that a live worker in the worker registry
 * (aeth_queue_worker_list()) handles the type and takes tasks from that
 * queue. vm:execute / vm:delete are routed to queue "worker:<owner>" of
 * the VM's owner (vms.owner_worker), which must not be stopped or dead in
 * the registry (an owner the registry does not know, e.g. after Redis
 * lost its data, is let through); other types go to opts->queue
 * ("default"). A task that cannot run - bad payload, unknown or deleted
 * VM, owner not running, a type no live worker handles ("unknown task
 * type 'x': no live worker handles it (built-in types: ...; live workers
 * handle: ...)") - is recorded as "failed" with the reason and not
 * enqueued: the call returns AETH_EINVALID, AETH_ETOOBIG, AETH_ENOTFOUND
 * or AETH_ESTATE (message in aeth_error_last()) and still sets
 * task_id_out. `opts` may be NULL.
 * `queue_out` (may be NULL) receives the queue used (the caller's;
 * aeth_free()).
 */
AETH_API int aeth_client_submit(char task_id_out[37], char **queue_out,
				aeth_client *c, const char *type,
				const char *payload_json,
				const aeth_submit_options *opts);

/** What a vm:create task asks for beyond the seed's name, vcpus and
 *  memory_mb (docs/worker.md, "vm:create"). */
typedef struct {
	unsigned int version;     /**< AETH_CREATE_OPTIONS_VERSION */
	const char *name;        /**< required */
	unsigned int vcpus;      /**< 0: the worker's vmm.vcpus */
	unsigned int memory_mb;  /**< 0: the worker's vmm.memory_mb */
	const char *network;     /**< NULL: the worker's default ("none");
				      "none", "tap", or one of the worker's
				      network profiles ("user" is built in and
				      reaches nothing unless configured) */
	const char *tap;         /**< the tap device, with network "tap" */
	const char *rootfs;      /**< NULL: the worker's vmm.use_rootfs decides;
				      "default" (or "true"): the image's root
				      disk; "none" (or "false"): initramfs only.
				      Paths are refused: disks come from the
				      worker's image catalogue (`image`) */
	/* version 2 */
	const char *image;       /**< NULL: "default"; else an image of the
				      worker's catalogue (images: section) */
	unsigned int ttl_s;      /**< the VM's lifetime; 0: the worker's
				      limits.ttl_s */
} aeth_create_options;

/* 2: image, ttl_s appended */
#define AETH_CREATE_OPTIONS_VERSION 2
#define AETH_CREATE_OPTIONS_INIT \
	{ AETH_CREATE_OPTIONS_VERSION, NULL, 0, 0, NULL, NULL, NULL, NULL, 0 }

/**
 * Initialise `opts` for `version` as AETH_CREATE_OPTIONS_INIT does: the fields that
 * version has (AETH_CREATE_OPTIONS_VERSION, or an older one a program was written
 * for) get the macro's values, and nothing past them is written. For
 * bindings and programs that cannot use the macro. 0, or AETH_EINVALID
 * (NULL, or a version this library does not know: docs/api.md).
 */
AETH_API int aeth_create_options_init(aeth_create_options *opts, unsigned int version);

/** Build and submit a vm:create task from `vm` (see aeth_client_submit()
 *  for what is checked and recorded). AETH_EINVALID for a missing name or
 *  a rootfs that is not default/none. */
AETH_API int aeth_client_submit_create_ex(char task_id_out[37], aeth_client *c,
					  const aeth_create_options *vm,
					  const aeth_submit_options *opts);

/** Build and submit the seed's vm:execute and vm:delete payloads. `args`
 *  is NULL-terminated (may be NULL). */
AETH_API int aeth_client_submit_execute(char task_id_out[37], aeth_client *c,
					const char *vm_id, const char *command,
					const char *const *args,
					const aeth_submit_options *opts);
AETH_API int aeth_client_submit_delete(char task_id_out[37], aeth_client *c,
				       const char *vm_id,
				       const aeth_submit_options *opts);

/** What a vm:execute task asks for beyond the seed's vm_id, command and
 *  args (docs/worker.md, "vm:execute"). Strings are borrowed for the
 *  call. */
typedef struct {
	unsigned int version;        /**< AETH_EXECUTE_OPTIONS_VERSION */
	const char *const *env;      /**< "KEY=VALUE", NULL-terminated; NULL: none */
	const char *cwd;             /**< absolute path in the guest; NULL: / */
	unsigned int timeout_ms;     /**< the command's; 0: the worker's
					  limits.exec_timeout_ms */
	const char *stdin_data;      /**< text for the command's stdin; NULL: none */
	/** A second task with the same key for the same VM returns the
	 *  first one's result instead of running again (executes are at
	 *  least once); NULL: none. 1..200 printable characters. */
	const char *idempotency_key;
	/** Version 2. Nonzero: "live_output": true in the payload, the
	 *  worker publishes the command's output while it runs, for
	 *  aeth_client_follow() and the gateway's streams (unstable
	 *  client.h, docs/gateway.md). 0: only in the result. */
	int live_output;
} aeth_execute_options;

#define AETH_EXECUTE_OPTIONS_VERSION 2
#define AETH_EXECUTE_OPTIONS_INIT \
	{ AETH_EXECUTE_OPTIONS_VERSION, NULL, NULL, 0, NULL, NULL, 0 }

/** Initialise `opts` for `version` as AETH_EXECUTE_OPTIONS_INIT does (see
 *  aeth_create_options_init()). 0, or AETH_EINVALID. */
AETH_API int aeth_execute_options_init(aeth_execute_options *opts,
				       unsigned int version);

/** aeth_client_submit_execute() with the payload's optional fields from
 *  `x` (NULL: none). AETH_EINVALID for an env entry without '=', a
 *  relative cwd and the rest aeth_client_submit() checks. */
AETH_API int aeth_client_submit_execute_ex(char task_id_out[37], aeth_client *c,
					   const char *vm_id, const char *command,
					   const char *const *args,
					   const aeth_execute_options *x,
					   const aeth_submit_options *opts);

/** Called about every 5 s while aeth_client_wait() waits: the task's
 *  queue state ("pending", "active", "retry", ...) and the time waited. */
typedef void (*aeth_wait_progress_cb)(const char *task_id, const char *state,
				      unsigned int waited_ms, void *userdata);

/**
 * Wait until the task completed or failed for good, blocking in Redis
 * (no polling of PostgreSQL), then return its tasks row as JSON
 * {id, type, status, result, error, worker_id, retry_count, ...} in
 * *task_json_out (the caller's; aeth_free()). timeout_ms 0 waits
 * forever. AETH_ETIMEOUT when it did not finish in time; AETH_ENOTFOUND
 * for an unknown task. `progress` may be NULL.
 */
AETH_API int aeth_client_wait(char **task_json_out, aeth_client *c,
			      const char *task_id, unsigned int timeout_ms,
			      aeth_wait_progress_cb progress, void *userdata);

/**
 * Cancel a task that has not started: it leaves its queue (pending,
 * scheduled or waiting for a retry) and its row ends "failed" with the
 * error "cancelled". AETH_ESTATE for a task a worker is running (it ends
 * at its timeout_ms; the message says so) or one that ended already;
 * AETH_ENOTFOUND for an unknown id.
 */
AETH_API int aeth_client_cancel(aeth_client *c, const char *task_id);

/** The tasks row of `task_id` as JSON (as aeth_client_wait()). */
AETH_API int aeth_client_task(char **task_json_out, aeth_client *c,
			      const char *task_id);

/** "vms": every VM; "tasks": the newest `limit` tasks (0 = 20);
 *  "workers": the worker registry (aeth_queue_worker_list(): id, host,
 *  pid, types, queues, last_seen, age_ms, state alive|dead|stopped); as a
 *  JSON array in *json_out (the caller's; aeth_free()). */
AETH_API int aeth_client_list(char **json_out, aeth_client *c, const char *what,
			      unsigned int limit);

AETH_END_DECLS

#endif
