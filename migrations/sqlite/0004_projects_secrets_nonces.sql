CREATE TABLE projects (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    -- Unique across tenants: a signature's keyid names a project but no tenant.
    name TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL
);
CREATE TABLE project_keys (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    public_key BLOB NOT NULL,
    created_at TEXT NOT NULL,
    valid_until TEXT
);
CREATE INDEX project_keys_project ON project_keys (project_id);
CREATE TABLE project_secrets (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    project_id TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    env TEXT NOT NULL,
    name TEXT NOT NULL,
    version BIGINT NOT NULL,
    wrapped_key BLOB NOT NULL,
    ciphertext BLOB NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (project_id, env, name)
);
CREATE TABLE signature_nonces (
    project_id TEXT NOT NULL,
    nonce TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (project_id, nonce)
);
CREATE INDEX signature_nonces_expiry ON signature_nonces (expires_at);
