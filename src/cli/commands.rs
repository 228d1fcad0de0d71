//! Client subcommands: credentials, roles and keys.

use std::io::{IsTerminal as _, Read as _};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::Subcommand;
use reqwest::Method;
use serde_json::{Value, json};
use zeroize::Zeroizing;

use super::ClientOpts;
use super::client::ApiClient;

/// `keystile credential …`
#[derive(Debug, Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once per process
pub enum CredentialCmd {
    /// Add a credential. The secret is read from --from-file, stdin, or a prompt.
    #[command(
        after_help = "Examples:\n  keystile credential add github --type api_key --host api.github.com\n  echo \"$TOKEN\" | keystile credential add gh --type api_key --host api.github.com --header Authorization --format 'token {key}'\n  keystile credential add jira --type basic_auth --username bot --host example.atlassian.net --from-file pw.txt\n  keystile credential add svc --type headers --host api.example.com --from-file headers.json"
    )]
    Add {
        alias: String,
        /// api_key, basic_auth or headers.
        #[arg(long = "type", value_name = "TYPE")]
        kind: String,
        /// Allowed target host (repeatable; `*.example.com` for subdomains).
        #[arg(long = "host", required = true)]
        hosts: Vec<String>,
        /// Allowed HTTP method (repeatable; all when omitted).
        #[arg(long = "method")]
        methods: Vec<String>,
        /// Allowed path glob (repeatable; all when omitted).
        #[arg(long = "path")]
        paths: Vec<String>,
        /// Allowed port (repeatable; all when omitted).
        #[arg(long = "port")]
        ports: Vec<u16>,
        /// Permit plain http targets (for local services).
        #[arg(long)]
        allow_http: bool,
        /// Permit private/loopback addresses (`any`) or only the given CIDR (repeatable).
        #[arg(long = "allow-private-network", value_name = "any|CIDR")]
        private: Vec<String>,
        /// api_key: header to inject into (default Authorization).
        #[arg(long, conflicts_with = "query")]
        header: Option<String>,
        /// api_key: header value template (default `Bearer {key}`).
        #[arg(long, requires = "header")]
        format: Option<String>,
        /// api_key: inject as this query parameter instead of a header.
        #[arg(long)]
        query: Option<String>,
        /// basic_auth: the user name (the password is the secret input).
        #[arg(long)]
        username: Option<String>,
        /// Read the secret from this file (`-` for stdin): the key, the password, or a JSON
        /// object of headers.
        #[arg(long, value_name = "FILE")]
        from_file: Option<PathBuf>,
        #[arg(long)]
        description: Option<String>,
        #[command(flatten)]
        client: ClientOpts,
    },
    /// List credentials.
    List {
        #[command(flatten)]
        client: ClientOpts,
    },
    /// Show one credential (never its secret).
    Show {
        alias: String,
        #[command(flatten)]
        client: ClientOpts,
    },
    /// Delete a credential.
    Rm {
        alias: String,
        #[command(flatten)]
        client: ClientOpts,
    },
    /// Freeze a credential (uses fail with credential_frozen; data kept).
    Freeze {
        alias: String,
        #[command(flatten)]
        client: ClientOpts,
    },
    /// Unfreeze a credential.
    Unfreeze {
        alias: String,
        #[command(flatten)]
        client: ClientOpts,
    },
    /// Replace a credential's secret (its version increments).
    Rotate {
        alias: String,
        /// basic_auth: the user name.
        #[arg(long)]
        username: Option<String>,
        #[arg(long, value_name = "FILE")]
        from_file: Option<PathBuf>,
        #[command(flatten)]
        client: ClientOpts,
    },
}

