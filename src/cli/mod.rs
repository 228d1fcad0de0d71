//! The command line: `keystile serve` and the client commands that talk to a running server
//! over HTTP (`--url`/`KEYSTILE_URL`, `--token`/`KEYSTILE_TOKEN`).
//!
//! Secret values are read from a prompt, a file or stdin, never from arguments (which would
//! land in shell history and `ps`).

mod audit;
mod client;
mod commands;
mod projects;
mod tenant;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub use audit::AuditCmd;
pub use commands::{CredentialCmd, KeyCmd, RoleCmd};
pub use projects::{ProjectCmd, RunArgs, SecretCmd, fetch_secrets};
pub use tenant::TenantCmd;

use crate::config::{Config, ServeFlags};

/// Keystile: a self-hosted credential gateway.
#[derive(Debug, Parser)]
#[command(
    name = "keystile",
    version,
    about = "Self-hosted credential gateway: callers use APIs through it without ever holding the keys",
    after_help = "Examples:\n  keystile serve\n  keystile credential add github --type api_key --host api.github.com\n  keystile key create ci-bot --role <role-id>\n  curl -H \"Authorization: Bearer $KEY\" -H 'X-Keystile-Credential: github' http://127.0.0.1:7400/https://api.github.com/user"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// Options every client command shares.
#[derive(Debug, Clone, clap::Args)]
pub struct ClientOpts {
    /// The gateway's URL.
    #[arg(long, env = "KEYSTILE_URL", default_value = "http://127.0.0.1:7400", global = true)]
    pub url: String,
    /// The API key to authenticate with.
    #[arg(long, env = "KEYSTILE_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once per process
pub enum Command {
    /// Run the gateway.
    #[command(
        after_help = "Examples:\n  keystile serve\n  keystile serve --listen 0.0.0.0:7400 --data-dir /var/lib/keystile\n  KEYSTILE_MASTER_KEY=… keystile serve --database-url postgres://user@db/keystile"
    )]
    Serve(ServeFlags),
    /// Manage credentials.
    #[command(subcommand)]
    Credential(CredentialCmd),
    /// Manage roles.
    #[command(subcommand)]
    Role(RoleCmd),
    /// Manage API keys.
    #[command(subcommand)]
    Key(KeyCmd),
    /// Read and verify the audit trail.
    #[command(subcommand)]
    Audit(AuditCmd),
    /// Manage tenants (operator: an admin key of the default tenant).
    #[command(subcommand)]
    Tenant(TenantCmd),
    /// Manage projects (applications that fetch their configuration with signed requests).
    #[command(subcommand)]
    Project(ProjectCmd),
    /// Manage a project's configuration secrets.
    #[command(subcommand)]
    Secret(SecretCmd),
    /// Fetch a project's secrets with a signed request and run a command with them as
    /// environment variables.
    Run(RunArgs),
}

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve(flags) => serve(flags).await,
        Command::Credential(cmd) => commands::credential(cmd).await,
        Command::Role(cmd) => commands::role(cmd).await,
        Command::Key(cmd) => commands::key(cmd).await,
        Command::Audit(cmd) => audit::audit(cmd).await,
        Command::Tenant(cmd) => tenant::tenant(cmd).await,
        Command::Project(cmd) => projects::project(cmd).await,
        Command::Secret(cmd) => projects::secret(cmd).await,
        Command::Run(args) => projects::run(args).await,
    }
}

async fn serve(flags: ServeFlags) -> anyhow::Result<ExitCode> {
    use anyhow::Context as _;
    use secrecy::ExposeSecret as _;

    let config = Config::load(&flags, |k| std::env::var(k).ok())?;
    crate::telemetry::init(config.log_format, &config.log_level);
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let prepared = crate::server::prepare(&config).await?;
    let addr = listener.local_addr().context("listener address")?;
    if let Some(key) = &prepared.new_admin_key {
        // Printed to stdout once, never logged: the log may be shipped elsewhere. A closed or
        // broken stdout must not take the gateway down, so write errors are ignored.
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(
            out,
            "\nAdmin API key (shown once, store it now):\n\n    {}\n\n    export KEYSTILE_TOKEN=<the key above>\n",
            key.expose_secret()
        );
        let _ = out.flush();
    }
    tracing::info!(%addr, version = env!("CARGO_PKG_VERSION"), "keystile listening");
    crate::server::run(listener, prepared.state, shutdown_signal()).await?;
    tracing::info!("keystile stopped");
    Ok(ExitCode::SUCCESS)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down; letting in-flight requests finish");
}
