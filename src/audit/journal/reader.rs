//! Reading segments back into the database: the indexer's reader, the start-up's adoption of
//! what earlier runs left, and what happens to damage.
//!
//! A line that is not an event (a wrong header, bytes that do not parse, an unreadable file)
//! is damage. Before the indexer moves past it, the segment is copied as it is into
//! `quarantine/` (so nothing of it is lost, whatever happens to the segment afterwards);
//! then every readable event is indexed and the damage reported. A torn last line at the end of
//! a segment without a newline is not damage: it is an append a crash interrupted, never
//! acknowledged, so nobody was answered on its strength; it is dropped with a warning.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read as _, Seek as _, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;

use super::{Context, HEADER_PREFIX, QUARANTINE, READ_CHUNK, decode, open_private, segment_id};
use crate::audit::event::{Outcome, TargetPath};
use crate::audit::{Actor, AuditEvent, system_tenant};
use crate::store::JournalMark;

/// Reads one segment from its checkpoint on.
pub(super) struct Reader {
    pub(super) number: u64,
    id: String,
    path: PathBuf,
    file: Option<File>,
    pub(super) offset: u64,
    /// The header line is still to be checked (nothing indexed yet).
    at_header: bool,
    /// Read buffer, kept between reads (one allocation, not one per chunk).
    buf: Vec<u8>,
    /// Damage found, as events for the system chain, not yet handed to the caller.
    reports: Vec<AuditEvent>,
    /// How much of the segment the newest copy in the quarantine holds (0: none).
    kept_upto: u64,
}

/// What one read's lines came to.
enum Lines {
    /// Indexed; the file ends here.
    Done,
    /// Indexed; there may be more.
    More,
    /// The read holds no line end.
    NoLineEnd,
}

