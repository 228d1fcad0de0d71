//! Chain checkpoints kept outside the database: for each tenant, the newest head this gateway
//! committed (sequence number and hash), MAC'd with a key derived from the master key, in a
//! file of the data directory (`<data_dir>/audit/heads/<tenant>.head`).
//!
//! The database alone cannot show that its newest events were removed: whoever can delete
//! them can rewind the head row too. A checkpoint can: verification requires the chain to
//! reach the checkpoint's sequence number with the checkpoint's hash. Checkpoints follow
//! commits (never ahead of them), written by one task in the background — temporary file,
//! sync, rename — so a request never waits for one; [`Checkpoints::flushed`] waits for them.
//!
//! What they cannot show: a rollback of the database and the data directory together (both
//! restored from the same old backup), or, with PostgreSQL and replicas that do not share a
//! data directory, events removed after the replica answering `verify` last appended.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, watch};

use super::chain::{ChainHead, DerivedKey};
use super::event::AuditRecord;
use crate::crypto::MasterKey;
use crate::domain::TenantId;

/// The label the checkpoint key is derived with.
pub const LABEL: &str = "keystile audit checkpoint v1";

/// What a tenant's checkpoint file says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Loaded {
    /// No checkpoint (none kept, or none written yet for this tenant).
    None,
    /// A checkpoint whose MAC verifies.
    Valid(ChainHead),
    /// A file that cannot be read, parsed or authenticated: damaged or forged.
    Damaged,
}

/// A checkpoint as written.
#[derive(Serialize, Deserialize)]
struct File {
    tenant: String,
    seq: i64,
    hash: String,
    mac: String,
}

/// The checkpoints of one gateway.
pub struct Checkpoints {
    dir: PathBuf,
    key: DerivedKey,
    pending: Mutex<Pending>,
    wake: Notify,
    written: watch::Sender<u64>,
}

#[derive(Default)]
struct Pending {
    heads: HashMap<TenantId, ChainHead>,
    /// Advances so far; the writer publishes how many it has written.
    generation: u64,
}

impl std::fmt::Debug for Checkpoints {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checkpoints")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl Checkpoints {
    /// Keeps checkpoints in `dir` (created, mode 0700), MAC'd with a key derived from
    /// `master`, and starts their writer on the current tokio runtime.
    pub fn open(dir: &Path, master: &MasterKey) -> anyhow::Result<Arc<Self>> {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt as _;
            builder.mode(0o700);
        }
        builder
            .create(dir)
            .with_context(|| format!("creating the audit checkpoint directory {}", dir.display()))?;
        let (written, _) = watch::channel(0);
        let this = Arc::new(Self {
            dir: dir.to_owned(),
            key: DerivedKey::derive(master, LABEL),
            pending: Mutex::new(Pending::default()),
            wake: Notify::new(),
            written,
        });
        tokio::spawn(write_loop(Arc::downgrade(&this)));
        Ok(this)
    }

    /// Moves the checkpoints of the tenants in `records` (just committed) to their newest.
    pub fn advance(&self, records: &[AuditRecord]) {
        if records.is_empty() {
            return;
        }
        let mut p = self.lock();
        for r in records {
            let newer = p.heads.get(&r.event.tenant_id).is_none_or(|h| h.seq < r.seq);
            if newer {
                let head = ChainHead {
                    seq: r.seq,
                    hash: r.hash.clone(),
                };
                p.heads.insert(r.event.tenant_id.clone(), head);
            }
        }
        p.generation += 1;
        drop(p);
        self.wake.notify_one();
    }

    /// Waits (at most `limit`) until every advance made before this call is written.
    pub async fn flushed(&self, limit: Duration) -> bool {
        let target = self.lock().generation;
        let mut written = self.written.subscribe();
        matches!(
            tokio::time::timeout(limit, written.wait_for(|w| *w >= target)).await,
            Ok(Ok(_))
        )
    }

    /// Reads a tenant's checkpoint.
    pub fn load(&self, tenant: &TenantId) -> Loaded {
        let bytes = match std::fs::read(self.path(tenant)) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Loaded::None,
            Err(e) => {
                tracing::error!(error = %e, tenant = %tenant, "audit checkpoint cannot be read");
                return Loaded::Damaged;
            }
        };
        match serde_json::from_slice::<File>(&bytes) {
            Ok(f) if f.tenant == tenant.as_str() && subtle_eq(&f.mac, &self.mac(tenant, f.seq, &f.hash)) => {
                Loaded::Valid(ChainHead {
                    seq: f.seq,
                    hash: f.hash,
                })
            }
            _ => Loaded::Damaged,
        }
    }

    fn mac(&self, tenant: &TenantId, seq: i64, hash: &str) -> String {
        let seq = seq.to_string();
        self.key.mac_hex(&[
            tenant.as_str().as_bytes(),
            b"\n",
            seq.as_bytes(),
            b"\n",
            hash.as_bytes(),
        ])
    }

    fn path(&self, tenant: &TenantId) -> PathBuf {
        // Tenant ids are UUIDs: safe file names.
        self.dir.join(format!("{}.head", tenant.as_str()))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        // A poisoned lock only means a panic elsewhere mid-update; the map is still usable.
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes one tenant's checkpoint: temporary file, sync, rename.
    fn write(&self, tenant: &TenantId, head: &ChainHead) -> std::io::Result<()> {
        let file = File {
            tenant: tenant.as_str().to_owned(),
            seq: head.seq,
            hash: head.hash.clone(),
            mac: self.mac(tenant, head.seq, &head.hash),
        };
        let path = self.path(tenant);
        let tmp = path.with_extension("head.tmp");
        let mut o = std::fs::OpenOptions::new();
        o.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            o.mode(0o600);
        }
        let mut f = o.open(&tmp)?;
        f.write_all(&serde_json::to_vec(&file).unwrap_or_default())?;
        f.sync_data()?;
        std::fs::rename(&tmp, &path)
    }
}