/// `keystile role …`
#[derive(Debug, Subcommand)]
pub enum RoleCmd {
    /// Create a role.
    #[command(
        after_help = "Example:\n  keystile role create ci --permission execute --permission read --scope 'github-*'"
    )]
    Create {
        name: String,
        /// read, write, delete, execute, reveal, audit or admin (repeatable).
        #[arg(long = "permission", required = true)]
        permissions: Vec<String>,
        /// Credential alias glob the role may use (repeatable).
        #[arg(long = "scope")]
        scopes: Vec<String>,
        #[arg(long)]
        description: Option<String>,
        #[command(flatten)]
        client: ClientOpts,
    },
    /// List roles.
    List {
        #[command(flatten)]
        client: ClientOpts,
    },
    /// Delete a role (no active key may use it).
    Rm {
        id: String,
        #[command(flatten)]
        client: ClientOpts,
    },
}

/// `keystile key …`
#[derive(Debug, Subcommand)]
pub enum KeyCmd {
    /// Create an API key bound to a role; the key is shown once.
    #[command(after_help = "Example:\n  keystile key create ci-bot --role 3f1c…  --expires-at 2027-01-01T00:00:00Z")]
    Create {
        name: String,
        #[arg(long = "role")]
        role_id: String,
        /// RFC 3339 expiry time.
        #[arg(long)]
        expires_at: Option<String>,
        #[command(flatten)]
        client: ClientOpts,
    },
    /// List API keys (prefixes only).
    List {
        #[command(flatten)]
        client: ClientOpts,
    },
    /// Revoke an API key.
    Revoke {
        id: String,
        #[command(flatten)]
        client: ClientOpts,
    },
}

pub(super) fn print(v: &Value) {
    if !v.is_null() {
        println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
    }
}

