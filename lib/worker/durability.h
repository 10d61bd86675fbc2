/*
 * lib/worker/durability.h - whether Redis and PostgreSQL keep what they
 * acknowledged across a crash: Redis without an append-only file loses
 * the tasks queued since its last snapshot (with none, all of them);
 * PostgreSQL with synchronous_commit = off loses its last commits, with
 * fsync = off possibly more. The ledger reconciler repairs tasks either
 * store lost (docs/queue.md, "Ledger and transport"), but a store that
 * keeps its data loses nothing to repair. The worker logs the warnings
 * at start; aeth-worker -check shows every finding.
 */
#ifndef AETH_WORKER_DURABILITY_H
#define AETH_WORKER_DURABILITY_H

#include "aetherium/queue.h"
#include "aetherium/store.h"
#include "aetherium/worker.h"

/* Findings as aeth_worker_check() reports them: status 0 (as it should
 * be) or 1 (a warning, with its fix): "redis durability" and
 * "postgresql durability" (synchronous_commit) once each, and
 * "postgresql fsync" when it is off; nothing when the server did not
 * answer (its connection's error is reported elsewhere). */
void aeth__redis_durability(aeth_queue *q, aeth_check_cb cb, void *userdata);
void aeth__pg_durability(aeth_store *s, aeth_check_cb cb, void *userdata);

#endif
