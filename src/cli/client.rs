//! A thin HTTP client for the management API.

use anyhow::{Context as _, bail};
use reqwest::Method;
use serde_json::Value;

use super::ClientOpts;

/// Talks to one gateway with one token.
pub struct ApiClient {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl ApiClient {
    /// Builds a client; a token is required.
    pub fn new(opts: &ClientOpts) -> anyhow::Result<Self> {
        let token = opts
            .token
            .clone()
            .context("no API key: pass --token or set KEYSTILE_TOKEN")?;
        let http = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .context("HTTP client")?;
        Ok(Self {
            http,
            base: opts.url.trim_end_matches('/').to_owned(),
            token,
        })
    }

    /// Sends a request and returns the JSON answer (`null` for 204), or the server's error.
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req
            .send()
            .await
            .with_context(|| format!("cannot reach {}", self.base))?;
        let status = resp.status();
        let text = resp.text().await.context("reading the response")?;
        let json: Value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        if !status.is_success() {
            let code = json.get("error").and_then(Value::as_str).unwrap_or("error");
            let message = json.get("message").and_then(Value::as_str).unwrap_or("request failed");
            bail!("{status}: {code}: {message}");
        }
        Ok(json)
    }
}
