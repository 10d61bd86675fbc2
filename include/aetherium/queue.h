/*
 * aetherium/queue.h - the Redis task queue.
 *
 * At-least-once delivery with leases: aeth_queue_enqueue() stores a task
 * and puts it on its queue; aeth_queue_dequeue() moves one atomically from
 * "pending" to "active" with a lease that the worker extends with
 * aeth_queue_heartbeat() while it works; aeth_queue_ack() completes it
 * (with a result JSON kept for a retention time), aeth_queue_nack() sends
 * it to "retry" with exponential backoff and jitter, and after its last
 * retry to "dead" with the error. Tasks whose worker died (lease expired)
 * go back to "pending" (counted as a retry) when any dequeue or
 * aeth_queue_recover() runs. The key layout is in docs/queue.md.
 *
 * Threads: an aeth_queue handle (one Redis connection; on a cluster one
 * per node and per slot it blocks on) is NOT thread-safe; use one handle
 * per thread. Different handles may be used at once from different
 * threads. aeth_queue_task values are plain data
 * owned by the caller.
 *
 * Every struct here starts with `unsigned int version` (docs/api.md):
 * set it with the *_INIT macro or the *_init() function; arrays of them
 * (sources, batch tasks) hold elements of one version.
 */
#ifndef AETHERIUM_QUEUE_H
#define AETHERIUM_QUEUE_H

#include "common.h"

AETH_BEGIN_DECLS

/** One connection to Redis plus the queue settings. Not thread-safe. */
typedef struct aeth_queue aeth_queue;

/** Where a task is in its life. Values are never renumbered. */
typedef enum {
	AETH_QUEUE_PENDING = 0,   /**< waiting in its queue */
	AETH_QUEUE_ACTIVE = 1,    /**< leased by a worker */
	AETH_QUEUE_SCHEDULED = 2, /**< waits for its process-at time */
	AETH_QUEUE_RETRY = 3,     /**< failed; waits for its backoff */
	AETH_QUEUE_DEAD = 4,      /**< failed for good (archived) */
	AETH_QUEUE_COMPLETED = 5  /**< acked; kept for the retention time */
} aeth_queue_state;

#define AETH_QUEUE_NSTATES 6

/** Options of aeth_queue_open(). Fields are only ever appended. */
typedef struct {
	unsigned int version; /**< AETH_QUEUE_OPTIONS_VERSION */
	/** redis://[user:password@]host[:port][/db],
	 *  unix:///path/to/sock[?db=N&password=P],
	 *  redis-cluster://[user:password@]host:port[,host:port...] (seed
	 *  nodes of a Redis Cluster) or
	 *  redis-sentinel://[user:password@]host:port[,...]/MASTER[?db=N&
	 *  sentinel_password=P] (the primary the sentinels name);
	 *  docs/queue.md. NULL means $AETH_REDIS_URL, else
	 *  redis://127.0.0.1:6379. */
	const char *url;
	/** Key namespace: keys look like "{<ns>:<queue>}:pending";
	 *  [A-Za-z0-9_.-], at most 64 characters. NULL means "aeth". */
	const char *ns;
	/** Name recorded in the tasks this handle dequeues (monitoring). */
	const char *worker_id;
	unsigned int connect_timeout_ms; /**< 0 means 2000 */
	unsigned int command_timeout_ms; /**< 0 means 5000 */
	unsigned int lease_ms;           /**< 0 means 30000 */
	unsigned int retention_s;        /**< completed tasks; 0 means 86400 */
	unsigned int max_payload;        /**< bytes; 0 means 1 MiB */
	unsigned int retry_base_ms;      /**< first backoff; 0 means 1000 */
	unsigned int retry_max_ms;       /**< backoff cap; 0 means 600000 */
	/** Backoff jitter: each delay is scaled by a random factor in
	 *  [1 - j/100, 1 + j/100]; 0 means 25, values over 100 mean 100. */
	unsigned int retry_jitter_pct;
	unsigned int dead_max;           /**< dead tasks kept per queue; 0: 10000 */
} aeth_queue_options;

#define AETH_QUEUE_OPTIONS_VERSION 1
#define AETH_QUEUE_OPTIONS_INIT {AETH_QUEUE_OPTIONS_VERSION, NULL, NULL, NULL, \
	0, 0, 0, 0, 0, 0, 0, 0, 0}

