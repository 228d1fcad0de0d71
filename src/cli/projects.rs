//! Client subcommands for projects (SPEC S7): `project`, `secret` and `run`.
//!
//! `project register` generates the key pair locally: the private key goes to a 0600 file and
//! never over the network. `run` signs one `GET /v1/secrets` with it and `exec`s the command
//! with the secrets as environment variables.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::Subcommand;
use reqwest::Method;
use serde_json::{Value, json};
use zeroize::Zeroizing;

use super::ClientOpts;
use super::client::ApiClient;
use super::commands::{print, read_secret, seg};
use crate::crypto::httpsig::{Signer, keys};
use crate::domain::ProjectName;

/// `keystile project …`
#[derive(Debug, Subcommand)]
pub enum ProjectCmd {
    /// Register a project: generate its key pair, keep the private key in a 0600 file.
    #[command(after_help = "Example:\n  keystile project register billing --key-file billing.key")]
    Register {
        name: String,
        /// Where to write the private key [default: ./<name>.key]; never overwritten.
        #[arg(long, value_name = "FILE")]
        key_file: Option<PathBuf>,
        #[command(flatten)]
        client: ClientOpts,
    },
    /// List projects.
    List {
        #[command(flatten)]
        client: ClientOpts,
    },
    /// Delete a project with its keys and secrets.
    Delete {
        name: String,
        #[command(flatten)]
        client: ClientOpts,
    },
    /// Rotate a project's key; the old key keeps working for 10 minutes.
    #[command(after_help = "Example:\n  keystile project rotate billing --key-file billing.key")]
    Rotate {
        name: String,
        /// Where to write the new private key [default: ./<name>.key]; replaced atomically.
        #[arg(long, value_name = "FILE")]
        key_file: Option<PathBuf>,
        #[command(flatten)]
        client: ClientOpts,
    },
}

/// `keystile secret …`
#[derive(Debug, Subcommand)]
pub enum SecretCmd {
    /// Set a secret. The value is read from --from-file, stdin, or a prompt.
    #[command(
        after_help = "Example:\n  printf 'postgres://…' | keystile secret set DATABASE_URL --project billing --env production"
    )]
    Set {
        key: String,
        #[arg(long)]
        project: String,
        #[arg(long)]
        env: String,
        #[arg(long, value_name = "FILE")]
        from_file: Option<PathBuf>,
        #[command(flatten)]
        client: ClientOpts,
    },
    /// List a project's secrets (names only, never values).
    List {
        #[arg(long)]
        project: String,
        #[arg(long)]
        env: Option<String>,
        #[command(flatten)]
        client: ClientOpts,
    },
    /// Delete a secret by id.
    Delete {
        id: String,
        #[command(flatten)]
        client: ClientOpts,
    },
}

/// `keystile run …`
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Example:\n  keystile run --project billing --env production --key-file billing.key -- ./server --port 8080"
)]
pub struct RunArgs {
    #[arg(long)]
    project: String,
    #[arg(long)]
    env: String,
    /// The project's private key [default: ./<project>.key].
    #[arg(long, value_name = "FILE")]
    key_file: Option<PathBuf>,
    /// The gateway's URL.
    #[arg(long, env = "KEYSTILE_URL", default_value = "http://127.0.0.1:7400")]
    url: String,
    /// The command and its arguments.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    command: Vec<String>,
}

fn key_path(explicit: Option<PathBuf>, project: &str) -> PathBuf {
    explicit.unwrap_or_else(|| PathBuf::from(format!("{project}.key")))
}