pub(super) fn seg(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Reads the secret input: a file, stdin, or a hidden prompt.
pub(super) fn read_secret(from_file: Option<&PathBuf>, prompt: &str) -> anyhow::Result<Zeroizing<String>> {
    let text = match from_file {
        Some(p) if p.as_os_str() == "-" => read_stdin()?,
        Some(p) => Zeroizing::new(std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?),
        None if std::io::stdin().is_terminal() => {
            Zeroizing::new(rpassword::prompt_password(prompt).context("reading the secret")?)
        }
        None => read_stdin()?,
    };
    let trimmed = Zeroizing::new(text.trim_end_matches(['\r', '\n']).to_owned());
    if trimmed.is_empty() {
        bail!("the secret is empty");
    }
    Ok(trimmed)
}

fn read_stdin() -> anyhow::Result<Zeroizing<String>> {
    let mut s = Zeroizing::new(String::new());
    std::io::stdin().read_to_string(&mut s).context("reading stdin")?;
    Ok(s)
}

fn secret_data(kind: &str, username: Option<&str>, from_file: Option<&PathBuf>) -> anyhow::Result<Value> {
    Ok(match kind {
        "api_key" => json!({"key": read_secret(from_file, "API key: ")?.as_str()}),
        "basic_auth" => {
            let user = username.context("basic_auth needs --username")?;
            json!({"username": user, "password": read_secret(from_file, "Password: ")?.as_str()})
        }
        "headers" => {
            let text = read_secret(from_file, "Headers as JSON: ")?;
            let headers: Value = serde_json::from_str(&text).context("headers must be a JSON object")?;
            json!({ "headers": headers })
        }
        other => bail!("unsupported type {other:?}; use api_key, basic_auth or headers"),
    })
}

fn private_network(values: &[String]) -> Value {
    match values {
        [] => json!(false),
        [one] if one == "any" || one == "true" => json!(true),
        list => json!(list),
    }
}

/// Runs a credential command.
pub async fn credential(cmd: CredentialCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        CredentialCmd::Add {
            alias,
            kind,
            hosts,
            methods,
            paths,
            ports,
            allow_http,
            private,
            header,
            format,
            query,
            username,
            from_file,
            description,
            client,
        } => {
            let api = ApiClient::new(&client)?;
            let mut policy = json!({"allowed_hosts": hosts, "allow_http": allow_http, "allow_private_network": private_network(&private)});
            if !methods.is_empty() {
                policy["allowed_methods"] = json!(methods);
            }
            if !paths.is_empty() {
                policy["allowed_paths"] = json!(paths);
            }
            if !ports.is_empty() {
                policy["allowed_ports"] = json!(ports);
            }
            let mut body = json!({"alias": alias, "type": kind, "policy": policy});
            if let Some(h) = header {
                body["inject"] = json!({"header": h, "format": format.unwrap_or_else(|| "Bearer {key}".into())});
            } else if let Some(q) = query {
                body["inject"] = json!({ "query": q });
            }
            if let Some(d) = description {
                body["description"] = json!(d);
            }
            body["data"] = secret_data(&kind, username.as_deref(), from_file.as_ref())?;
            print(&api.call(Method::POST, "/v1/credentials", Some(body)).await?);
        }
        CredentialCmd::List { client } => print(
            &ApiClient::new(&client)?
                .call(Method::GET, "/v1/credentials", None)
                .await?,
        ),
        CredentialCmd::Show { alias, client } => print(
            &ApiClient::new(&client)?
                .call(Method::GET, &format!("/v1/credentials/{}", seg(&alias)), None)
                .await?,
        ),
        CredentialCmd::Rm { alias, client } => {
            ApiClient::new(&client)?
                .call(Method::DELETE, &format!("/v1/credentials/{}", seg(&alias)), None)
                .await?;
            println!("deleted {alias}");
        }
        CredentialCmd::Freeze { alias, client } => print(
            &ApiClient::new(&client)?
                .call(Method::POST, &format!("/v1/credentials/{}/freeze", seg(&alias)), None)
                .await?,
        ),
        CredentialCmd::Unfreeze { alias, client } => print(
            &ApiClient::new(&client)?
                .call(Method::POST, &format!("/v1/credentials/{}/unfreeze", seg(&alias)), None)
                .await?,
        ),
        CredentialCmd::Rotate {
            alias,
            username,
            from_file,
            client,
        } => {
            let api = ApiClient::new(&client)?;
            let current = api
                .call(Method::GET, &format!("/v1/credentials/{}", seg(&alias)), None)
                .await?;
            let kind = current
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let data = secret_data(&kind, username.as_deref(), from_file.as_ref())?;
            print(
                &api.call(
                    Method::POST,
                    &format!("/v1/credentials/{}/rotate", seg(&alias)),
                    Some(json!({"data": data})),
                )
                .await?,
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs a role command.
pub async fn role(cmd: RoleCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        RoleCmd::Create {
            name,
            permissions,
            scopes,
            description,
            client,
        } => {
            let mut body = json!({"name": name, "permissions": permissions, "credential_scopes": scopes});
            if let Some(d) = description {
                body["description"] = json!(d);
            }
            print(
                &ApiClient::new(&client)?
                    .call(Method::POST, "/v1/roles", Some(body))
                    .await?,
            );
        }
        RoleCmd::List { client } => print(&ApiClient::new(&client)?.call(Method::GET, "/v1/roles", None).await?),
        RoleCmd::Rm { id, client } => {
            ApiClient::new(&client)?
                .call(Method::DELETE, &format!("/v1/roles/{}", seg(&id)), None)
                .await?;
            println!("deleted role {id}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs a key command.
pub async fn key(cmd: KeyCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        KeyCmd::Create {
            name,
            role_id,
            expires_at,
            client,
        } => {
            let mut body = json!({"name": name, "role_id": role_id});
            if let Some(t) = expires_at {
                body["expires_at"] = json!(t);
            }
            print(
                &ApiClient::new(&client)?
                    .call(Method::POST, "/v1/keys", Some(body))
                    .await?,
            );
        }
        KeyCmd::List { client } => print(&ApiClient::new(&client)?.call(Method::GET, "/v1/keys", None).await?),
        KeyCmd::Revoke { id, client } => {
            ApiClient::new(&client)?
                .call(Method::DELETE, &format!("/v1/keys/{}", seg(&id)), None)
                .await?;
            println!("revoked key {id}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
