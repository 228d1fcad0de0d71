//! Keystile: a self-hosted credential gateway.
//!
//! Callers send requests *through* Keystile; it keeps the real API keys encrypted, injects
//! them into the outgoing request at the last moment and streams the answer back.
//!
//! Layout (one home per concept):
//! - [`domain`]: validated types and policies, no I/O.
//! - [`crypto`]: envelope encryption, API-key hashing, constant-time comparison.
//! - [`store`]: the [`store::Store`] seam and [`store::SqlStore`], its implementation on SQLite
//!   and PostgreSQL.
//! - [`auth`]: who is calling (API keys, the key cache, the `Caller` extractor).
//! - [`limits`]: rate limits and quotas (per key, per client address, per tenant plan).
//! - [`proxy`]: the proxy pipeline (egress policy, SSRF guard, injection, streaming).
//! - [`audit`]: the keyed, hash-chained audit trail, its checkpoints and its group-commit writers.
//! - [`api`]: axum handlers, one module per resource, and the router.
//! - [`config`], [`telemetry`], [`server`]: configuration, logging, start-up.
//! - [`cli`]: the command-line client.

pub mod api;
pub mod audit;
pub mod auth;
pub mod cli;
pub mod config;
pub mod crypto;
pub mod domain;
pub mod error;
pub mod limits;
pub mod metrics;
pub mod proxy;
pub mod server;
pub mod store;
pub mod telemetry;
