//! The PostgreSQL backend, for deployments with several replicas (see [`SqlStore`]).

use std::time::Duration;

use anyhow::Context as _;
use sqlx::any::AnyPoolOptions;

use super::{Dialect, SqlStore};

/// The store on PostgreSQL (the same type as on SQLite).
pub type PostgresStore = SqlStore;

impl SqlStore {
    /// Connects to the PostgreSQL database at `url` (`postgres://…`; libpq parameters such as
    /// `options=-c search_path=…` in the query) and applies pending migrations.
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        sqlx::any::install_default_drivers();
        if !url.starts_with("postgres://") && !url.starts_with("postgresql://") {
            anyhow::bail!("a PostgreSQL URL starts with postgres://");
        }
        let pool = AnyPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(5))
            .connect(url)
            .await
            .context("connecting to PostgreSQL")?;
        Self::migrated(pool, Dialect::Postgres).await
    }
}