impl Reader {
    /// Opens segment `number` of `instance` at its checkpoint. A file that cannot be opened is
    /// damage: set aside whole and reported (then the reader has nothing to read).
    pub(super) async fn open(cx: &Context, instance: &str, number: u64) -> anyhow::Result<Self> {
        let id = segment_id(instance, number);
        let path = cx.dir.join(format!("{id}.journal"));
        let checkpoint = cx.store.audit_journal_checkpoint(&id).await?;
        let offset = checkpoint.map_or(0, |c| u64::try_from(c).unwrap_or(0));
        let mut r = Self {
            number,
            id,
            path,
            file: None,
            offset,
            at_header: offset == 0,
            buf: Vec::new(),
            reports: Vec::new(),
            kept_upto: 0,
        };
        match File::open(&r.path) {
            Ok(file) => r.file = Some(file),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                let len = std::fs::metadata(&r.path).map_or(0, |m| m.len());
                r.damaged(cx, 0, len, &format!("cannot be opened: {e}"), true)?;
            }
        }
        Ok(r)
    }

    /// The reports of damage found so far.
    pub(super) fn take_reports(&mut self) -> Vec<AuditEvent> {
        std::mem::take(&mut self.reports)
    }

    /// Indexes the events from the current offset up to `end` (a synced offset, so only whole
    /// lines), or with `None` up to the end of the file, dropping a torn last line.
    pub(super) async fn index(&mut self, cx: &Context, end: Option<u64>) -> anyhow::Result<()> {
        let mut want = READ_CHUNK;
        loop {
            if end.is_some_and(|end| self.offset >= end) {
                return Ok(());
            }
            let cap = end.map_or(want, |end| usize::try_from(end - self.offset).unwrap_or(want).min(want));
            let Some(file) = &mut self.file else { return Ok(()) };
            let mut buf = std::mem::take(&mut self.buf);
            buf.clear();
            // Reads of a local file: short, and the only I/O this task does besides the store.
            file.seek(SeekFrom::Start(self.offset))?;
            file.take(cap as u64).read_to_end(&mut buf)?;
            let got = buf.len();
            let at_eof = got < cap;
            let outcome = self.index_lines(cx, &buf, end.is_none(), at_eof).await;
            self.buf = buf;
            match outcome? {
                Lines::Done => return Ok(()),
                Lines::More => want = READ_CHUNK,
                Lines::NoLineEnd if !at_eof && end.is_none_or(|end| self.offset + (got as u64) < end) => {
                    // A line longer than this read: read more at once.
                    want = want.saturating_mul(2);
                }
                Lines::NoLineEnd if end.is_none() => {
                    self.torn_tail(got);
                    return Ok(());
                }
                Lines::NoLineEnd => {
                    // Synced bytes always end with a line end: these were changed on disk.
                    let at = self.offset;
                    self.damaged(cx, at, got as u64, "synced bytes without a line end", false)?;
                    self.commit(cx, Vec::new(), at + got as u64).await?;
                }
            }
        }
    }

    /// Indexes the whole lines of `buf` (read at the current offset), skipping damaged ones
    /// once the segment has a copy in the quarantine. `complete`: nothing is appended to the
    /// segment any more; `at_eof`: `buf` ends the file.
    async fn index_lines(&mut self, cx: &Context, buf: &[u8], complete: bool, at_eof: bool) -> anyhow::Result<Lines> {
        if buf.is_empty() {
            return Ok(Lines::Done);
        }
        let Some(last_newline) = buf.iter().rposition(|b| *b == b'\n') else {
            return Ok(Lines::NoLineEnd);
        };
        let mut events = Vec::new();
        let mut line_start = 0;
        for line in buf[..=last_newline].split_inclusive(|b| *b == b'\n') {
            let at = self.offset + line_start as u64;
            let body = &line[..line.len() - 1];
            line_start += line.len();
            if std::mem::take(&mut self.at_header) {
                if body != self.header().as_bytes() {
                    self.damaged(cx, at, line.len() as u64, "not the header its name says", complete)?;
                }
                continue;
            }
            match decode(body) {
                Some(event) => events.push(event),
                None => self.damaged(cx, at, line.len() as u64, "a line that is not an event", complete)?,
            }
        }
        self.commit(cx, events, self.offset + line_start as u64).await?;
        if complete && at_eof {
            if line_start < buf.len() {
                self.torn_tail(buf.len() - line_start);
            }
            return Ok(Lines::Done);
        }
        Ok(Lines::More)
    }

    fn header(&self) -> String {
        format!("{HEADER_PREFIX}{}", self.id)
    }

    /// Appends `events` and records that the segment is indexed up to `upto`.
    async fn commit(&mut self, cx: &Context, events: Vec<AuditEvent>, upto: u64) -> anyhow::Result<()> {
        if upto > self.offset {
            let mark = JournalMark {
                journal: &self.id,
                indexed_to: i64::try_from(upto).context("journal offset")?,
            };
            cx.chains.append(cx.store.as_ref(), events, Some(mark)).await?;
            self.offset = upto;
        }
        Ok(())
    }

    /// Records damage (`bytes` bytes at `at`): unless the quarantine already holds a copy of
    /// the segment that covers them, keeps one there and reports it. Called before the indexer
    /// commits past the damage, so the damaged bytes are kept whatever happens next. When no
    /// copy can be made (a full disk), a `complete` segment is moved into the quarantine whole
    /// instead (and read on from its open file); a segment still being written is not indexed
    /// past the damage until a copy can be made (the error makes the indexer retry).
    fn damaged(&mut self, cx: &Context, at: u64, bytes: u64, what: &str, complete: bool) -> anyhow::Result<()> {
        if at + bytes <= self.kept_upto {
            tracing::debug!(journal = %self.id, at, bytes, "audit journal: more damage in a segment already kept");
            return Ok(());
        }
        let name = format!("{}-at-{at}.journal", self.id);
        let whole = |e: anyhow::Error| {
            if !complete {
                return Err(e);
            }
            tracing::error!(error = format!("{e:#}"), journal = %self.id, "audit journal: no copy of a damaged segment; moving it");
            quarantine(&cx.dir, &self.path, &name, true)
        };
        let kept = match self.file {
            None => quarantine(&cx.dir, &self.path, &name, true),
            Some(_) => quarantine(&cx.dir, &self.path, &name, false).or_else(whole),
        }
        .with_context(|| format!("keeping the damaged audit journal segment {}", self.id))?;
        self.kept_upto = if self.path.exists() {
            std::fs::metadata(&kept).map_or(0, |m| m.len())
        } else {
            u64::MAX // moved whole: everything it will ever hold is kept
        };
        cx.damaged.inc();
        tracing::error!(
            journal = %self.id,
            at,
            bytes,
            kept = %kept.display(),
            "audit journal: damaged segment ({what}); it is kept in the quarantine, every readable event is indexed"
        );
        self.reports.push(damage_report(&name, bytes));
        Ok(())
    }

    fn torn_tail(&self, bytes: usize) {
        tracing::warn!(
            journal = %self.id,
            bytes,
            "audit journal: dropped an incomplete last event (its append was interrupted and never acknowledged)"
        );
    }
}

