//! One fresh, isolated database per test, for each backend.
//!
//! - SQLite: a new file in a temporary directory that lives as long as the fixture.
//! - PostgreSQL: a new schema `ks_<uuid>` on the test server, selected through `search_path`,
//!   dropped when the test ends (also when it fails).
//!
//! PostgreSQL tests skip (pass with a note on stderr) when the server cannot be reached, except
//! on CI (`CI=true`), where an unreachable server is a failure.

use std::future::Future;
use std::str::FromStr as _;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use keystile::store::{SqlStore, Store};
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::{AnyPool, AssertSqlSafe, Connection as _};
use tempfile::TempDir;

const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A store on a private database, plus what is needed to open it again or tamper with it.
pub enum Fixture {
    Sqlite {
        store: SqlStore,
        /// Kept alive so the file survives until the test ends.
        dir: TempDir,
    },
    Postgres {
        store: SqlStore,
        url: String,
        schema: String,
        /// Further schemas a test made (dropped with the fixture's).
        more: std::sync::Mutex<Vec<String>>,
    },
}

/// The last landing's databases, dumped (see `legacy/README.md`).
const LEGACY_SQLITE: &str = include_str!("legacy/sqlite.sql");
const LEGACY_POSTGRES: &str = include_str!("legacy/postgres.sql");

impl Fixture {
    /// A store on a fresh SQLite file.
    pub async fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("creating a temporary directory");
        let store = SqlStore::open(&dir.path().join("keystile.db"))
            .await
            .expect("opening a fresh SQLite store");
        Self::Sqlite { store, dir }
    }

    /// A store on a fresh PostgreSQL schema, or `None` when the server is unreachable outside CI.
    pub async fn postgres() -> Option<Self> {
        let url = std::env::var("KEYSTILE_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned());
        let schema = format!("ks_{}", uuid::Uuid::new_v4().simple());
        if let Err(e) = create_schema(&url, &schema).await {
            let reason = format!("PostgreSQL at {url} is not usable: {e:#}");
            if std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true")) {
                panic!("postgres conformance test cannot run on CI: {reason}");
            }
            eprintln!("skipping postgres conformance test: {reason}");
            return None;
        }
        // The server answered: from here on every failure is a real one.
        let store = SqlStore::connect(&schema_url(&url, &schema))
            .await
            .unwrap_or_else(|e| panic!("connecting a store to schema {schema}: {e:#}"));
        Some(Self::Postgres {
            store,
            url,
            schema,
            more: std::sync::Mutex::default(),
        })
    }

    /// The store under test.
    pub fn store(&self) -> &dyn Store {
        match self {
            Self::Sqlite { store, .. } => store,
            Self::Postgres { store, .. } => store,
        }
    }

    /// The store's pool, to look at or tamper with rows directly.
    pub fn pool(&self) -> &AnyPool {
        match self {
            Self::Sqlite { store, .. } | Self::Postgres { store, .. } => store.pool(),
        }
    }

    /// A second, independent store on the same database (migrations run again).
    pub async fn reopen(&self) -> anyhow::Result<Box<dyn Store>> {
        Ok(match self {
            Self::Sqlite { dir, .. } => Box::new(SqlStore::open(&dir.path().join("keystile.db")).await?),
            Self::Postgres { url, schema, .. } => Box::new(SqlStore::connect(&schema_url(url, schema)).await?),
        })
    }

    /// A store on a second database of the same backend, made by the last landing's store
    /// (its schema, its bookkeeping, its data) and opened by today's: upgraded in place.
    pub async fn upgraded_legacy_database(&self) -> anyhow::Result<SqlStore> {
        match self {
            Self::Sqlite { dir, .. } => {
                let path = dir.path().join(format!("legacy-{}.db", uuid::Uuid::new_v4().simple()));
                let options = SqliteConnectOptions::new().filename(&path).create_if_missing(true);
                let mut conn = SqliteConnection::connect_with(&options).await?;
                sqlx::raw_sql(LEGACY_SQLITE).execute(&mut conn).await?;
                conn.close().await?;
                SqlStore::open(&path).await
            }
            Self::Postgres { url, more, .. } => {
                let schema = format!("ks_{}", uuid::Uuid::new_v4().simple());
                create_schema(url, &schema).await?;
                more.lock().unwrap_or_else(|e| e.into_inner()).push(schema.clone());
                let options = PgConnectOptions::from_str(url)?.options([("search_path", schema.as_str())]);
                let mut conn = PgConnection::connect_with(&options).await?;
                sqlx::raw_sql(LEGACY_POSTGRES).execute(&mut conn).await?;
                conn.close().await?;
                SqlStore::connect(&schema_url(url, &schema)).await
            }
        }
    }

    /// How many migrations the database has recorded.
    pub async fn applied_migrations(&self) -> i64 {
        sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations")
            .fetch_one(self.pool())
            .await
            .expect("counting applied migrations")
    }

    /// Runs a statement with one text parameter directly on the database (to set up states the
    /// store has no method for, such as a terminated tenant).
    pub async fn execute(&self, sql: &'static str, param: &str) {
        sqlx::query(sql)
            .bind(param)
            .execute(self.pool())
            .await
            .unwrap_or_else(|e| panic!("executing {sql:?}: {e}"));
    }

    /// Releases the database: closes the pool and drops the PostgreSQL schemas.
    async fn teardown(&self) {
        match self {
            Self::Sqlite { store, .. } => store.pool().close().await,
            Self::Postgres {
                store,
                url,
                schema,
                more,
            } => {
                store.pool().close().await;
                let more = std::mem::take(&mut *more.lock().unwrap_or_else(|e| e.into_inner()));
                for schema in std::iter::once(schema.clone()).chain(more) {
                    if let Err(e) = drop_schema(url, &schema).await {
                        eprintln!("warning: could not drop test schema {schema}: {e:#}");
                    }
                }
            }
        }
    }
}

