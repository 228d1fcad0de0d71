CREATE TABLE tenant_usage (
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    period TEXT NOT NULL,
    count BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, period)
);
