-- 0008: what a vm:execute result says beyond the seed's fields, kept with
-- its execution (docs/store.md): whether output past the worker's limit
-- was dropped, whether the command's timeout killed it, the signal that
-- ended it, and the raw output in base64 when it is not valid UTF-8 (the
-- stdout / stderr columns then hold it with U+FFFD, as before). result:
-- the task result the execution gave, so that a second vm:execute with
-- the same idempotency_key for the same VM returns it instead of running
-- again (one row per key and VM: the unique index).
ALTER TABLE executions
    ADD COLUMN stdout_truncated BOOLEAN NOT NULL DEFAULT false,
    ADD COLUMN stderr_truncated BOOLEAN NOT NULL DEFAULT false,
    ADD COLUMN timed_out BOOLEAN NOT NULL DEFAULT false,
    ADD COLUMN signal INTEGER,
    ADD COLUMN stdout_b64 TEXT,
    ADD COLUMN stderr_b64 TEXT,
    ADD COLUMN idempotency_key TEXT,
    ADD COLUMN result JSONB;

CREATE UNIQUE INDEX executions_idempotency_idx ON executions (vm_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