/// Writes a private key to a new 0600 file (refusing to overwrite unless `replace`).
fn write_key_file(path: &Path, private_hex: &str, replace: bool) -> anyhow::Result<()> {
    let target = if replace {
        path.with_extension("key.tmp")
    } else {
        path.to_path_buf()
    };
    if replace {
        // A leftover from an interrupted rotation holds no key anyone relies on.
        let _ = std::fs::remove_file(&target);
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&target)
        .with_context(|| format!("cannot create key file {} (it must not exist yet)", target.display()))?;
    file.write_all(format!("{private_hex}\n").as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", target.display()))?;
    if replace {
        std::fs::rename(&target, path).with_context(|| format!("replacing {}", path.display()))?;
    }
    Ok(())
}

async fn project_id(api: &ApiClient, name: &str) -> anyhow::Result<String> {
    let list = api.call(Method::GET, "/v1/projects", None).await?;
    list["projects"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["name"] == name)
        .and_then(|p| p["id"].as_str())
        .map(str::to_owned)
        .with_context(|| format!("no project named {name:?}"))
}

/// Runs `keystile project …`.
pub async fn project(cmd: ProjectCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        ProjectCmd::Register { name, key_file, client } => {
            let name = ProjectName::parse(&name)?;
            let api = ApiClient::new(&client)?;
            let path = key_path(key_file, name.as_str());
            let generated = keys::generate();
            // The key file first: a project whose key was lost would be useless.
            write_key_file(&path, &generated.private_hex, false)?;
            let body = json!({"name": name.as_str(), "public_key": hex::encode(generated.public_key)});
            match api.call(Method::POST, "/v1/projects", Some(body)).await {
                Ok(v) => {
                    print(&v);
                    eprintln!("private key written to {} (mode 0600)", path.display());
                }
                Err(e) => {
                    let _ = std::fs::remove_file(&path);
                    return Err(e);
                }
            }
        }
        ProjectCmd::List { client } => print(&ApiClient::new(&client)?.call(Method::GET, "/v1/projects", None).await?),
        ProjectCmd::Delete { name, client } => {
            let api = ApiClient::new(&client)?;
            let id = project_id(&api, &name).await?;
            api.call(Method::DELETE, &format!("/v1/projects/{}", seg(&id)), None)
                .await?;
            println!("deleted project {name}");
        }
        ProjectCmd::Rotate { name, key_file, client } => {
            let api = ApiClient::new(&client)?;
            let id = project_id(&api, &name).await?;
            let mut v = api
                .call(Method::PUT, &format!("/v1/projects/{}/rotate", seg(&id)), None)
                .await?;
            let private = Zeroizing::new(
                v.get("private_key")
                    .and_then(Value::as_str)
                    .context("the server returned no private key")?
                    .to_owned(),
            );
            if let Some(o) = v.as_object_mut() {
                o.remove("private_key");
            }
            let path = key_path(key_file, &name);
            write_key_file(&path, &private, true)?;
            print(&v);
            eprintln!("new private key written to {} (mode 0600)", path.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs `keystile secret …`.
pub async fn secret(cmd: SecretCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        SecretCmd::Set {
            key,
            project,
            env,
            from_file,
            client,
        } => {
            let api = ApiClient::new(&client)?;
            let id = project_id(&api, &project).await?;
            let value = read_secret(from_file.as_ref(), "Secret value: ")?;
            let body = json!({"key": key, "env": env, "value": value.as_str()});
            print(
                &api.call(Method::PUT, &format!("/v1/projects/{}/secrets", seg(&id)), Some(body))
                    .await?,
            );
        }
        SecretCmd::List { project, env, client } => {
            let api = ApiClient::new(&client)?;
            let id = project_id(&api, &project).await?;
            let query = env.map(|e| format!("?env={}", seg(&e))).unwrap_or_default();
            print(
                &api.call(Method::GET, &format!("/v1/projects/{}/secrets{query}", seg(&id)), None)
                    .await?,
            );
        }
        SecretCmd::Delete { id, client } => {
            ApiClient::new(&client)?
                .call(Method::DELETE, &format!("/v1/secrets/{}", seg(&id)), None)
                .await?;
            println!("deleted secret {id}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Fetches a project's secrets with a signed request.
pub async fn fetch_secrets(
    base_url: &str,
    signer: &Signer,
    env: &str,
) -> anyhow::Result<serde_json::Map<String, Value>> {
    let mut url = url::Url::parse(base_url).with_context(|| format!("invalid gateway URL {base_url:?}"))?;
    url.path_segments_mut()
        .map_err(|()| anyhow::anyhow!("invalid gateway URL {base_url:?}"))?
        .pop_if_empty()
        .extend(["v1", "secrets"]);
    url.query_pairs_mut().clear().append_pair("env", env);
    let created = chrono::Utc::now().timestamp();
    let headers = signer.sign("GET", &url, None, created)?;
    let http = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .context("HTTP client")?;
    let mut req = http.get(url.clone());
    for (name, value) in headers.pairs() {
        req = req.header(name, value);
    }
    let resp = req.send().await.with_context(|| format!("cannot reach {base_url}"))?;
    let status = resp.status();
    let json: Value = resp.json().await.context("reading the gateway's answer")?;
    if !status.is_success() {
        let code = json.get("error").and_then(Value::as_str).unwrap_or("error");
        let message = json.get("message").and_then(Value::as_str).unwrap_or("request failed");
        bail!("{status}: {code}: {message}");
    }
    match json {
        Value::Object(map) => Ok(map),
        _ => bail!("the gateway answered something other than an object of secrets"),
    }
}

/// Runs `keystile run`: fetch, then replace this process with the command. Returns only on
/// failure (exec does not return on success).
pub async fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let project = ProjectName::parse(&args.project)?;
    let path = key_path(args.key_file, project.as_str());
    let text = Zeroizing::new(
        std::fs::read_to_string(&path).with_context(|| format!("cannot read key file {}", path.display()))?,
    );
    let signer = Signer::new(project, keys::parse_private_hex(&text)?);
    let secrets = fetch_secrets(&args.url, &signer, &args.env).await?;
    let (program, rest) = args.command.split_first().context("no command given")?;
    let mut cmd = std::process::Command::new(program);
    cmd.args(rest);
    for (k, v) in &secrets {
        let value = v.as_str().with_context(|| format!("secret {k} is not a string"))?;
        cmd.env(k, value);
    }
    // exec replaces this process: the command gets our PID, so signals reach it directly and
    // its exit code is the one our parent sees.
    let err = cmd.exec();
    bail!("cannot run {program:?}: {err}")
}