/**
 * Initialise `opts` for `version` as AETH_QUEUE_OPTIONS_INIT does: the fields that
 * version has (AETH_QUEUE_OPTIONS_VERSION, or an older one a program was written
 * for) get the macro's values, and nothing past them is written. For
 * bindings and programs that cannot use the macro. 0, or AETH_EINVALID
 * (NULL, or a version this library does not know: docs/api.md).
 */
AETH_API int aeth_queue_options_init(aeth_queue_options *opts, unsigned int version);

/** Options of aeth_queue_enqueue(). Fields are only ever appended. */
typedef struct {
	unsigned int version; /**< AETH_QUEUE_ENQUEUE_OPTIONS_VERSION */
	const char *queue;        /**< NULL means "default"; [A-Za-z0-9_:.-] */
	unsigned int max_retries; /**< retries after the first attempt (INIT: 3) */
	unsigned int timeout_ms;  /**< run-time limit, 0 = none (INIT: 1800000) */
	/** When non-NULL: while a task with the same key in the same queue is
	 *  live (not completed, dead or cancelled) and the key's TTL has not
	 *  passed, enqueue fails with AETH_EEXISTS. */
	const char *unique_key;
	unsigned int unique_ttl_ms; /**< 0 means 24 hours */
	/** Wall-clock ms since the epoch before which the task does not run;
	 *  0 or past means now. */
	int64_t process_at_ms;
	/** Caller-chosen UUID for the task (e.g. already stored in
	 *  PostgreSQL); NULL means a new random one. */
	const char *id;
} aeth_queue_enqueue_options;

#define AETH_QUEUE_ENQUEUE_OPTIONS_VERSION 1
#define AETH_QUEUE_ENQUEUE_OPTIONS_INIT {AETH_QUEUE_ENQUEUE_OPTIONS_VERSION, \
	NULL, 3, 1800000, NULL, 0, 0, NULL}

/**
 * Initialise `opts` for `version` as AETH_QUEUE_ENQUEUE_OPTIONS_INIT does: the fields that
 * version has (AETH_QUEUE_ENQUEUE_OPTIONS_VERSION, or an older one a program was written
 * for) get the macro's values, and nothing past them is written. For
 * bindings and programs that cannot use the macro. 0, or AETH_EINVALID
 * (NULL, or a version this library does not know: docs/api.md).
 */
AETH_API int aeth_queue_enqueue_options_init(aeth_queue_enqueue_options *opts, unsigned int version);

/** One task of aeth_queue_enqueue_batch(): inputs, then per-task results. */
typedef struct {
	unsigned int version; /**< AETH_QUEUE_BATCH_TASK_VERSION */
	const char *type;    /**< as for aeth_queue_enqueue() */
	const char *payload; /**< JSON; NULL means "{}" */
	/** NULL means defaults. Tasks may name different queues; consecutive
	 *  tasks of one queue go to Redis in one script call. */
	const aeth_queue_enqueue_options *opts;
	char id[37]; /**< out: the task id (when rc is 0) */
	int rc;      /**< out: 0 or this task's AETH_E* code */
} aeth_queue_batch_task;

#define AETH_QUEUE_BATCH_TASK_VERSION 1
#define AETH_QUEUE_BATCH_TASK_INIT \
	{AETH_QUEUE_BATCH_TASK_VERSION, NULL, NULL, NULL, "", 0}

/** Initialise `task` for `version` as AETH_QUEUE_BATCH_TASK_INIT does.
 *  0, or AETH_EINVALID (NULL, or a version this library does not know). */
AETH_API int aeth_queue_batch_task_init(aeth_queue_batch_task *task,
					unsigned int version);

/** A queue to dequeue from and its weight (for aeth_queue_dequeue()). */
typedef struct {
	unsigned int version; /**< AETH_QUEUE_SOURCE_VERSION */
	const char *name;    /**< queue name */
	unsigned int weight; /**< relative share among non-strict queues; 0 means 1 */
	/** Non-zero: tried before every weighted queue, in the order given
	 *  (e.g. a worker's own "worker:<id>" queue). */
	int strict;
} aeth_queue_source;

#define AETH_QUEUE_SOURCE_VERSION 1
#define AETH_QUEUE_SOURCE_INIT {AETH_QUEUE_SOURCE_VERSION, NULL, 0, 0}

/** Initialise `source` for `version` as AETH_QUEUE_SOURCE_INIT does.
 *  0, or AETH_EINVALID (NULL, or a version this library does not know). */
AETH_API int aeth_queue_source_init(aeth_queue_source *source,
				    unsigned int version);

