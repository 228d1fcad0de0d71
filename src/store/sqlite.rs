//! The embedded default: SQLite in WAL mode, a file in the data directory (see [`SqlStore`]).

use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use sqlx::any::AnyPoolOptions;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions as _, Connection as _, Executor as _};

use super::{Dialect, SqlStore};

/// The store on an SQLite file (the same type as on PostgreSQL).
pub type SqliteStore = SqlStore;

/// Statements every connection runs first. FULL: a commit is on disk before it returns (WAL
/// synced), so an audit event that released a response survives a power loss too, not only a
/// crash of the process; the audit writer's group commit shares one sync among many events.
const CONNECTION_SETUP: &str = "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;";

impl SqlStore {
    /// Opens (creating if needed) the SQLite database file at `path`, private to its owner
    /// (mode 0600, and so its `-wal` and `-shm` files), and applies pending migrations.
    pub async fn open(path: &Path) -> anyhow::Result<Self> {
        make_private(path).with_context(|| format!("creating SQLite database {}", path.display()))?;
        sqlx::any::install_default_drivers();
        let url = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .to_url_lossy();
        // WAL is a property of the file, set once by one connection: several connections
        // switching at the same moment could fail to get the lock it needs.
        let mut first = sqlx::AnyConnection::connect(url.as_str())
            .await
            .with_context(|| format!("opening SQLite database {}", path.display()))?;
        first
            .execute("PRAGMA journal_mode = WAL")
            .await
            .context("SQLite journal mode")?;
        first.close().await.ok();
        let pool = AnyPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(|conn, _| Box::pin(async move { conn.execute(CONNECTION_SETUP).await.map(drop) }))
            .connect(url.as_str())
            .await
            .with_context(|| format!("opening SQLite database {}", path.display()))?;
        let store = Self::migrated(pool, Dialect::Sqlite).await?;
        make_private(path).with_context(|| format!("securing SQLite database {}", path.display()))?;
        Ok(store)
    }
}

/// Creates the database file with mode 0600 if it is missing, and makes it and its `-wal` and
/// `-shm` companions (which SQLite creates with the database file's mode) 0600 if they exist.
fn make_private(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
        let created = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path);
        match created {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
        for suffix in ["", "-wal", "-shm"] {
            let mut name = path.as_os_str().to_owned();
            name.push(suffix);
            match std::fs::set_permissions(&name, std::fs::Permissions::from_mode(0o600)) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}
