-- 0006: the ledger reconciler's state (lib/worker/ledger.c; docs/queue.md,
-- "Ledger and transport"). One row, shared by every worker: the worker that
-- holds the reconciler's advisory lock reads it, makes its pass, and writes
-- it back, so that the passes of many workers continue one another.
--
-- mark: open task rows created before it were settled by an earlier pass
-- (finished, put back, or held live by Redis); a pass reads the open rows
-- from the mark on, through the tasks_created_at index (no index on
-- status: 0002). A full sweep (mark NULL) reads them all: the first pass,
-- every hour, and whenever Redis or PostgreSQL restarted since the last
-- pass (redis_run_id, pg_started_at), since a restart is when a store can
-- lose what it had. dead_seen_ms: the Redis clock up to which the queues'
-- dead sets were read (a task Redis gave up on while its row is open).
CREATE TABLE ledger_state (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    mark TIMESTAMP,
    full_sweep_at TIMESTAMP,
    redis_run_id TEXT,
    pg_started_at TIMESTAMP,
    dead_seen_ms BIGINT,
    passes BIGINT NOT NULL DEFAULT 0,
    last_pass_at TIMESTAMP,
    last_pass_by VARCHAR(255),
    last_pass JSONB
);
INSERT INTO ledger_state (id) VALUES (1);