/** The library's own state of a dequeued task; opaque. */
struct aeth_queue_task_internal;

/**
 * A task's message. Every string is NUL-terminated and owned by the task
 * (freed by aeth_queue_task_free()); strings not set are NULL. Only the
 * library allocates these; `version` (AETH_QUEUE_TASK_VERSION when this
 * header was current) tells a program which fields the library filled.
 */
typedef struct {
	unsigned int version;
	char id[37];
	char *queue;
	char *type;
	char *payload;    /**< JSON text */
	char *result;     /**< JSON text given to aeth_queue_ack(), or NULL */
	char *error;      /**< last error, or NULL */
	char *unique_key;
	char *worker;     /**< worker that last dequeued it */
	aeth_queue_state state;
	unsigned int retried;     /**< retries so far */
	unsigned int max_retries;
	unsigned int timeout_ms;
	int64_t created_ms;   /**< wall clock ms (Redis server's clock) */
	int64_t process_at_ms;
	int64_t started_ms;   /**< last dequeue */
	int64_t finished_ms;  /**< completed or dead */
	int64_t lease_deadline_ms;
	/** The library's state of this dequeue (its lease), not visible to
	 *  programs; freed by aeth_queue_task_free(). */
	struct aeth_queue_task_internal *internal;
} aeth_queue_task;

#define AETH_QUEUE_TASK_VERSION 1

/** Per-state task counts of one queue (aeth_queue_count()). The caller
 *  sets `version`; the library fills the states that version has. */
typedef struct {
	unsigned int version;           /**< AETH_QUEUE_COUNTS_VERSION */
	uint64_t n[AETH_QUEUE_NSTATES]; /**< indexed by aeth_queue_state */
} aeth_queue_counts;

#define AETH_QUEUE_COUNTS_VERSION 1
#define AETH_QUEUE_COUNTS_INIT {AETH_QUEUE_COUNTS_VERSION, {0}}

/** Initialise `counts` for `version` as AETH_QUEUE_COUNTS_INIT does.
 *  0, or AETH_EINVALID (NULL, or a version this library does not know). */
AETH_API int aeth_queue_counts_init(aeth_queue_counts *counts,
				    unsigned int version);

/** Flags of aeth_queue_nack(). */
#define AETH_QUEUE_NACK_NO_RETRY 1u /**< straight to dead */
/** Give the task back un-started: pending again at the head of its queue,
 * no retry counted, no backoff (a worker stopping before it began the
 * task). Takes precedence over AETH_QUEUE_NACK_NO_RETRY. */
#define AETH_QUEUE_NACK_RELEASE 2u

/**
 * Connect to Redis (AUTH and SELECT as the URL says) and check that it
 * answers. On success *out is the caller's (aeth_queue_free()).
 * AETH_EINVALID for a bad URL or option, AETH_EUNAVAILABLE when Redis
 * cannot be reached (the message names the URL and the fix).
 * When the connection breaks later, the next call reconnects once by
 * itself.
 */
AETH_API int aeth_queue_open(aeth_queue **out, const aeth_queue_options *opts);

/** Close the connection and free the handle. NULL is accepted. */
AETH_API void aeth_queue_free(aeth_queue *q);

/** Round trip to the server (reconnecting if needed). */
AETH_API int aeth_queue_ping(aeth_queue *q);

/**
 * Enqueue a task of `type` (a name aeth_task_type_valid() in task.h
 * accepts) with a JSON `payload` (at most max_payload bytes; NULL means
 * "{}"). opts may be NULL. When id_out is non-NULL it receives the task
 * id.
 * AETH_EINVALID: bad type, payload, queue name or id; AETH_ETOOBIG:
 * payload too large; AETH_EEXISTS: unique key taken, or the id exists.
 */
AETH_API int aeth_queue_enqueue(char id_out[37], aeth_queue *q,
				const char *type, const char *payload,
				const aeth_queue_enqueue_options *opts);

/**
 * Enqueue `n` tasks (at most 100000) in one round trip to Redis: one
 * script call per run of up to 256 consecutive tasks of the same queue,
 * all pipelined. Each task is checked and enqueued on its own, with the
 * same rules and errors as aeth_queue_enqueue(): tasks[i].rc and
 * tasks[i].id tell what happened to it. Returns 0 when every task was
 * enqueued, else the code of the first failure (aeth_error_last() says
 * which task and why). When the connection fails, every task gets
 * AETH_EUNAVAILABLE (some may have been enqueued: the call is at least as
 * safe to retry as aeth_queue_enqueue() with ids set).
 */
