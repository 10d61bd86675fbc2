/*
 * lib/store/store_ledger.h - the SQL of the ledger reconciler (lib/worker/
 * ledger.c): task rows in creation order or by id, a row's repair that
 * holds only if nobody wrote the row since it was read, and the shared
 * state of the passes (migration 0006) under the advisory lock that lets
 * one reconciler run at a time; also the server's durability settings.
 * Internal (docs/queue.md, "Ledger and transport").
 */
#ifndef AETH_STORE_LEDGER_H
#define AETH_STORE_LEDGER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aetherium/store.h"

/* A task row as the reconciler reads it. Strings malloc'd. */
typedef struct {
	char id[37];
	char *type;
	char *status;
	char *payload;       /* JSON text */
	char *result;        /* JSON text or NULL */
	char *queue;         /* NULL for rows written without one */
	unsigned int max_retries;
	unsigned int retry_count;
	unsigned int timeout_ms;
	char *created;       /* created_at as text: the cursor */
	char *updated;       /* updated_at as text: the repair's check */
	int64_t age_ms;      /* since updated_at, by the server's clock */
} aeth__ledger_row;

void aeth__ledger_rows_free(aeth__ledger_row *rows, size_t n);

/*
 * Up to `limit` (1..1000) open rows (pending, running, retrying) after
 * the cursor (created, id) in the order (created_at, id): created NULL
 * starts at the first row; id NULL includes created_at = created. *out
 * (*n rows) is the caller's; their payload and result are NULL (read
 * them with aeth__store_tasks_by_id() where needed). Reads the created_at
 * index from the cursor on (there is no index on status: docs/store.md,
 * 0002).
 */
int aeth__store_tasks_open(aeth_store *s, const char *created, const char *id,
			   unsigned int limit, aeth__ledger_row **out, size_t *n);

/* The rows of ids[0..n-1] (n <= 1000) that exist, in any status. */
int aeth__store_tasks_by_id(aeth_store *s, const char *const *ids, size_t n,
			    aeth__ledger_row **out, size_t *nout);

/*
 * Repair row `seen`: status, retry_count (< 0: kept), result (NULL: kept),
 * error, and `note` (a JSON object) as metadata.ledger; updated_at, and
 * completed_at for a final status. Only if the row still has the status
 * and updated_at it had when read: *changed is false when somebody wrote
 * it meanwhile (then nothing changed).
 */
int aeth__store_task_repair(aeth_store *s, const aeth__ledger_row *seen,
			    const char *status, int retry_count,
			    const char *result_json, const char *error,
			    const char *note_json, bool *changed);

/* The shared state of the passes (table ledger_state). */
typedef struct {
	char mark[40];          /* "": none (a full sweep) */
	int64_t full_sweep_age_ms; /* since the last full sweep; -1: never */
	char redis_run_id[48];  /* of the Redis the last pass saw; "" none */
	char pg_started[40];    /* postmaster start the last pass saw; "" none */
	int64_t dead_seen_ms;   /* dead sets read up to (Redis clock); 0 none */
	/* read, not stored: */
	char pg_started_now[40]; /* pg_postmaster_start_time() now */
	char horizon[40];       /* now - 10 s: no mark goes beyond it */
} aeth__ledger_state;

/*
 * Take the reconciler's advisory lock without waiting (*got false: another
 * session holds it) and read the state. While the lock is held the
 * session is pinned: a broken connection is not replaced (its calls fail;
 * the lock went with it). aeth__store_ledger_end() writes the state back
 * (when `save`) with what the pass did (`summary`, a JSON object, and who
 * made it) and lets the lock go.
 */
int aeth__store_ledger_begin(aeth_store *s, bool *got, aeth__ledger_state *st);
int aeth__store_ledger_end(aeth_store *s, const aeth__ledger_state *st, bool save,
			   bool full_sweep, const char *worker_id,
			   const char *summary_json);

/* SHOW synchronous_commit and fsync into the buffers. */
int aeth__store_durability(aeth_store *s, char sync_commit[32], char fsync[16]);

#endif
