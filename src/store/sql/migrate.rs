//! Schema migrations: the checksummed files in `migrations/sqlite` and `migrations/postgres`
//! (one directory per backend: column types differ), embedded at build time and applied at
//! start-up by sqlx's migrator, which refuses to start when a file that was applied has
//! changed since (a released migration is never edited; changes are new files).
//!
//! Databases made before the migrator recorded their migrations in `keystile_migrations`
//! (versions 1 to 7, the same statements as the files of those numbers). Such a database is
//! adopted once: its applied versions are recorded in the migrator's own table with the files'
//! checksums, the old table is dropped, and the migrator then applies what is newer.

use anyhow::Context as _;
use sqlx::migrate::{Migrate as _, Migrator};
use sqlx::{Acquire as _, AnyPool};

use super::Dialect;

static SQLITE: Migrator = sqlx_macros::migrate!("migrations/sqlite");
static POSTGRES: Migrator = sqlx_macros::migrate!("migrations/postgres");

/// An arbitrary key for the PostgreSQL advisory lock under which one starting replica adopts
/// the old bookkeeping while the others wait.
const ADOPTION_LOCK: i64 = 7_400_001;

/// The migrations of a backend.
pub(super) fn migrator(dialect: Dialect) -> &'static Migrator {
    match dialect {
        Dialect::Sqlite => &SQLITE,
        Dialect::Postgres => &POSTGRES,
    }
}

/// Adopts the old bookkeeping if present, then applies pending migrations.
pub(super) async fn run(pool: &AnyPool, dialect: Dialect) -> anyhow::Result<()> {
    let migrator = migrator(dialect);
    adopt_legacy_bookkeeping(pool, dialect, migrator)
        .await
        .context("migrations: adopting keystile_migrations")?;
    migrator.run(pool).await.context("migrations")?;
    Ok(())
}

/// Records the versions `keystile_migrations` lists as applied by the migrator, in one
/// transaction, and drops it. Nothing to do on a database without it.
async fn adopt_legacy_bookkeeping(pool: &AnyPool, dialect: Dialect, migrator: &Migrator) -> anyhow::Result<()> {
    let mut tx = pool.begin_with(dialect.begin_write()).await?;
    if dialect == Dialect::Postgres {
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(ADOPTION_LOCK)
            .execute(&mut *tx)
            .await?;
    }
    let exists: i64 = sqlx::query_scalar(match dialect {
        Dialect::Sqlite => "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'keystile_migrations'",
        Dialect::Postgres => {
            "SELECT COUNT(*) FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_name = 'keystile_migrations'"
        }
    })
    .fetch_one(&mut *tx)
    .await?;
    if exists == 0 {
        tx.rollback().await?;
        return Ok(());
    }
    let applied: Vec<i64> = sqlx::query_scalar("SELECT version FROM keystile_migrations ORDER BY version")
        .fetch_all(&mut *tx)
        .await?;
    let conn = tx.acquire().await?;
    conn.ensure_migrations_table(&migrator.table_name).await?;
    for version in applied {
        let m = migrator
            .iter()
            .find(|m| m.version == version)
            .with_context(|| format!("the database has migration {version}, which this build does not know"))?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO {} (version, description, success, checksum, execution_time) VALUES ($1, $2, $3, $4, 0)",
            migrator.table_name
        )))
        .bind(m.version)
        .bind(m.description.as_ref())
        .bind(true)
        .bind(m.checksum.as_ref())
        .execute(&mut *conn)
        .await?;
    }
    sqlx::query("DROP TABLE keystile_migrations")
        .execute(&mut *conn)
        .await?;
    tx.commit().await?;
    Ok(())
}
