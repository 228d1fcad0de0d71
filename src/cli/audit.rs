//! `keystile audit tail|verify`: read and check the audit trail of the key's tenant.

use std::process::ExitCode;
use std::time::Duration;

use clap::Subcommand;
use reqwest::Method;
use serde_json::Value;

use super::ClientOpts;
use super::client::ApiClient;

/// `keystile audit …`
#[derive(Debug, Subcommand)]
pub enum AuditCmd {
    /// Print the latest events, oldest first, one JSON object per line; `--follow` keeps
    /// printing new ones as they are written.
    #[command(
        after_help = "Examples:\n  keystile audit tail\n  keystile audit tail --follow --credential github\n  keystile audit tail --action auth.failure --since 2026-11-01T00:00:00Z -n 100"
    )]
    Tail {
        /// Keep polling for new events.
        #[arg(short, long)]
        follow: bool,
        /// How many of the latest events to print first (1–1000).
        #[arg(short = 'n', long, default_value_t = 20)]
        lines: u32,
        /// Only this credential alias.
        #[arg(long)]
        credential: Option<String>,
        /// Only this API key id.
        #[arg(long)]
        key: Option<String>,
        /// Only this project id.
        #[arg(long)]
        project: Option<String>,
        /// Only this action (`proxy.request`, `auth.failure`, `secret.fetch`, `POST /v1/keys`, …).
        #[arg(long)]
        action: Option<String>,
        /// Only this proxy surface (path, execute, ephemeral, route, mcp).
        #[arg(long)]
        mode: Option<String>,
        /// Only events at or after this RFC 3339 time.
        #[arg(long)]
        since: Option<String>,
        /// Only events before this RFC 3339 time.
        #[arg(long)]
        until: Option<String>,
        /// Polling interval for --follow, in milliseconds.
        #[arg(long, default_value_t = 1000)]
        interval_ms: u64,
        #[command(flatten)]
        client: ClientOpts,
    },
    /// Check the tenant's hash chain; exits with status 1 when it is broken.
    #[command(after_help = "Examples:\n  keystile audit verify")]
    Verify {
        #[command(flatten)]
        client: ClientOpts,
    },
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Runs an audit command.
pub async fn audit(cmd: AuditCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        AuditCmd::Verify { client } => {
            let v = ApiClient::new(&client)?
                .call(Method::GET, "/v1/audit/verify", None)
                .await?;
            println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            Ok(if v["ok"] == Value::Bool(true) {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        AuditCmd::Tail {
            follow,
            lines,
            credential,
            key,
            project,
            action,
            mode,
            since,
            until,
            interval_ms,
            client,
        } => {
            let api = ApiClient::new(&client)?;
            let filters: String = [
                ("credential", credential),
                ("key", key),
                ("project", project),
                ("action", action),
                ("mode", mode),
                ("since", since),
                ("until", until),
            ]
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| format!("&{k}={}", enc(&v))))
            .collect();
            let first = api
                .call(
                    Method::GET,
                    &format!("/v1/audit?limit={}{filters}", lines.clamp(1, 1000)),
                    None,
                )
                .await?;
            let mut last_seq = print_ascending(events(&first), 0);
            if last_seq == 0 {
                // Nothing matched yet: remember where the trail is, so only new events follow.
                last_seq = latest_seq(&api).await?;
            }
            if !follow {
                return Ok(ExitCode::SUCCESS);
            }
            loop {
                tokio::time::sleep(Duration::from_millis(interval_ms.max(50))).await;
                let fresh = newer_than(&api, &filters, last_seq).await?;
                last_seq = print_ascending(fresh, last_seq);
            }
        }
    }
}

fn events(page: &Value) -> Vec<Value> {
    page["events"].as_array().cloned().unwrap_or_default()
}

fn seq(e: &Value) -> i64 {
    e["seq"].as_i64().unwrap_or(0)
}

/// Prints newest-first `events` oldest first, as JSON lines; returns the highest seq seen.
fn print_ascending(events: Vec<Value>, mut last: i64) -> i64 {
    for e in events.into_iter().rev() {
        println!("{}", serde_json::to_string(&e).unwrap_or_default());
        last = last.max(seq(&e));
    }
    last
}

async fn latest_seq(api: &ApiClient) -> anyhow::Result<i64> {
    let page = api.call(Method::GET, "/v1/audit?limit=1", None).await?;
    Ok(events(&page).first().map(seq).unwrap_or(0))
}

/// Every matching event with a seq above `after`, newest first (pages back until reaching it).
async fn newer_than(api: &ApiClient, filters: &str, after: i64) -> anyhow::Result<Vec<Value>> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/audit?limit=200{filters}&cursor={c}"),
            None => format!("/v1/audit?limit=200{filters}"),
        };
        let page = api.call(Method::GET, &path, None).await?;
        let batch = events(&page);
        let reached = batch.iter().any(|e| seq(e) <= after);
        out.extend(batch.into_iter().filter(|e| seq(e) > after));
        match page["next_cursor"].as_str() {
            Some(c) if !reached => cursor = Some(c.to_owned()),
            _ => return Ok(out),
        }
    }
}
