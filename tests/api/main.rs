//! Black-box API tests: a real gateway on 127.0.0.1:0 with a fresh SQLite store per test, a
//! real upstream server, real HTTP. Each module covers one area.

mod audit;
mod audit_bounds;
mod auth;
mod caches;
mod crash;
mod credentials;
mod dns;
mod helpers;
mod limits;
mod metrics;
mod projects;
mod proxy;
mod sdk;
mod secrets_at_rest;
mod ssrf;
mod streaming;
mod surfaces;
mod tenancy;
mod tenants;

mod upstreams;
mod walkthrough;