/// The system chain's record of a damaged segment, kept in the quarantine under `name`.
fn damage_report(name: &str, bytes: u64) -> AuditEvent {
    let mut e = AuditEvent::new(system_tenant(), Actor::None, "audit.journal_damaged");
    e.target_path = Some(TargetPath::from(format!("{QUARANTINE}/{name}")));
    e.bytes = Some(i64::try_from(bytes).unwrap_or(i64::MAX));
    e.outcome = Outcome::error("journal_damaged");
    e
}

/// Copies (or, with `moved`, renames) `path` to `<dir>/quarantine/<name>`, synced.
fn quarantine(dir: &Path, path: &Path, name: &str, moved: bool) -> anyhow::Result<PathBuf> {
    let into = dir.join(QUARANTINE);
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        builder.mode(0o700);
    }
    builder
        .create(&into)
        .with_context(|| format!("creating {}", into.display()))?;
    let to = into.join(name);
    if moved {
        std::fs::rename(path, &to).with_context(|| format!("moving {} to {}", path.display(), to.display()))?;
    } else {
        let mut from = File::open(path).with_context(|| format!("reading {}", path.display()))?;
        let mut copy = open_private(&to.with_extension("partial"), false)?;
        copy.set_len(0)?;
        std::io::copy(&mut from, &mut copy).with_context(|| format!("copying {}", path.display()))?;
        copy.sync_all()?;
        std::fs::rename(to.with_extension("partial"), &to)?;
    }
    File::open(&into)?.sync_all()?;
    Ok(to)
}

/// Deletes an indexed segment, then its checkpoint (in that order: a checkpoint without its
/// file is harmless, a file without its checkpoint would be indexed twice). A damaged
/// segment's copy stays in the quarantine.
pub(super) async fn finish(cx: &Context, r: &Reader) -> anyhow::Result<()> {
    match std::fs::remove_file(&r.path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            // Cannot delete it (permissions?): move it aside instead, or leave it for the
            // next start, which finds it indexed to its end.
            let name = format!("{}.journal", r.id);
            if let Err(moved) = quarantine(&cx.dir, &r.path, &name, true) {
                tracing::error!(error = %e, moved = format!("{moved:#}"), journal = %r.id, "audit journal: an indexed segment cannot be deleted");
                return Ok(());
            }
        }
    }
    cx.store.forget_audit_journal(&r.id).await?;
    Ok(())
}

/// Indexes and deletes the segments of every instance whose lock nobody holds; returns the
/// reports of damage found, to be recorded once the journal runs. Fails only when the
/// database refuses.
pub(super) async fn adopt_orphans(cx: &Context) -> anyhow::Result<Vec<AuditEvent>> {
    let dir = &cx.dir;
    let mut instances: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let name = entry?.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.ends_with(".lock.new") {
            remove_stale_pending_lock(&dir.join(name));
        } else if let Some(instance) = name.strip_suffix(".lock") {
            instances.entry(instance.to_owned()).or_default();
        } else if let Some((instance, number)) = name.strip_suffix(".journal").and_then(|s| s.rsplit_once('-'))
            && let Ok(number) = number.parse::<u64>()
        {
            instances.entry(instance.to_owned()).or_default().push(number);
        }
    }
    let mut reports = Vec::new();
    for (instance, mut segments) in instances {
        let lock_path = dir.join(format!("{instance}.lock"));
        let lock = open_private(&lock_path, false)?;
        if lock.try_lock().is_err() {
            continue; // a running gateway's own journal
        }
        segments.sort_unstable();
        for number in segments {
            let mut reader = Reader::open(cx, &instance, number).await?;
            reader.index(cx, None).await?;
            reports.extend(reader.take_reports());
            finish(cx, &reader).await?;
            tracing::info!(journal = %reader.id, "audit journal: indexed a segment left by an earlier run");
        }
        std::fs::remove_file(&lock_path).with_context(|| format!("deleting {}", lock_path.display()))?;
    }
    Ok(reports)
}

/// A start that crashed before its lock got its name left it; nothing was journaled under
/// it. Only an old one goes: a gateway starting now holds its own for a few microseconds
/// between creating and locking it.
fn remove_stale_pending_lock(path: &Path) {
    let old = std::fs::metadata(path)
        .and_then(|m| m.modified())
        .is_ok_and(|t| t.elapsed().is_ok_and(|age| age > Duration::from_secs(60)));
    if old && open_private(path, false).is_ok_and(|f| f.try_lock().is_ok()) {
        let _ = std::fs::remove_file(path);
    }
}
