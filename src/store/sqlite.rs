//! The embedded default: SQLite in WAL mode, a file in the data directory.

use std::path::Path;
use std::str::FromStr as _;
use std::time::Duration;

use anyhow::Context as _;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use super::migrations;
use super::sql::{cred_cols, impl_store, key_cols, role_cols};
use super::sql_projects::{project_cols, project_key_cols, secret_cols};

/// A store on an SQLite file.
#[derive(Clone)]
pub struct SqliteStore {
    pool: sqlx::SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and applies pending migrations.
    pub async fn open(path: &Path) -> anyhow::Result<Self> {
        let options = SqliteConnectOptions::from_str("sqlite://")
            .context("sqlite options")?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a commit is on disk before it returns (WAL synced), so an audit event that
            // released a response survives a power loss too, not only a crash of the process.
            // The audit writer's group commit shares one sync among many events.
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await
            .with_context(|| format!("opening SQLite database {}", path.display()))?;
        let store = Self { pool };
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> anyhow::Result<()> {
        let mut tx = self.pool.begin().await.context("migrations: begin")?;
        sqlx::raw_sql(
            "CREATE TABLE IF NOT EXISTS keystile_migrations (version BIGINT PRIMARY KEY, applied_at TEXT NOT NULL)",
        )
        .execute(&mut *tx)
        .await
        .context("migrations: bookkeeping table")?;
        let applied: Vec<i64> = sqlx::query_scalar("SELECT version FROM keystile_migrations")
            .fetch_all(&mut *tx)
            .await
            .context("migrations: read applied")?;
        for (version, sql) in migrations::SQLITE {
            if applied.contains(version) {
                continue;
            }
            sqlx::raw_sql(*sql)
                .execute(&mut *tx)
                .await
                .with_context(|| format!("migration {version}"))?;
            sqlx::query("INSERT INTO keystile_migrations (version, applied_at) VALUES ($1, $2)")
                .bind(version)
                .bind(super::now().to_rfc3339())
                .execute(&mut *tx)
                .await
                .context("migrations: record")?;
        }
        tx.commit().await.context("migrations: commit")?;
        Ok(())
    }

    /// Begins a transaction that may write. `BEGIN IMMEDIATE` takes the write lock (waiting
    /// up to the busy timeout) before the first read: a deferred transaction that reads and
    /// then writes fails at once with "database is locked" when another connection (the audit
    /// indexer, another gateway) committed in between, and the busy timeout cannot help it.
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, sqlx::Error> {
        self.pool.begin_with("BEGIN IMMEDIATE").await
    }

    /// The underlying pool (for tests that tamper with rows directly).
    pub fn pool(&self) -> &sqlx::SqlitePool {
        &self.pool
    }
}

impl_store!(SqliteStore, sqlx::Sqlite);
