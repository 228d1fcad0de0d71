//! The journal's writer thread: appends every waiting event with one `write` and makes them
//! durable with one `fdatasync`, then acknowledges them all (group commit).

use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use tokio::sync::{mpsc, watch};

use super::{HEADER_PREFIX, Job, Position, open_private, segment_id};
use crate::audit::MAX_BATCH;

/// An open segment being appended to.
pub(super) struct Segment {
    pub(super) number: u64,
    pub(super) file: File,
    pub(super) len: u64,
}

impl Segment {
    /// Creates segment `number` with its header, synced, and syncs the directory so the new
    /// file's name is durable too.
    pub(super) fn create(dir: &Path, instance: &str, number: u64) -> anyhow::Result<Self> {
        let id = segment_id(instance, number);
        let path = dir.join(format!("{id}.journal"));
        let mut file = open_private(&path, true)?;
        let header = format!("{HEADER_PREFIX}{id}\n");
        let written = file
            .write_all(header.as_bytes())
            .and_then(|()| file.sync_all())
            .and_then(|()| File::open(dir)?.sync_all());
        if let Err(e) = written {
            // Leave nothing half made: the next attempt creates it again.
            let _ = std::fs::remove_file(&path);
            return Err(e).with_context(|| format!("creating the audit journal segment {}", path.display()));
        }
        Ok(Self {
            number,
            file,
            len: header.len() as u64,
        })
    }
}

/// The writer thread's state.
pub(super) struct Writer {
    pub(super) dir: PathBuf,
    pub(super) instance: String,
    pub(super) segment: Segment,
    pub(super) segment_bytes: u64,
    /// The last append failed: its bytes may be partly on disk, so the next batch goes to a
    /// new segment.
    pub(super) broken: bool,
    pub(super) durable: watch::Sender<Position>,
    pub(super) _lock: File,
}

impl Writer {
    pub(super) fn run(mut self, mut rx: mpsc::Receiver<Job>) {
        let mut jobs = Vec::with_capacity(MAX_BATCH);
        let mut batch = Vec::new();
        while rx.blocking_recv_many(&mut jobs, MAX_BATCH) > 0 {
            batch.clear();
            for job in &jobs {
                batch.extend_from_slice(&job.line);
            }
            let ok = self.append(&batch);
            for job in jobs.drain(..) {
                // A caller that went away no longer needs its answer.
                let _ = job.ack.send(ok);
            }
        }
    }

    /// Appends and syncs one batch; true once it is durable.
    pub(super) fn append(&mut self, batch: &[u8]) -> bool {
        if (self.broken || self.segment.len >= self.segment_bytes)
            && let Err(e) = self.next_segment()
        {
            tracing::error!(error = format!("{e:#}"), "audit journal: no new segment");
            if self.broken {
                return false;
            }
        }
        let written = self
            .segment
            .file
            .write_all(batch)
            .and_then(|()| self.segment.file.sync_data());
        if let Err(e) = written {
            tracing::error!(error = %e, bytes = batch.len(), "audit journal: batch not written");
            // Cut off whatever part of the batch reached the file; the next batch starts a
            // new segment either way.
            let _ = self.segment.file.set_len(self.segment.len);
            self.broken = true;
            return false;
        }
        self.segment.len += batch.len() as u64;
        self.durable.send_replace(Position {
            segment: self.segment.number,
            offset: self.segment.len,
        });
        true
    }

    fn next_segment(&mut self) -> anyhow::Result<()> {
        let next = Segment::create(&self.dir, &self.instance, self.segment.number + 1)?;
        self.segment = next;
        self.broken = false;
        self.durable.send_replace(Position {
            segment: self.segment.number,
            offset: self.segment.len,
        });
        Ok(())
    }
}
