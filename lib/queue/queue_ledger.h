/*
 * lib/queue/queue_ledger.h - what the ledger reconciler (lib/worker/
 * ledger.c) asks of Redis: where tasks are, putting back a task Redis
 * lost, and how the server keeps its data. Internal: PostgreSQL is the
 * ledger, Redis the transport (docs/queue.md, "Ledger and transport").
 */
#ifndef AETH_QUEUE_LEDGER_H
#define AETH_QUEUE_LEDGER_H

#include <stddef.h>
#include <stdint.h>

#include "aetherium/queue.h"

/* What Redis holds of one task. Strings are malloc'd (aeth__q_held_clear). */
typedef struct {
	int state;             /* aeth_queue_state in the queue asked; -1: none */
	char *result;          /* completed: its result JSON, or NULL */
	char *error;           /* its last error, or NULL */
	unsigned int retried;
	int64_t lease_deadline_ms; /* active: the lease's deadline (Redis clock) */
	/* With state -1: the queue the id index names when that is another
	 * one and holds the task (e.g. before a forward's row write), and the
	 * task's state there; else NULL and -1. */
	char *other_queue;
	int other_state;
} aeth__q_held;

/*
 * Look up n tasks (at most 1000), task i in queue queues[i], in one round
 * trip (two more for those not found: the id index, then the queue it
 * names). out[i] is filled for each; clear them with aeth__q_held_clear().
 * Returns 0 or the connection's error (then no out[i] needs clearing).
 */
int aeth__q_ledger_peek(aeth_queue *q, const char *const *queues,
			const char *const *ids, size_t n, aeth__q_held *out);
void aeth__q_held_clear(aeth__q_held *h);

/* A task to put back (aeth__q_ledger_restore). */
typedef struct {
	const char *queue;
	const char *id;
	const char *type;
	const char *payload;      /* JSON */
	unsigned int max_retries;
	unsigned int timeout_ms;
	unsigned int retried;     /* attempts made so far */
	const char *error;        /* why it was put back (its last error) */
} aeth__q_restore;

/*
 * Put task t back at the head of its queue, pending, unless the queue
 * has a task with its id already (any state: the id stays unique, a task
 * in flight is not touched): *restored says which. The id index and the
 * set of queue names are written as enqueue writes them.
 */
int aeth__q_ledger_restore(aeth_queue *q, const aeth__q_restore *t, int *restored);

/*
 * If task `id` of `queue` is dead, make it completed with `result_json`
 * (PostgreSQL completed it: the ledger wins), kept for the retention
 * time; *settled says whether it was dead.
 */
int aeth__q_ledger_settle(aeth_queue *q, const char *queue, const char *id,
			  const char *result_json, int *settled);

/*
 * The ids of tasks that went dead at or after since_ms (Redis clock), in
 * any queue of the namespace, at most `max`: ids[i] of queues[i], both
 * NULL-terminated and the caller's (aeth_strarray_free()). *now_ms gets
 * the next call's since_ms: the Redis clock read before the sets, or the
 * death time of the first task left out when there were more than max.
 */
int aeth__q_ledger_dead_since(aeth_queue *q, int64_t since_ms, size_t max,
			      char ***ids, char ***queues, int64_t *now_ms);

/* The server's run_id (INFO server): it changes when Redis restarts.
 * "" when the server refuses INFO. */
int aeth__q_server_run_id(aeth_queue *q, char run_id[48]);

/* How the server keeps its data (INFO persistence, CONFIG GET). */
typedef struct {
	int aof;               /* 1: append-only file on, 0: off, -1: unknown */
	char appendfsync[16];  /* "always", "everysec", "no"; "" unknown */
	int save_known;        /* CONFIG GET save answered */
	char save[256];        /* RDB save points, "" for none */
} aeth__q_persistence;

/*
 * Fill *out from INFO persistence, and from CONFIG GET save / appendfsync
 * when the connection is Redis's default user (an ACL user, as in
 * docs/redis-acl.conf, is never sent CONFIG: a refused command would
 * fill the server's ACL log). What the server refuses stays unknown.
 * Returns 0, or the connection's error.
 */
int aeth__q_persistence_get(aeth_queue *q, aeth__q_persistence *out);

#endif
