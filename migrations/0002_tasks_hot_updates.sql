-- 0002: cheaper task-row updates.
--
-- A worker writes each task row once or twice after its insert (running,
-- then completed; or completed only, for a task that ran in under a
-- millisecond). An UPDATE that changes no indexed column and finds room
-- on the row's page is a HOT update: no new index entries at all. The
-- status and worker_id columns change in those updates, so an index on
-- either made every one of them insert into all five indexes of the table.
-- Those two indexes go; a listing filtered by status or worker reads the
-- created_at index newest first and stops at its LIMIT. The pages are left
-- 30% free for the new row versions.
--
-- Measured with bench/worker (no-op tasks, one worker, 2 cores): PostgreSQL
-- CPU per task 54-67 us before, 34-36 us after.
DROP INDEX IF EXISTS tasks_status_idx;
DROP INDEX IF EXISTS tasks_worker_id_idx;
ALTER TABLE tasks SET (fillfactor = 70);
