-- 0007: tenants and API keys (docs/gateway.md). Every vms, tasks and
-- executions row belongs to a tenant; rows written before this migration
-- (and by programs that do not name one) belong to 'default'. A tenant
-- reaches the system only through aeth-gateway with an API key; the key
-- itself is never stored, only its SHA-256 (hex), so a copy of this table
-- does not let anyone in. operator keys see every tenant.
CREATE TABLE tenants (
    id VARCHAR(64) PRIMARY KEY
        CHECK (id ~ '^[a-z0-9][a-z0-9_.-]{0,63}$'),
    created_at TIMESTAMP NOT NULL DEFAULT (now() AT TIME ZONE 'UTC'),
    -- per-tenant limits; NULL: the gateway's gateway.quota_* defaults
    max_vms INTEGER CHECK (max_vms >= 0),
    max_vcpus INTEGER CHECK (max_vcpus >= 0),
    max_memory_mb INTEGER CHECK (max_memory_mb >= 0),
    max_rps INTEGER CHECK (max_rps >= 0)
);
INSERT INTO tenants (id) VALUES ('default');

CREATE TABLE api_keys (
    id UUID PRIMARY KEY,
    tenant_id VARCHAR(64) NOT NULL REFERENCES tenants(id),
    key_sha256 CHAR(64) NOT NULL UNIQUE,
    prefix VARCHAR(16) NOT NULL,
    operator BOOLEAN NOT NULL DEFAULT false,
    name VARCHAR(255),
    created_at TIMESTAMP NOT NULL DEFAULT (now() AT TIME ZONE 'UTC'),
    revoked_at TIMESTAMP
);
CREATE INDEX api_keys_tenant_idx ON api_keys (tenant_id);

-- A constant default: PostgreSQL adds these without rewriting the tables.
-- No foreign key on tasks and executions: they are the hot insert path,
-- and their tenant is the one of the gateway's key (or of the VM).
ALTER TABLE vms ADD COLUMN tenant_id VARCHAR(64) NOT NULL DEFAULT 'default'
    REFERENCES tenants(id);
ALTER TABLE tasks ADD COLUMN tenant_id VARCHAR(64) NOT NULL DEFAULT 'default';
ALTER TABLE executions ADD COLUMN tenant_id VARCHAR(64) NOT NULL
    DEFAULT 'default';
CREATE INDEX vms_tenant_idx ON vms (tenant_id, created_at);
CREATE INDEX tasks_tenant_idx ON tasks (tenant_id, created_at);
CREATE INDEX executions_tenant_idx ON executions (tenant_id);
