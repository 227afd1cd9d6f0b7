//! The command line, as clap sees it.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::{Failure, client, init, offline, serve};

#[derive(Debug, Parser)]
#[command(
    name = "writ",
    version,
    about = "Access control plane: tickets ask, policy decides, every grant is a lease on the record."
)]
pub struct Cli {
    /// The configuration file.
    #[arg(long, global = true, default_value = "writ.toml", env = "WRIT_CONFIG")]
    pub config: PathBuf,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args, Clone)]
pub struct ClientArgs {
    /// The writ server (default: the address in --config).
    #[arg(long, global = true, env = "WRIT_SERVER")]
    pub server: Option<String>,
    /// A bearer token from `writ token issue`.
    #[arg(long, global = true, env = "WRIT_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ExportFormat {
    /// writ's own events, one JSON object per line (as `GET /v1/audit`).
    Jsonl,
    /// OCSF 1.8.0 events, one per line (see docs/audit.md for the classes).
    Ocsf,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the control plane: API and expiry scheduler.
    Serve {
        #[arg(long, value_enum, default_value = "text")]
        log_format: LogFormat,
    },
    /// Write a starter configuration, policies and example target into DIR.
    Init {
        #[arg(default_value = ".")]
        dir: PathBuf,
    },
    /// Bearer tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// The ledger, offline.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Policies, offline.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Ask for an entitlement.
    Request {
        entitlement: String,
        /// Ask on behalf of a service or agent you own.
        #[arg(long = "for")]
        subject: Option<String>,
        /// How long, e.g. 1h or 30m (default: the entitlement's maximum).
        #[arg(long)]
        duration: Option<String>,
        /// Why you need it.
        #[arg(long, short = 'j')]
        justification: String,
        /// The ticket, as SYSTEM:KEY (e.g. jira:OPS-42).
        #[arg(long)]
        ticket: Option<String>,
        /// Agents: the user you act for (required for agents).
        #[arg(long)]
        on_behalf_of: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// List requests (or show one).
    Requests {
        /// Show this request.
        id: Option<String>,
        #[arg(long)]
        state: Option<String>,
        #[arg(long)]
        subject: Option<String>,
        #[arg(long)]
        requester: Option<String>,
        /// Only requests waiting for your approval.
        #[arg(long)]
        inbox: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Approve a pending request.
    Approve {
        id: String,
        #[arg(long, short = 'm', default_value = "")]
        comment: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Reject a pending request.
    Reject {
        id: String,
        #[arg(long, short = 'm', default_value = "")]
        comment: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Cancel your own pending request.
    Cancel {
        id: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// List grants (or show one).
    Grants {
        /// Show this grant.
        id: Option<String>,
        #[arg(long)]
        subject: Option<String>,
        #[arg(long)]
        state: Option<String>,
        #[arg(long)]
        entitlement: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// List identities (users, services, agents) from a running server.
    Identities {
        /// Only services and agents whose owner is disabled.
        #[arg(long)]
        orphaned: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Compare the targets with the grants now (on a running server); print what was
    /// found and done.
    Reconcile {
        /// Only this target.
        #[arg(long)]
        target: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// List reconciliation findings, show one, or accept one as an exception.
    Findings {
        #[command(subcommand)]
        action: Option<FindingsCommand>,
        /// open, accepted or resolved (default: open).
        #[arg(long, default_value = "open")]
        state: String,
        /// unmanaged, lingering or missing.
        #[arg(long)]
        kind: Option<String>,
        #[arg(long)]
        target: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Collect the short-lived credential of a grant (its password is shown once).
    Credential {
        grant: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// End a grant now.
    Revoke {
        id: String,
        #[arg(long, default_value = "")]
        reason: String,
        #[command(flatten)]
        client: ClientArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum FindingsCommand {
    /// Show one finding.
    Show { id: String },
    /// Accept an open finding as an exception (entitlement owners only).
    Accept {
        id: String,
        /// The user who answers for the exception.
        #[arg(long)]
        owner: String,
        #[arg(long)]
        reason: String,
        /// When it ends: a duration from now (30d, 12h) or an RFC 3339 time.
        #[arg(long)]
        expires: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Print a new bearer token for a configured identity (works with the server stopped).
    Issue {
        identity: String,
        /// Lifetime, e.g. 1h, 8h, 30d (at most 90 days).
        #[arg(long, default_value = "1h")]
        ttl: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Recompute the hash chain, replay it, and check the state tables against it.
    Verify {
        /// Only recompute the hash chain and check the head (no replay, no table
        /// comparison): the fast check for large ledgers, e.g. run often from cron.
        #[arg(long)]
        chain_only: bool,
    },
    /// Print events, oldest first, for shipping to a SIEM (incrementally with --after).
    Export {
        #[arg(long, value_enum, default_value = "jsonl")]
        format: ExportFormat,
        /// Only events after this sequence number.
        #[arg(long, default_value_t = 0)]
        after: i64,
    },
    /// Print recent events from a running server.
    Log {
        #[arg(long, default_value_t = 0)]
        after: i64,
        #[arg(long, default_value_t = 100)]
        limit: i64,
        #[command(flatten)]
        client: ClientArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Validate the policy folder against writ's schema; errors as file:line:column.
    Check,
    /// Print writ's Cedar schema.
    Schema,
}

pub async fn run(cli: Cli) -> Result<(), Failure> {
    let config = cli.config;
    match cli.command {
        Command::Serve { log_format } => serve::run(&config, log_format).await,
        Command::Init { dir } => init::run(&dir),
        Command::Token(TokenCommand::Issue { identity, ttl }) => {
            offline::issue_token(&config, &identity, &ttl).await
        }
        Command::Audit(AuditCommand::Verify { chain_only }) => {
            offline::verify(&config, chain_only).await
        }
        Command::Audit(AuditCommand::Export { format, after }) => {
            offline::export(&config, format, after).await
        }
        Command::Audit(AuditCommand::Log {
            after,
            limit,
            client,
        }) => {
            client::Client::new(&config, &client)?
                .audit_log(after, limit)
                .await
        }
        Command::Policy(PolicyCommand::Check) => offline::policy_check(&config),
        Command::Policy(PolicyCommand::Schema) => {
            print!("{}", writ_policy::SCHEMA_TEXT);
            Ok(())
        }
        Command::Request {
            entitlement,
            subject,
            duration,
            justification,
            ticket,
            on_behalf_of,
            client,
        } => {
            client::Client::new(&config, &client)?
                .request(
                    entitlement,
                    subject,
                    duration,
                    justification,
                    ticket,
                    on_behalf_of,
                )
                .await
        }
        Command::Requests {
            id,
            state,
            subject,
            requester,
            inbox,
            client,
        } => {
            let client = client::Client::new(&config, &client)?;
            match id {
                Some(id) => client.show_request(&id).await,
                None => client.list_requests(state, subject, requester, inbox).await,
            }
        }
        Command::Approve {
            id,
            comment,
            client,
        } => {
            client::Client::new(&config, &client)?
                .decide(&id, "approve", comment)
                .await
        }
        Command::Reject {
            id,
            comment,
            client,
        } => {
            client::Client::new(&config, &client)?
                .decide(&id, "reject", comment)
                .await
        }
        Command::Cancel { id, client } => client::Client::new(&config, &client)?.cancel(&id).await,
        Command::Grants {
            id,
            subject,
            state,
            entitlement,
            client,
        } => {
            let client = client::Client::new(&config, &client)?;
            match id {
                Some(id) => client.show_grant(&id).await,
                None => client.list_grants(subject, state, entitlement).await,
            }
        }
        Command::Identities { orphaned, client } => {
            client::Client::new(&config, &client)?
                .list_identities(orphaned)
                .await
        }
        Command::Credential { grant, client } => {
            client::Client::new(&config, &client)?
                .collect_credential(&grant)
                .await
        }
        Command::Reconcile { target, client } => {
            client::Client::new(&config, &client)?
                .reconcile(target)
                .await
        }
        Command::Findings {
            action,
            state,
            kind,
            target,
            client,
        } => {
            let client = client::Client::new(&config, &client)?;
            match action {
                None => client.list_findings(state, kind, target).await,
                Some(FindingsCommand::Show { id }) => client.show_finding(&id).await,
                Some(FindingsCommand::Accept {
                    id,
                    owner,
                    reason,
                    expires,
                }) => client.accept_finding(&id, owner, reason, &expires).await,
            }
        }
        Command::Revoke { id, reason, client } => {
            client::Client::new(&config, &client)?
                .revoke(&id, reason)
                .await
        }
    }
}
