-- 0001_init: the demo's tables, every column and type kept, plus the
-- columns and indexes the C implementation needs. Times are UTC.

CREATE TABLE vms (
    id UUID PRIMARY KEY,
    name VARCHAR(255) NOT NULL,
    orchestrator VARCHAR(50) NOT NULL,
    status VARCHAR(50) NOT NULL,
    kernel_path VARCHAR(500),
    rootfs_path VARCHAR(500),
    socket_path VARCHAR(500),
    vcpu_count INTEGER,
    memory_mb INTEGER,
    created_at TIMESTAMP,
    started_at TIMESTAMP,
    stopped_at TIMESTAMP,
    metadata JSONB,
    -- additions
    owner_worker VARCHAR(255),
    error TEXT,
    updated_at TIMESTAMP,
    CONSTRAINT vms_status_check CHECK
        (status IN ('creating', 'running', 'stopped', 'failed', 'deleted'))
);
CREATE INDEX vms_status_idx ON vms (status);
CREATE INDEX vms_owner_worker_idx ON vms (owner_worker);
CREATE INDEX vms_created_at_idx ON vms (created_at);

CREATE TABLE tasks (
    id UUID PRIMARY KEY,
    type VARCHAR(100) NOT NULL,
    status VARCHAR(50) NOT NULL,
    priority INTEGER,
    payload JSONB NOT NULL,
    result JSONB,
    error TEXT,
    vm_id UUID REFERENCES vms(id),
    worker_id VARCHAR(255),
    max_retries INTEGER,
    retry_count INTEGER,
    created_at TIMESTAMP,
    scheduled_at TIMESTAMP,
    started_at TIMESTAMP,
    completed_at TIMESTAMP,
    metadata JSONB,
    -- additions
    queue VARCHAR(100),
    timeout_ms BIGINT,
    updated_at TIMESTAMP,
    CONSTRAINT tasks_status_check CHECK
        (status IN ('pending', 'running', 'completed', 'failed', 'retrying', 'dead'))
);
CREATE INDEX tasks_status_idx ON tasks (status);
CREATE INDEX tasks_type_idx ON tasks (type);
CREATE INDEX tasks_vm_id_idx ON tasks (vm_id);
CREATE INDEX tasks_worker_id_idx ON tasks (worker_id);
CREATE INDEX tasks_created_at_idx ON tasks (created_at);

CREATE TABLE executions (
    id UUID PRIMARY KEY,
    job_id UUID,
    vm_id UUID REFERENCES vms(id),
    command VARCHAR(500) NOT NULL,
    args JSONB,
    env JSONB,
    exit_code INTEGER,
    stdout TEXT,
    stderr TEXT,
    error TEXT,
    started_at TIMESTAMP,
    completed_at TIMESTAMP,
    duration_ms INTEGER,
    metadata JSONB,
    -- additions
    task_id UUID REFERENCES tasks(id)
);
CREATE INDEX executions_vm_id_idx ON executions (vm_id);
CREATE INDEX executions_task_id_idx ON executions (task_id);
CREATE INDEX executions_started_at_idx ON executions (started_at);
