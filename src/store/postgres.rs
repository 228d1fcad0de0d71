//! The PostgreSQL backend, for deployments with several replicas.

use std::str::FromStr as _;

use anyhow::Context as _;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use super::migrations;
use super::sql::{cred_cols, impl_store, key_cols, role_cols};
use super::sql_projects::{project_cols, project_key_cols, secret_cols};

/// A store on a PostgreSQL database.
#[derive(Clone)]
pub struct PostgresStore {
    pool: sqlx::PgPool,
}

impl PostgresStore {
    /// Connects to `url` and applies pending migrations.
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        let options = PgConnectOptions::from_str(url).context("invalid PostgreSQL URL")?;
        Self::connect_with(options).await
    }

    /// Connects with explicit options (tests use this to pin a `search_path`).
    pub async fn connect_with(options: PgConnectOptions) -> anyhow::Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(std::time::Duration::from_secs(5))
            .connect_with(options)
            .await
            .context("connecting to PostgreSQL")?;
        let store = Self { pool };
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> anyhow::Result<()> {
        let mut tx = self.pool.begin().await.context("migrations: begin")?;
        // Several replicas may start at once: one applies, the others wait and see it done.
        sqlx::query("SELECT pg_advisory_xact_lock(7400001)")
            .execute(&mut *tx)
            .await
            .context("migrations: lock")?;
        sqlx::raw_sql("CREATE TABLE IF NOT EXISTS keystile_migrations (version BIGINT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL)")
            .execute(&mut *tx)
            .await
            .context("migrations: bookkeeping table")?;
        let applied: Vec<i64> = sqlx::query_scalar("SELECT version FROM keystile_migrations")
            .fetch_all(&mut *tx)
            .await
            .context("migrations: read applied")?;
        for (version, sql) in migrations::POSTGRES {
            if applied.contains(version) {
                continue;
            }
            sqlx::raw_sql(*sql)
                .execute(&mut *tx)
                .await
                .with_context(|| format!("migration {version}"))?;
            sqlx::query("INSERT INTO keystile_migrations (version, applied_at) VALUES ($1, $2)")
                .bind(version)
                .bind(super::now())
                .execute(&mut *tx)
                .await
                .context("migrations: record")?;
        }
        tx.commit().await.context("migrations: commit")?;
        Ok(())
    }

    /// Begins a transaction that may write (row locks serialize writers on PostgreSQL).
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
        self.pool.begin().await
    }

    /// The underlying pool (for tests that tamper with rows directly).
    pub fn pool(&self) -> &sqlx::PgPool {
        &self.pool
    }
}

impl_store!(PostgresStore, sqlx::Postgres);