AETH_API int aeth_queue_enqueue_batch(aeth_queue *q, aeth_queue_batch_task *tasks,
				      size_t n);

/**
 * Take one task from the `n` queues in `sources`: strict queues first in
 * order, then the others in a weighted random order. Blocks up to
 * timeout_ms (0: do not block) until a task arrives; the wait is a Redis
 * blocking pop, not a polling loop. Due scheduled/retry tasks are
 * promoted and expired leases recovered on the way.
 * 0 and *out (the caller's; aeth_queue_task_free()) on success;
 * AETH_ETIMEOUT when nothing came; AETH_EUNAVAILABLE when Redis is gone;
 * AETH_EPROTO when the next task's message was malformed (that task was
 * moved to dead with the reason; just call again).
 */
AETH_API int aeth_queue_dequeue(aeth_queue_task **out, aeth_queue *q,
				const aeth_queue_source *sources, size_t n,
				unsigned int timeout_ms);

/**
 * Like aeth_queue_dequeue(), but takes up to `max` tasks (1..1000) in as
 * few round trips as possible: it waits (as aeth_queue_dequeue() does)
 * until at least one task is there, then takes up to `max` from the first
 * queue in the strict-then-weighted order with one script call, and fills
 * up from the next queues. out[0..*got-1] receive the tasks (each the
 * caller's, aeth_queue_task_free()); `out` must have room for `max`.
 * Each task has its own lease, to be heartbeated and acked/nacked like a
 * task from aeth_queue_dequeue() (aeth_queue_ack_batch() acks many in
 * one round trip). Malformed messages met while some tasks were taken
 * are moved to dead and skipped; AETH_EPROTO only when no task was taken.
 * Returns 0 with *got >= 1, or the errors of aeth_queue_dequeue() with
 * *got == 0.
 */
AETH_API int aeth_queue_dequeue_batch(aeth_queue_task **out, size_t *got,
				      size_t max, aeth_queue *q,
				      const aeth_queue_source *sources,
				      size_t n, unsigned int timeout_ms);

/**
 * Extend the lease of a dequeued task to now + lease_ms. AETH_ESTATE when
 * the lease was lost (expired and recovered, or the task was acked);
 * AETH_ETIMEOUT when the task ran past its timeout_ms (the lease is then
 * not extended: stop working on it). Updates task->lease_deadline_ms.
 */
AETH_API int aeth_queue_heartbeat(aeth_queue *q, aeth_queue_task *task);

/**
 * Complete a dequeued task, storing `result_json` (may be NULL; must be
 * JSON, at most max_payload bytes) for retention_s and waking
 * aeth_queue_wait_result() callers. AETH_ESTATE when the lease was lost
 * (another worker may run it again: at-least-once).
 */
AETH_API int aeth_queue_ack(aeth_queue *q, aeth_queue_task *task,
			    const char *result_json);

/**
 * Complete `n` dequeued tasks (at most 100000) in one round trip, as
 * aeth_queue_ack() does for each: one script call per run of up to 256
 * consecutive tasks of the same queue, pipelined. `results` may be NULL
 * (no result for any task) or hold one JSON text or NULL per task. `rcs`
 * may be NULL or receives 0 or the AETH_E* code of each task
 * (AETH_ESTATE: its lease was lost). Returns 0 when every task was
 * acked, else the code of the first failure.
 */
AETH_API int aeth_queue_ack_batch(int *rcs, aeth_queue *q,
				  aeth_queue_task *const *tasks,
				  const char *const *results, size_t n);

/**
 * Fail a dequeued task with `error`. It is retried after
 * min(retry_max_ms, retry_base_ms * 2^retried) +- jitter, or goes to dead
 * when it has no retries left or flags has AETH_QUEUE_NACK_NO_RETRY.
 * With AETH_QUEUE_NACK_RELEASE it is given back instead: pending, first
 * to be taken, its retry count unchanged (task->state becomes
 * AETH_QUEUE_PENDING). AETH_ESTATE when the lease was lost.
 */
AETH_API int aeth_queue_nack(aeth_queue *q, aeth_queue_task *task,
			     const char *error, unsigned int flags);

/**
 * Move the tasks of `queue` whose lease expired back to pending (or to
 * dead when their retries are used up). `recovered` (may be NULL) gets
 * how many. aeth_queue_dequeue() does this too.
 */