/// Constant-time comparison of two MACs (hex).
fn subtle_eq(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq as _;
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// Writes pending checkpoints whenever there are some, until the checkpoints are dropped.
async fn write_loop(this: std::sync::Weak<Checkpoints>) {
    loop {
        let Some(c) = this.upgrade() else { return };
        let (heads, generation) = {
            let mut p = c.lock();
            (std::mem::take(&mut p.heads), p.generation)
        };
        if heads.is_empty() && *c.written.borrow() >= generation {
            // Woken by the next advance; rechecks now and then so a dropped set ends the task.
            let _ = tokio::time::timeout(Duration::from_secs(1), c.wake.notified()).await;
            continue;
        }
        let writer = c.clone();
        let done = tokio::task::spawn_blocking(move || {
            for (tenant, head) in &heads {
                if let Err(e) = writer.write(tenant, head) {
                    tracing::error!(error = %e, tenant = %tenant, "audit checkpoint not written");
                }
            }
            if let Ok(dir) = std::fs::File::open(&writer.dir) {
                let _ = dir.sync_all();
            }
        })
        .await;
        if done.is_err() {
            tracing::error!("audit checkpoint writer failed");
        }
        c.written.send_replace(generation);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{Actor, AuditEvent, ChainKey};

    fn record(tenant: &TenantId, seq: i64) -> AuditRecord {
        let key = ChainKey::from_bytes([1; 32]);
        let mut head = ChainHead {
            seq: seq - 1,
            hash: crate::audit::GENESIS_HASH.into(),
        };
        key.link(&mut head, AuditEvent::new(tenant.clone(), Actor::None, "x"))
    }

    #[tokio::test]
    async fn a_checkpoint_is_written_authenticated_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let master = MasterKey::generate();
        let c = Checkpoints::open(&dir.path().join("heads"), &master).unwrap();
        let t = TenantId::generate();
        assert_eq!(c.load(&t), Loaded::None);
        let r = record(&t, 5);
        c.advance(std::slice::from_ref(&r));
        c.advance(&[record(&t, 3)]);
        assert!(c.flushed(Duration::from_secs(10)).await);
        assert_eq!(
            c.load(&t),
            Loaded::Valid(ChainHead {
                seq: 5,
                hash: r.hash.clone()
            }),
            "never moves back"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(c.path(&t)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // Another master key does not authenticate it; an edited file does not either.
        let other = Checkpoints::open(&dir.path().join("heads"), &MasterKey::generate()).unwrap();
        assert_eq!(other.load(&t), Loaded::Damaged);
        let text = std::fs::read_to_string(c.path(&t))
            .unwrap()
            .replace("\"seq\":5", "\"seq\":9");
        std::fs::write(c.path(&t), text).unwrap();
        assert_eq!(c.load(&t), Loaded::Damaged);
        std::fs::write(c.path(&t), b"garbage").unwrap();
        assert_eq!(c.load(&t), Loaded::Damaged);
    }

    #[tokio::test]
    async fn a_checkpoint_cannot_be_moved_to_another_tenant() {
        let dir = tempfile::tempdir().unwrap();
        let c = Checkpoints::open(dir.path(), &MasterKey::generate()).unwrap();
        let (a, b) = (TenantId::generate(), TenantId::generate());
        c.advance(&[record(&a, 1)]);
        assert!(c.flushed(Duration::from_secs(10)).await);
        std::fs::copy(c.path(&a), c.path(&b)).unwrap();
        assert_eq!(c.load(&b), Loaded::Damaged);
    }
}
