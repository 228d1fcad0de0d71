//! Versioned schema migrations, one list per backend, applied in order at start-up.
//!
//! A migration is never edited once released; changes are new entries. Both lists describe the
//! same logical schema; they differ only in column types.

/// SQLite migrations: `(version, sql)`.
pub const SQLITE: &[(i64, &str)] = &[
    (
        1,
        r#"
CREATE TABLE tenants (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    status TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE roles (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    name TEXT NOT NULL,
    description TEXT,
    permissions TEXT NOT NULL,
    credential_scopes TEXT NOT NULL,
    created_at TEXT NOT NULL,
    UNIQUE (tenant_id, name)
);
CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    name TEXT NOT NULL,
    key_prefix TEXT NOT NULL,
    key_hash TEXT NOT NULL UNIQUE,
    role_id TEXT NOT NULL REFERENCES roles(id),
    expires_at TEXT,
    last_used_at TEXT,
    revoked_at TEXT,
    created_at TEXT NOT NULL
);
CREATE INDEX api_keys_tenant ON api_keys (tenant_id, created_at);
CREATE TABLE credentials (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    alias TEXT NOT NULL,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    version BIGINT NOT NULL,
    inject TEXT,
    policy TEXT NOT NULL,
    description TEXT,
    metadata TEXT NOT NULL,
    wrapped_key BLOB NOT NULL,
    ciphertext BLOB NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (tenant_id, alias)
);
"#,
    ),
    (
        2,
        r#"
CREATE TABLE routes (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    name TEXT NOT NULL,
    spec TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (tenant_id, name)
);
"#,
    ),
    (
        3,
        r#"
ALTER TABLE tenants ADD COLUMN plan TEXT NOT NULL DEFAULT '{}';
"#,
    ),
    (
        4,
        r#"
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
"#,
    ),
    (
        5,
        r#"
CREATE TABLE audit_events (
    tenant_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    id TEXT NOT NULL UNIQUE,
    time_us BIGINT NOT NULL,
    actor_kind TEXT NOT NULL,
    actor_id TEXT,
    action TEXT NOT NULL,
    proxy_mode TEXT,
    credential TEXT,
    credential_version BIGINT,
    method TEXT,
    target_host TEXT,
    target_path TEXT,
    status BIGINT,
    latency_ms BIGINT,
    bytes BIGINT,
    client_ip TEXT,
    outcome TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    PRIMARY KEY (tenant_id, seq)
);
CREATE INDEX audit_events_time ON audit_events (tenant_id, time_us);
CREATE TABLE audit_heads (
    tenant_id TEXT PRIMARY KEY,
    seq BIGINT NOT NULL,
    hash TEXT NOT NULL
);
"#,
    ),
    (
        6,
        r#"
CREATE TABLE tenant_usage (
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    period TEXT NOT NULL,
    count BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, period)
);
"#,
    ),
    (
        7,
        r#"
CREATE TABLE audit_journals (
    journal TEXT PRIMARY KEY,
    indexed_to BIGINT NOT NULL
);
"#,
    ),
];

/// PostgreSQL migrations: `(version, sql)`.
pub const POSTGRES: &[(i64, &str)] = &[
    (
        1,
        r#"
CREATE TABLE tenants (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    status TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE roles (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    name TEXT NOT NULL,
    description TEXT,
    permissions TEXT NOT NULL,
    credential_scopes TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    UNIQUE (tenant_id, name)
);
CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    name TEXT NOT NULL,
    key_prefix TEXT NOT NULL,
    key_hash TEXT NOT NULL UNIQUE,
    role_id TEXT NOT NULL REFERENCES roles(id),
    expires_at TIMESTAMPTZ,
    last_used_at TIMESTAMPTZ,
    revoked_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX api_keys_tenant ON api_keys (tenant_id, created_at);
CREATE TABLE credentials (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    alias TEXT NOT NULL,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    version BIGINT NOT NULL,
    inject TEXT,
    policy TEXT NOT NULL,
    description TEXT,
    metadata TEXT NOT NULL,
    wrapped_key BYTEA NOT NULL,
    ciphertext BYTEA NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    UNIQUE (tenant_id, alias)
);
"#,
    ),
    (
        2,
        r#"
CREATE TABLE routes (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    name TEXT NOT NULL,
    spec TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    UNIQUE (tenant_id, name)
);
"#,
    ),
    (
        3,
        r#"
ALTER TABLE tenants ADD COLUMN plan TEXT NOT NULL DEFAULT '{}';
"#,
    ),
    (
        4,
        r#"
CREATE TABLE projects (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    -- Unique across tenants: a signature's keyid names a project but no tenant.
    name TEXT NOT NULL UNIQUE,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE project_keys (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    public_key BYTEA NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    valid_until TIMESTAMPTZ
);
CREATE INDEX project_keys_project ON project_keys (project_id);
CREATE TABLE project_secrets (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    project_id TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    env TEXT NOT NULL,
    name TEXT NOT NULL,
    version BIGINT NOT NULL,
    wrapped_key BYTEA NOT NULL,
    ciphertext BYTEA NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    UNIQUE (project_id, env, name)
);
CREATE TABLE signature_nonces (
    project_id TEXT NOT NULL,
    nonce TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (project_id, nonce)
);
CREATE INDEX signature_nonces_expiry ON signature_nonces (expires_at);
"#,
    ),
    (
        5,
        r#"
CREATE TABLE audit_events (
    tenant_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    id TEXT NOT NULL UNIQUE,
    time_us BIGINT NOT NULL,
    actor_kind TEXT NOT NULL,
    actor_id TEXT,
    action TEXT NOT NULL,
    proxy_mode TEXT,
    credential TEXT,
    credential_version BIGINT,
    method TEXT,
    target_host TEXT,
    target_path TEXT,
    status BIGINT,
    latency_ms BIGINT,
    bytes BIGINT,
    client_ip TEXT,
    outcome TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    PRIMARY KEY (tenant_id, seq)
);
CREATE INDEX audit_events_time ON audit_events (tenant_id, time_us);
CREATE TABLE audit_heads (
    tenant_id TEXT PRIMARY KEY,
    seq BIGINT NOT NULL,
    hash TEXT NOT NULL
);
"#,
    ),
    (
        6,
        r#"
CREATE TABLE tenant_usage (
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    period TEXT NOT NULL,
    count BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, period)
);
"#,
    ),
    (
        7,
        r#"
CREATE TABLE audit_journals (
    journal TEXT PRIMARY KEY,
    indexed_to BIGINT NOT NULL
);
"#,
    ),
];