/// Runs one conformance test on a fixture, then tears the fixture down whatever the outcome.
pub async fn run<F, Fut>(fixture: Option<Fixture>, test: F)
where
    F: FnOnce(Arc<Fixture>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Some(fixture) = fixture else { return };
    let fixture = Arc::new(fixture);
    // Spawned so that a failing assertion still lets us drop the schema before re-panicking.
    let outcome = tokio::spawn(test(Arc::clone(&fixture))).await;
    fixture.teardown().await;
    if let Err(e) = outcome {
        match e.try_into_panic() {
            Ok(payload) => std::panic::resume_unwind(payload),
            Err(e) => panic!("conformance test did not complete: {e}"),
        }
    }
}

/// `url` with `schema` as the connections' search path.
fn schema_url(url: &str, schema: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}options[search_path]={schema}")
}

async fn admin_connection(url: &str) -> anyhow::Result<PgConnection> {
    let options = PgConnectOptions::from_str(url).context("invalid URL")?;
    tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect_with(&options))
        .await
        .context("timed out connecting")?
        .context("cannot connect")
}

async fn create_schema(url: &str, schema: &str) -> anyhow::Result<()> {
    let mut conn = admin_connection(url).await?;
    // `schema` is `ks_` followed by hex digits: nothing to quote.
    sqlx::raw_sql(AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&mut conn)
        .await
        .with_context(|| format!("cannot create schema {schema}"))?;
    conn.close().await.ok();
    Ok(())
}

async fn drop_schema(url: &str, schema: &str) -> anyhow::Result<()> {
    let mut conn = admin_connection(url).await?;
    sqlx::raw_sql(AssertSqlSafe(format!("DROP SCHEMA IF EXISTS {schema} CASCADE")))
        .execute(&mut conn)
        .await
        .with_context(|| format!("cannot drop schema {schema}"))?;
    conn.close().await.ok();
    Ok(())
}
