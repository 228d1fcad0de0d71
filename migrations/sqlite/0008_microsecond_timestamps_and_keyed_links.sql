-- Timestamps become integer microseconds since the Unix epoch (UTC), in columns named `*_us`:
-- one exact representation on every backend, which the store reads and writes as i64.
--
-- The old columns hold the RFC 3339 text the previous store wrote (`YYYY-MM-DDTHH:MM:SS`, an
-- optional fraction of 3, 6 or 9 digits, then `+00:00`): whole seconds from `strftime('%s')`
-- (negative before 1970), plus the fraction's first six digits. SQLite cannot change a
-- column's type in place, so each column is added, filled and the old one dropped.
--
-- Audit events also record how their link was hashed: 1 = SHA-256 (every event written so
-- far), 2 = keyed HMAC-SHA-256 (from now on; see src/audit/chain.rs).

DROP INDEX api_keys_tenant;

ALTER TABLE tenants ADD COLUMN created_us BIGINT NOT NULL DEFAULT 0;
UPDATE tenants SET created_us = CAST(strftime('%s', substr(created_at, 1, 19)) AS INTEGER) * 1000000
        + CASE WHEN substr(created_at, 20, 1) = '.' THEN CAST(substr(
            substr(substr(created_at, 21), 1, CASE WHEN instr(substr(created_at, 21), '+') > 0 THEN instr(substr(created_at, 21), '+') - 1 ELSE length(substr(created_at, 21)) END)
            || '000000', 1, 6) AS INTEGER) ELSE 0 END;
ALTER TABLE tenants DROP COLUMN created_at;

ALTER TABLE roles ADD COLUMN created_us BIGINT NOT NULL DEFAULT 0;
UPDATE roles SET created_us = CAST(strftime('%s', substr(created_at, 1, 19)) AS INTEGER) * 1000000
        + CASE WHEN substr(created_at, 20, 1) = '.' THEN CAST(substr(
            substr(substr(created_at, 21), 1, CASE WHEN instr(substr(created_at, 21), '+') > 0 THEN instr(substr(created_at, 21), '+') - 1 ELSE length(substr(created_at, 21)) END)
            || '000000', 1, 6) AS INTEGER) ELSE 0 END;
ALTER TABLE roles DROP COLUMN created_at;

ALTER TABLE api_keys ADD COLUMN expires_us BIGINT;
UPDATE api_keys SET expires_us = CAST(strftime('%s', substr(expires_at, 1, 19)) AS INTEGER) * 1000000
        + CASE WHEN substr(expires_at, 20, 1) = '.' THEN CAST(substr(
            substr(substr(expires_at, 21), 1, CASE WHEN instr(substr(expires_at, 21), '+') > 0 THEN instr(substr(expires_at, 21), '+') - 1 ELSE length(substr(expires_at, 21)) END)
            || '000000', 1, 6) AS INTEGER) ELSE 0 END;
ALTER TABLE api_keys DROP COLUMN expires_at;
ALTER TABLE api_keys ADD COLUMN last_used_us BIGINT;
UPDATE api_keys SET last_used_us = CAST(strftime('%s', substr(last_used_at, 1, 19)) AS INTEGER) * 1000000
        + CASE WHEN substr(last_used_at, 20, 1) = '.' THEN CAST(substr(
            substr(substr(last_used_at, 21), 1, CASE WHEN instr(substr(last_used_at, 21), '+') > 0 THEN instr(substr(last_used_at, 21), '+') - 1 ELSE length(substr(last_used_at, 21)) END)
            || '000000', 1, 6) AS INTEGER) ELSE 0 END;
ALTER TABLE api_keys DROP COLUMN last_used_at;
ALTER TABLE api_keys ADD COLUMN revoked_us BIGINT;
UPDATE api_keys SET revoked_us = CAST(strftime('%s', substr(revoked_at, 1, 19)) AS INTEGER) * 1000000
        + CASE WHEN substr(revoked_at, 20, 1) = '.' THEN CAST(substr(
            substr(substr(revoked_at, 21), 1, CASE WHEN instr(substr(revoked_at, 21), '+') > 0 THEN instr(substr(revoked_at, 21), '+') - 1 ELSE length(substr(revoked_at, 21)) END)
            || '000000', 1, 6) AS INTEGER) ELSE 0 END;
ALTER TABLE api_keys DROP COLUMN revoked_at;
ALTER TABLE api_keys ADD COLUMN created_us BIGINT NOT NULL DEFAULT 0;
UPDATE api_keys SET created_us = CAST(strftime('%s', substr(created_at, 1, 19)) AS INTEGER) * 1000000
        + CASE WHEN substr(created_at, 20, 1) = '.' THEN CAST(substr(
            substr(substr(created_at, 21), 1, CASE WHEN instr(substr(created_at, 21), '+') > 0 THEN instr(substr(created_at, 21), '+') - 1 ELSE length(substr(created_at, 21)) END)
            || '000000', 1, 6) AS INTEGER) ELSE 0 END;
ALTER TABLE api_keys DROP COLUMN created_at;

ALTER TABLE credentials ADD COLUMN created_us BIGINT NOT NULL DEFAULT 0;
UPDATE credentials SET created_us = CAST(strftime('%s', substr(created_at, 1, 19)) AS INTEGER) * 1000000
        + CASE WHEN substr(created_at, 20, 1) = '.' THEN CAST(substr(
            substr(substr(created_at, 21), 1, CASE WHEN instr(substr(created_at, 21), '+') > 0 THEN instr(substr(created_at, 21), '+') - 1 ELSE length(substr(created_at, 21)) END)
            || '000000', 1, 6) AS INTEGER) ELSE 0 END;
