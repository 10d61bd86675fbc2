-- 0003: the worker's batch row updates as SQL functions.
--
-- The worker's two batch updates (lib/worker/record.c): the running rows,
-- and the completed rows, of up to 100 tasks a slot took at once, given as
-- a JSON array. A few rows by primary key: one index probe each is always
-- the plan wanted, but on a table with no statistics yet (a fresh database
-- after its first burst) or with fewer than ~40k rows the planner prefers
-- a hash join over a scan of the whole table, per batch (measured: 86 us
-- of PostgreSQL CPU per task instead of 31 us on 20k rows). The settings
-- below hold for the call only. Each returns the ids it updated.
CREATE OR REPLACE FUNCTION aeth_tasks_running(p_rows jsonb, p_worker text)
RETURNS SETOF text LANGUAGE sql
SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off
AS $$
UPDATE tasks t SET status = 'running', worker_id = p_worker,
    retry_count = u.rc, started_at = (now() AT TIME ZONE 'UTC'),
    updated_at = (now() AT TIME ZONE 'UTC')
FROM jsonb_to_recordset(p_rows) AS u(id uuid, rc int)
WHERE t.id = u.id
RETURNING t.id::text
$$;

-- Row fields: id, r (result JSON as text, or null to keep), and for a task
-- whose running row was never written (a deferred start, docs/worker.md)
-- s (its start, ms since the epoch) and rc (its retry count).
CREATE OR REPLACE FUNCTION aeth_tasks_completed(p_rows jsonb, p_worker text)
RETURNS SETOF text LANGUAGE sql
SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off
AS $$
UPDATE tasks t SET status = 'completed',
    result = coalesce(u.r::jsonb, t.result), error = NULL,
    worker_id = CASE WHEN u.s IS NULL THEN t.worker_id ELSE p_worker END,
    retry_count = coalesce(u.rc, t.retry_count),
    started_at = coalesce(to_timestamp(u.s / 1000.0) AT TIME ZONE 'UTC',
                          t.started_at),
    updated_at = (now() AT TIME ZONE 'UTC'),
    completed_at = (now() AT TIME ZONE 'UTC')
FROM jsonb_to_recordset(p_rows) AS u(id uuid, r text, s bigint, rc int)
WHERE t.id = u.id
RETURNING t.id::text
$$;
