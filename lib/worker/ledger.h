/*
 * lib/worker/ledger.h - the ledger reconciler. PostgreSQL is the ledger
 * and Redis the transport: a task whose row is open (pending, running,
 * retrying) must be somewhere in Redis on its way, or be finished from
 * what Redis knows. A pass finds the open rows Redis no longer holds, or
 * holds in a contradictory state, and repairs each by the rule of
 * docs/queue.md ("Ledger and transport"): put it back into Redis, or
 * finish the row (completed with Redis's result, dead with Redis's
 * error); and a task Redis holds dead that PostgreSQL completed is made
 * completed in Redis. Every repair is written to the row (metadata.ledger,
 * error) and logged.
 *
 * Any worker runs passes (at start, then every ledger.interval_ms), one
 * at a time across all workers (a PostgreSQL advisory lock); their shared
 * state is the ledger_state row (migration 0006).
 */
#ifndef AETH_WORKER_LEDGER_H
#define AETH_WORKER_LEDGER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

struct aeth_worker;

typedef struct aeth__ledger aeth__ledger;

typedef struct {
	const char *database_url; /* NULL: $AETH_DATABASE_URL */
	const char *redis_url;    /* NULL: $AETH_REDIS_URL */
	const char *redis_ns;     /* NULL: "aeth" */
	const char *worker_id;    /* who repaired (metadata.ledger.by, log) */
	/* A row changed within this many ms and missing from Redis is left
	 * alone: its submitter may not have enqueued it yet. */
	unsigned int stray_after_ms;
	const atomic_int *stopping; /* a pass ends early when set; may be NULL */
} aeth__ledger_config;

/* What one pass did. */
typedef struct {
	bool locked_out;     /* another reconciler held the lock: no pass */
	bool full_sweep;     /* read every open row, not only those past the mark */
	const char *why_full; /* static text, or NULL */
	size_t read;         /* open rows judged (sweep and dead sets) */
	size_t live;         /* left alone: Redis holds them on their way */
	size_t young;        /* left alone: not in Redis, changed too recently */
	size_t requeued;     /* put back into Redis */
	size_t completed;    /* row completed with Redis's result */
	size_t dead;         /* row dead: Redis gave up, or no retry was left */
	size_t settled;      /* Redis dead -> completed, as the row says */
	size_t raced;        /* written by others while judged: next pass */
} aeth__ledger_stats;

/* A reconciler with a copy of cfg; it connects for each pass only. */
int aeth__ledger_open(aeth__ledger **out, const aeth__ledger_config *cfg);
void aeth__ledger_free(aeth__ledger *l);

/* One pass (see above): connects to PostgreSQL, tries the lock, and only
 * when it got it connects to Redis; both connections are closed at the
 * end. 0, or the error that cut it short (the shared state is then left
 * as it was: the next pass reads the same rows again). */
int aeth__ledger_pass(aeth__ledger *l, aeth__ledger_stats *stats);

/* The worker's reconciler thread: ledger.interval_ms (0: none) and
 * ledger.stray_after_ms from the worker's configuration. start is called
 * once the worker is ready; stop wakes and joins it (NULL-safe). */
int aeth__ledger_start(struct aeth_worker *w);
void aeth__ledger_stop(struct aeth_worker *w);

#endif
