-- Timestamps become integer microseconds since the Unix epoch (UTC), in columns named `*_us`:
-- one exact representation on every backend, which the store reads and writes as i64.
-- Whole seconds plus the microseconds of the second: exact on every PostgreSQL version.
--
-- Audit events also record how their link was hashed: 1 = SHA-256 (every event written so
-- far), 2 = keyed HMAC-SHA-256 (from now on; see src/audit/chain.rs).

ALTER TABLE tenants ALTER COLUMN created_at TYPE BIGINT USING
    floor(EXTRACT(EPOCH FROM created_at))::BIGINT * 1000000 + (EXTRACT(MICROSECONDS FROM created_at)::BIGINT % 1000000);
ALTER TABLE tenants RENAME COLUMN created_at TO created_us;

ALTER TABLE roles ALTER COLUMN created_at TYPE BIGINT USING
    floor(EXTRACT(EPOCH FROM created_at))::BIGINT * 1000000 + (EXTRACT(MICROSECONDS FROM created_at)::BIGINT % 1000000);
ALTER TABLE roles RENAME COLUMN created_at TO created_us;

ALTER TABLE api_keys ALTER COLUMN expires_at TYPE BIGINT USING
    floor(EXTRACT(EPOCH FROM expires_at))::BIGINT * 1000000 + (EXTRACT(MICROSECONDS FROM expires_at)::BIGINT % 1000000);
ALTER TABLE api_keys RENAME COLUMN expires_at TO expires_us;
ALTER TABLE api_keys ALTER COLUMN last_used_at TYPE BIGINT USING
    floor(EXTRACT(EPOCH FROM last_used_at))::BIGINT * 1000000 + (EXTRACT(MICROSECONDS FROM last_used_at)::BIGINT % 1000000);
ALTER TABLE api_keys RENAME COLUMN last_used_at TO last_used_us;
ALTER TABLE api_keys ALTER COLUMN revoked_at TYPE BIGINT USING
    floor(EXTRACT(EPOCH FROM revoked_at))::BIGINT * 1000000 + (EXTRACT(MICROSECONDS FROM revoked_at)::BIGINT % 1000000);
ALTER TABLE api_keys RENAME COLUMN revoked_at TO revoked_us;
ALTER TABLE api_keys ALTER COLUMN created_at TYPE BIGINT USING
    floor(EXTRACT(EPOCH FROM created_at))::BIGINT * 1000000 + (EXTRACT(MICROSECONDS FROM created_at)::BIGINT % 1000000);
ALTER TABLE api_keys RENAME COLUMN created_at TO created_us;

ALTER TABLE credentials ALTER COLUMN created_at TYPE BIGINT USING
    floor(EXTRACT(EPOCH FROM created_at))::BIGINT * 1000000 + (EXTRACT(MICROSECONDS FROM created_at)::BIGINT % 1000000);
ALTER TABLE credentials RENAME COLUMN created_at TO created_us;
ALTER TABLE credentials ALTER COLUMN updated_at TYPE BIGINT USING
    floor(EXTRACT(EPOCH FROM updated_at))::BIGINT * 1000000 + (EXTRACT(MICROSECONDS FROM updated_at)::BIGINT % 1000000);
ALTER TABLE credentials RENAME COLUMN updated_at TO updated_us;

ALTER TABLE routes ALTER COLUMN created_at TYPE BIGINT USING
    floor(EXTRACT(EPOCH FROM created_at))::BIGINT * 1000000 + (EXTRACT(MICROSECONDS FROM created_at)::BIGINT % 1000000);
ALTER TABLE routes RENAME COLUMN created_at TO created_us;
ALTER TABLE routes ALTER COLUMN updated_at TYPE BIGINT USING
    floor(EXTRACT(EPOCH FROM updated_at))::BIGINT * 1000000 + (EXTRACT(MICROSECONDS FROM updated_at)::BIGINT % 1000000);
ALTER TABLE routes RENAME COLUMN updated_at TO updated_us;

ALTER TABLE projects ALTER COLUMN created_at TYPE BIGINT USING
    floor(EXTRACT(EPOCH FROM created_at))::BIGINT * 1000000 + (EXTRACT(MICROSECONDS FROM created_at)::BIGINT % 1000000);
ALTER TABLE projects RENAME COLUMN created_at TO created_us;

ALTER TABLE project_keys ALTER COLUMN created_at TYPE BIGINT USING
    floor(EXTRACT(EPOCH FROM created_at))::BIGINT * 1000000 + (EXTRACT(MICROSECONDS FROM created_at)::BIGINT % 1000000);
ALTER TABLE project_keys RENAME COLUMN created_at TO created_us;
ALTER TABLE project_keys ALTER COLUMN valid_until TYPE BIGINT USING
    floor(EXTRACT(EPOCH FROM valid_until))::BIGINT * 1000000 + (EXTRACT(MICROSECONDS FROM valid_until)::BIGINT % 1000000);
ALTER TABLE project_keys RENAME COLUMN valid_until TO valid_until_us;

ALTER TABLE project_secrets ALTER COLUMN created_at TYPE BIGINT USING
    floor(EXTRACT(EPOCH FROM created_at))::BIGINT * 1000000 + (EXTRACT(MICROSECONDS FROM created_at)::BIGINT % 1000000);
ALTER TABLE project_secrets RENAME COLUMN created_at TO created_us;
ALTER TABLE project_secrets ALTER COLUMN updated_at TYPE BIGINT USING
    floor(EXTRACT(EPOCH FROM updated_at))::BIGINT * 1000000 + (EXTRACT(MICROSECONDS FROM updated_at)::BIGINT % 1000000);
ALTER TABLE project_secrets RENAME COLUMN updated_at TO updated_us;

ALTER TABLE audit_events ADD COLUMN link BIGINT NOT NULL DEFAULT 1;