ALTER TABLE credentials DROP COLUMN created_at;
ALTER TABLE credentials ADD COLUMN updated_us BIGINT NOT NULL DEFAULT 0;
UPDATE credentials SET updated_us = CAST(strftime('%s', substr(updated_at, 1, 19)) AS INTEGER) * 1000000
        + CASE WHEN substr(updated_at, 20, 1) = '.' THEN CAST(substr(
            substr(substr(updated_at, 21), 1, CASE WHEN instr(substr(updated_at, 21), '+') > 0 THEN instr(substr(updated_at, 21), '+') - 1 ELSE length(substr(updated_at, 21)) END)
            || '000000', 1, 6) AS INTEGER) ELSE 0 END;
ALTER TABLE credentials DROP COLUMN updated_at;

ALTER TABLE routes ADD COLUMN created_us BIGINT NOT NULL DEFAULT 0;
UPDATE routes SET created_us = CAST(strftime('%s', substr(created_at, 1, 19)) AS INTEGER) * 1000000
        + CASE WHEN substr(created_at, 20, 1) = '.' THEN CAST(substr(
            substr(substr(created_at, 21), 1, CASE WHEN instr(substr(created_at, 21), '+') > 0 THEN instr(substr(created_at, 21), '+') - 1 ELSE length(substr(created_at, 21)) END)
            || '000000', 1, 6) AS INTEGER) ELSE 0 END;
ALTER TABLE routes DROP COLUMN created_at;
ALTER TABLE routes ADD COLUMN updated_us BIGINT NOT NULL DEFAULT 0;
UPDATE routes SET updated_us = CAST(strftime('%s', substr(updated_at, 1, 19)) AS INTEGER) * 1000000
        + CASE WHEN substr(updated_at, 20, 1) = '.' THEN CAST(substr(
            substr(substr(updated_at, 21), 1, CASE WHEN instr(substr(updated_at, 21), '+') > 0 THEN instr(substr(updated_at, 21), '+') - 1 ELSE length(substr(updated_at, 21)) END)
            || '000000', 1, 6) AS INTEGER) ELSE 0 END;
ALTER TABLE routes DROP COLUMN updated_at;

ALTER TABLE projects ADD COLUMN created_us BIGINT NOT NULL DEFAULT 0;
UPDATE projects SET created_us = CAST(strftime('%s', substr(created_at, 1, 19)) AS INTEGER) * 1000000
        + CASE WHEN substr(created_at, 20, 1) = '.' THEN CAST(substr(
            substr(substr(created_at, 21), 1, CASE WHEN instr(substr(created_at, 21), '+') > 0 THEN instr(substr(created_at, 21), '+') - 1 ELSE length(substr(created_at, 21)) END)
            || '000000', 1, 6) AS INTEGER) ELSE 0 END;
ALTER TABLE projects DROP COLUMN created_at;

ALTER TABLE project_keys ADD COLUMN created_us BIGINT NOT NULL DEFAULT 0;
UPDATE project_keys SET created_us = CAST(strftime('%s', substr(created_at, 1, 19)) AS INTEGER) * 1000000
        + CASE WHEN substr(created_at, 20, 1) = '.' THEN CAST(substr(
            substr(substr(created_at, 21), 1, CASE WHEN instr(substr(created_at, 21), '+') > 0 THEN instr(substr(created_at, 21), '+') - 1 ELSE length(substr(created_at, 21)) END)
            || '000000', 1, 6) AS INTEGER) ELSE 0 END;
ALTER TABLE project_keys DROP COLUMN created_at;
ALTER TABLE project_keys ADD COLUMN valid_until_us BIGINT;
UPDATE project_keys SET valid_until_us = CAST(strftime('%s', substr(valid_until, 1, 19)) AS INTEGER) * 1000000
        + CASE WHEN substr(valid_until, 20, 1) = '.' THEN CAST(substr(
            substr(substr(valid_until, 21), 1, CASE WHEN instr(substr(valid_until, 21), '+') > 0 THEN instr(substr(valid_until, 21), '+') - 1 ELSE length(substr(valid_until, 21)) END)
            || '000000', 1, 6) AS INTEGER) ELSE 0 END;
ALTER TABLE project_keys DROP COLUMN valid_until;

ALTER TABLE project_secrets ADD COLUMN created_us BIGINT NOT NULL DEFAULT 0;
UPDATE project_secrets SET created_us = CAST(strftime('%s', substr(created_at, 1, 19)) AS INTEGER) * 1000000
        + CASE WHEN substr(created_at, 20, 1) = '.' THEN CAST(substr(
            substr(substr(created_at, 21), 1, CASE WHEN instr(substr(created_at, 21), '+') > 0 THEN instr(substr(created_at, 21), '+') - 1 ELSE length(substr(created_at, 21)) END)
            || '000000', 1, 6) AS INTEGER) ELSE 0 END;
ALTER TABLE project_secrets DROP COLUMN created_at;
ALTER TABLE project_secrets ADD COLUMN updated_us BIGINT NOT NULL DEFAULT 0;
UPDATE project_secrets SET updated_us = CAST(strftime('%s', substr(updated_at, 1, 19)) AS INTEGER) * 1000000
        + CASE WHEN substr(updated_at, 20, 1) = '.' THEN CAST(substr(
            substr(substr(updated_at, 21), 1, CASE WHEN instr(substr(updated_at, 21), '+') > 0 THEN instr(substr(updated_at, 21), '+') - 1 ELSE length(substr(updated_at, 21)) END)
            || '000000', 1, 6) AS INTEGER) ELSE 0 END;
ALTER TABLE project_secrets DROP COLUMN updated_at;

CREATE INDEX api_keys_tenant ON api_keys (tenant_id, created_us);

ALTER TABLE audit_events ADD COLUMN link BIGINT NOT NULL DEFAULT 1;