AETH_API int aeth_queue_recover(unsigned int *recovered, aeth_queue *q,
				const char *queue);

/**
 * The message and state of task `id`. `queue` may be NULL: the queue is
 * then looked up by id (an index kept for 7 days). *out is the
 * caller's. AETH_ENOTFOUND when there is no such task (or it expired).
 */
AETH_API int aeth_queue_get(aeth_queue_task **out, aeth_queue *q,
			    const char *queue, const char *id);

/**
 * Wait up to timeout_ms (0: forever) until task `id` is completed or
 * dead, blocking in Redis (no polling), then return it as
 * aeth_queue_get() does. AETH_ETIMEOUT when it did not finish in time.
 */
AETH_API int aeth_queue_wait_result(aeth_queue_task **out, aeth_queue *q,
				    const char *queue, const char *id,
				    unsigned int timeout_ms);

/** Per-state counts of `queue`. */
AETH_API int aeth_queue_count(aeth_queue_counts *out, aeth_queue *q,
			      const char *queue);

/**
 * Ids of up to `limit` tasks of `queue` in `state`, from `offset`
 * (pending: oldest first; others: by time). *ids is a NULL-terminated
 * array, the caller's (aeth_strarray_free()).
 */
AETH_API int aeth_queue_list(char ***ids, aeth_queue *q, const char *queue,
			     aeth_queue_state state, size_t offset,
			     size_t limit);

/**
 * Names of the queues that ever had a task enqueued in this namespace.
 * *names is the caller's (aeth_strarray_free()).
 */
AETH_API int aeth_queue_queues(char ***names, aeth_queue *q);

/**
 * Delete task `id` of `queue` (NULL: looked up) unless it is active:
 * AETH_ESTATE for an active task, AETH_ENOTFOUND when it is not there.
 */
AETH_API int aeth_queue_cancel(aeth_queue *q, const char *queue,
			       const char *id);

/** Free a task. NULL is accepted. */
AETH_API void aeth_queue_task_free(aeth_queue_task *task);

/** "pending", "active", ...; "unknown" for other values. Static text. */
AETH_API const char *aeth_queue_state_name(aeth_queue_state state);

/** True (1) when `name` is a valid queue name ([A-Za-z0-9_:.-], 1..128). */
AETH_API int aeth_queue_name_valid(const char *name);

/* ---- worker registry: which workers run, and what they handle ---- */

/**
 * Record or refresh worker `id` (1..256 characters) in this namespace's
 * registry (the hash "<ns>:workers", field id). `info_json` (NULL: "{}")
 * is a JSON object describing the worker, kept as given (at most 64 KiB;
 * aeth_worker_run() puts host, pid, types, queues, concurrency,
 * started_at there); the registry sets "id", "interval_ms" and
 * "last_seen_ms" (the Redis server's clock). Call it again every
 * `interval_ms` (> 0): an entry not refreshed for 3 intervals counts as
 * dead. A later call after aeth_queue_worker_unregister() makes the entry
 * alive again. Stopped and dead entries are removed a day after they were
 * last seen. Returns 0, AETH_EINVALID, AETH_ETOOBIG or the connection's
 * errors.
 */
AETH_API int aeth_queue_worker_register(aeth_queue *q, const char *id,
					const char *info_json,
					unsigned int interval_ms);

/**
 * Mark worker `id` as stopped (a graceful stop): the entry stays, with
 * "stopped_ms", so that readers can tell a stopped worker from one that
 * never registered (e.g. after Redis lost its data). 0 also when there
 * was no entry.
 */
AETH_API int aeth_queue_worker_unregister(aeth_queue *q, const char *id);

/**
 * The registry as a JSON array sorted by id, in *json_out (the caller's;
 * aeth_free()). Each entry is the registered object plus "last_seen"
 * (UTC text), "age_ms" (since the last refresh, by the Redis clock),
 * "state" ("alive", "dead": not refreshed for 3 intervals, "stopped")
 * and "alive" (true/false).
 */
AETH_API int aeth_queue_worker_list(char **json_out, aeth_queue *q);

/** One entry of the registry, as in aeth_queue_worker_list(), in
 *  *json_out (the caller's; aeth_free()). AETH_ENOTFOUND when `id` is
 *  not registered. */
AETH_API int aeth_queue_worker_get(char **json_out, aeth_queue *q,
				   const char *id);

AETH_END_DECLS

#endif
