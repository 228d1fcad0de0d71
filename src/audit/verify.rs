//! Checking a chain (`GET /v1/audit/verify`).
//!
//! What it proves: every event from the first to the recorded head is present, in order, and
//! unaltered, as linked with the chain key (so by someone holding the master key); the chain
//! ends in a keyed link (an unkeyed rewrite is not accepted); and, when this gateway keeps a
//! checkpoint for the tenant, the chain reaches the checkpoint's event with its hash (so
//! events removed from the end are noticed, even with the head row rewound). What it cannot
//! prove: see [`super::checkpoint`].

use super::chain::{ChainHead, ChainKey, GENESIS_HASH, LinkVersion};
use super::checkpoint::Loaded;
use crate::domain::TenantId;
use crate::store::{Store, StoreResult};

/// Events read per query while verifying a chain.
const PAGE: u32 = 1_000;

/// The result of checking a chain.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct Verification {
    pub ok: bool,
    /// Events found intact (before the first bad one, when there is one).
    pub events: u64,
    /// The first event whose link, content or position is wrong; for a chain cut short at its
    /// end, the last event still present (`null` if none is).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_bad_event: Option<String>,
    /// Why the chain is broken.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
    /// The sequence number of the checkpoint kept outside the database that the chain was
    /// checked against, if there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<i64>,
}

impl Verification {
    fn bad(events: i64, id: Option<String>, reason: &'static str) -> Self {
        Self {
            ok: false,
            events: u64::try_from(events).unwrap_or(0),
            first_bad_event: id,
            reason: Some(reason),
            checkpoint: None,
        }
    }
}

/// Walks a tenant's chain from the first event to the head recorded with the last commit,
/// recomputing every link: an edited row changes its hash, a deleted row leaves a gap and a
/// broken link, reordered rows break the links, a cut at the end no longer reaches the head
/// (or, with the head rewound, the checkpoint), and a rewrite without the chain key fails
/// every keyed hash.
pub async fn verify(
    store: &dyn Store,
    key: &ChainKey,
    tenant: &TenantId,
    checkpoint: Loaded,
) -> StoreResult<Verification> {
    let checkpoint = match checkpoint {
        Loaded::Damaged => {
            return Ok(Verification::bad(
                0,
                None,
                "the chain's checkpoint outside the database is damaged or forged",
            ));
        }
        Loaded::Valid(head) => Some(head),
        Loaded::None => None,
    };
    let mut result = walk(store, key, tenant, checkpoint.as_ref()).await?;
    if result.ok {
        result.checkpoint = checkpoint.map(|c| c.seq);
    }
    Ok(result)
}

async fn walk(
    store: &dyn Store,
    key: &ChainKey,
    tenant: &TenantId,
    checkpoint: Option<&ChainHead>,
) -> StoreResult<Verification> {
    let head = match store.audit_head(tenant).await? {
        Some(head) => head,
        None => {
            let orphans = store.audit_chain(tenant, 0, i64::MAX, 1).await?;
            if let Some(r) = orphans.into_iter().next() {
                return Ok(Verification::bad(
                    0,
                    Some(r.event.id.to_string()),
                    "the chain head is missing",
                ));
            }
            ChainHead::genesis()
        }
    };
    let mut prev = GENESIS_HASH.to_owned();
    let mut seen: i64 = 0;
    let mut last: Option<(String, LinkVersion)> = None;
    loop {
        let page = store.audit_chain(tenant, seen, head.seq, PAGE).await?;
        let done = page.len() < PAGE as usize;
        for r in page {
            let id = r.event.id.to_string();
            if r.seq != seen + 1 {
                return Ok(Verification::bad(seen, Some(id), "an event before this one is missing"));
            }
            if r.prev_hash != prev {
                return Ok(Verification::bad(
                    seen,
                    Some(id),
                    "this event does not follow the one before it",
                ));
            }
            if last.as_ref().is_some_and(|(_, v)| r.link < *v) {
                return Ok(Verification::bad(
                    seen,
                    Some(id),
                    "an unkeyed event follows a keyed one",
                ));
            }
            if key.hash(r.link, r.seq, &prev, &r.event) != r.hash {
                return Ok(Verification::bad(seen, Some(id), "this event was altered"));
            }
            if checkpoint.is_some_and(|c| c.seq == r.seq && c.hash != r.hash) {
                return Ok(Verification::bad(
                    seen,
                    Some(id),
                    "this event is not the one the checkpoint recorded",
                ));
            }
            prev = r.hash;
            seen = r.seq;
            last = Some((id, r.link));
        }
        if done {
            break;
        }
    }
    let last_id = last.as_ref().map(|(id, _)| id.clone());
    if seen != head.seq || prev != head.hash {
        return Ok(Verification::bad(
            seen,
            last_id,
            "the chain does not reach its recorded head",
        ));
    }
    // A row past the head was not appended by a gateway (which moves the head in the same
    // transaction), unless it was appended since the head was read.
    if let Some(extra) = store
        .audit_chain(tenant, head.seq, i64::MAX, 1)
        .await?
        .into_iter()
        .next()
    {
        let now = store.audit_head(tenant).await?.map_or(0, |h| h.seq);
        if now < extra.seq {
            return Ok(Verification::bad(
                seen,
                Some(extra.event.id.to_string()),
                "this event is past the chain's recorded head",
            ));
        }
    }
    if checkpoint.is_some_and(|c| c.seq > seen) {
        return Ok(Verification::bad(
            seen,
            last_id,
            "the chain ends before its checkpoint: its newest events were removed",
        ));
    }
    if let Some((id, LinkVersion::Sha256)) = last {
        return Ok(Verification::bad(
            seen - 1,
            Some(id),
            "the chain's newest event is not keyed",
        ));
    }
    Ok(Verification {
        ok: true,
        events: u64::try_from(seen).unwrap_or(0),
        first_bad_event: None,
        reason: None,
        checkpoint: None,
    })
}
