//! `keystile tenant …`: the operator's commands (an admin key of the default tenant).

use std::process::ExitCode;

use anyhow::Context as _;
use clap::Subcommand;
use reqwest::Method;
use serde_json::{Value, json};

use super::ClientOpts;
use super::client::ApiClient;
use super::commands::{print, seg};

/// A plan given on the command line: JSON, or one flag per limit.
#[derive(Debug, Clone, clap::Args)]
pub struct PlanArgs {
    /// The whole plan as JSON (instead of the flags below).
    #[arg(long, value_name = "JSON", conflicts_with_all = ["operations_per_month", "requests_per_second", "template_expressions", "disable_surface"])]
    plan: Option<String>,
    /// Proxied operations per calendar month (UTC).
    #[arg(long, value_name = "N")]
    operations_per_month: Option<u64>,
    /// Proxied requests per second for the whole tenant.
    #[arg(long, value_name = "N")]
    requests_per_second: Option<u32>,
    /// Template expressions per request (applies once request templating exists).
    #[arg(long, value_name = "N")]
    template_expressions: Option<u32>,
    /// A proxy surface to disable: path, execute, ephemeral, route or mcp (repeatable).
    #[arg(long, value_name = "SURFACE")]
    disable_surface: Vec<String>,
}

impl PlanArgs {
    /// The plan as JSON, `None` when nothing was given.
    fn to_json(&self) -> anyhow::Result<Option<Value>> {
        if let Some(text) = &self.plan {
            return serde_json::from_str(text).map(Some).context("--plan is not valid JSON");
        }
        let mut plan = serde_json::Map::new();
        if let Some(n) = self.operations_per_month {
            plan.insert("operations_per_month".into(), json!(n));
        }
        if let Some(n) = self.requests_per_second {
            plan.insert("requests_per_second".into(), json!(n));
        }
        if let Some(n) = self.template_expressions {
            plan.insert("template_expressions_per_request".into(), json!(n));
        }
        if !self.disable_surface.is_empty() {
            plan.insert("disabled_surfaces".into(), json!(self.disable_surface));
        }
        Ok((!plan.is_empty()).then_some(Value::Object(plan)))
    }
}

/// `keystile tenant …`
#[derive(Debug, Subcommand)]
pub enum TenantCmd {
    /// Create a tenant; prints its first admin key (shown once).
    #[command(
        after_help = "Examples:\n  keystile tenant create acme\n  keystile tenant create acme --operations-per-month 100000 --requests-per-second 20\n  keystile tenant create trial --plan '{\"disabled_surfaces\": [\"ephemeral\"], \"operations_per_month\": 1000}'"
    )]
    Create {
        name: String,
        #[command(flatten)]
        plan: PlanArgs,
        #[command(flatten)]
        client: ClientOpts,
    },
    /// List tenants.
    List {
        #[command(flatten)]
        client: ClientOpts,
    },
    /// Show a tenant with this month's usage.
    Show {
        id: String,
        #[command(flatten)]
        client: ClientOpts,
    },
    /// Replace a tenant's plan (limits not given are removed).
    #[command(
        after_help = "Examples:\n  keystile tenant set-plan <id> --operations-per-month 500000\n  keystile tenant set-plan <id> --plan '{}'"
    )]
    SetPlan {
        id: String,
        #[command(flatten)]
        plan: PlanArgs,
        #[command(flatten)]
        client: ClientOpts,
    },
    /// Terminate a tenant: its keys stop working, its data is kept.
    Terminate {
        id: String,
        #[command(flatten)]
        client: ClientOpts,
    },
}

/// Runs a `tenant` subcommand.
pub async fn tenant(cmd: TenantCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        TenantCmd::Create { name, plan, client } => {
            let mut body = json!({"name": name});
            if let Some(p) = plan.to_json()? {
                body["plan"] = p;
            }
            print(
                &ApiClient::new(&client)?
                    .call(Method::POST, "/v1/tenants", Some(body))
                    .await?,
            );
        }
        TenantCmd::List { client } => print(&ApiClient::new(&client)?.call(Method::GET, "/v1/tenants", None).await?),
        TenantCmd::Show { id, client } => print(
            &ApiClient::new(&client)?
                .call(Method::GET, &format!("/v1/tenants/{}", seg(&id)), None)
                .await?,
        ),
        TenantCmd::SetPlan { id, plan, client } => {
            let plan = plan.to_json()?.unwrap_or_else(|| json!({}));
            print(
                &ApiClient::new(&client)?
                    .call(
                        Method::PATCH,
                        &format!("/v1/tenants/{}", seg(&id)),
                        Some(json!({"plan": plan})),
                    )
                    .await?,
            );
        }
        TenantCmd::Terminate { id, client } => print(
            &ApiClient::new(&client)?
                .call(Method::POST, &format!("/v1/tenants/{}/terminate", seg(&id)), None)
                .await?,
        ),
    }
    Ok(ExitCode::SUCCESS)
}
