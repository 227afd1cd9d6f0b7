//! The command line, as clap sees it.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::{Failure, check, client, init, offline, serve};

/// How many requests or grants `writ requests` / `writ grants` show by default.
const DEFAULT_LIST_LIMIT: u32 = 100;

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
    /// A bearer token: from `writ token issue`, or one your OpenID Connect provider issued for writ.
    #[arg(long, global = true, env = "WRIT_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// PEM CA certificates to trust for the server's certificate, besides the system's.
    #[arg(long, global = true, env = "WRIT_CA_FILE", value_name = "FILE")]
    pub ca_file: Option<std::path::PathBuf>,
    /// A PEM file with a client certificate and its key, for a server that asks for one (mutual TLS).
    #[arg(long, global = true, env = "WRIT_CLIENT_CERT", value_name = "FILE")]
    pub client_cert: Option<std::path::PathBuf>,
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    /// Readable lines (colour only on a terminal).
    Text,
    /// One JSON object per line.
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
        /// How the log on stderr is written: text for people, json for collectors (one
        /// object per line; each answered request is one, with its request id).
        #[arg(long, value_enum, default_value = "text", env = "WRIT_LOG_FORMAT")]
        log_format: LogFormat,
        /// Upgrade a PostgreSQL database's schema before serving, as `writ migrate`
        /// does (a SQLite database is always brought up to date). Without it, a
        /// schema older than this writ's is refused.
        #[arg(long)]
        migrate: bool,
    },
    /// Bring the database's schema up to this writ's version (one migration at a time,
    /// each in its own transaction; safe to run from several nodes at once).
    Migrate,
    /// Write a starter configuration, policies and example target into DIR.
    Init {
        /// The folder to write into (made if missing; existing files are never overwritten).
        #[arg(default_value = ".")]
        dir: PathBuf,
    },
    /// Check each target before grants meet a problem: connection, roles or groups,
    /// writ's own privileges, and the accounts of configured identities (works with
    /// the server stopped; `serve` runs it at start-up and logs what it finds).
    Check,
    /// Bearer tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// The ledger, offline.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Policies, offline.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Evidence for auditors: a grant's whole story (who asked, for whom, why, which
    /// ticket and policies, who approved, for how long, when it was removed and how that
    /// was verified), each statement citing its ledger events with their proofs against a
    /// signed tree head (works with the server stopped); `verify` checks a document with
    /// nothing but writ's public key.
    #[command(args_conflicts_with_subcommands = true)]
    Evidence {
        #[command(subcommand)]
        command: Option<EvidenceCommand>,
        #[command(flatten)]
        select: EvidenceSelect,
    },
    /// What can be requested, and what policy would decide for you now; `show` one
    /// and what it really gives on its target.
    #[command(args_conflicts_with_subcommands = true)]
    Entitlements {
        #[command(subcommand)]
        command: Option<EntitlementsCommand>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Ask for an entitlement.
    Request {
        /// The entitlement, as TARGET/NAME (`writ entitlements` lists them).
        entitlement: String,
        /// Ask on behalf of a service or agent you own.
        #[arg(long = "for")]
        subject: Option<String>,
        /// How long, e.g. 8h, 15m, 3d or 1h30m (default: the entitlement's maximum);
        /// `permanent` for access without an end, where a policy permits it.
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
        /// Show the decision writ would make now (automatic for how long, how many
        /// approvals from whom, or denied and why), and record nothing.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// List requests (or show one).
    Requests {
        /// Show this request (its id, or a unique part of it such as req_4f2a9c1b).
        id: Option<String>,
        /// Only requests in this state: pending_approval, approved, denied, rejected,
        /// cancelled or expired.
        #[arg(long)]
        state: Option<String>,
        /// Only requests for this identity.
        #[arg(long)]
        subject: Option<String>,
        /// Only requests made by this identity.
        #[arg(long)]
        requester: Option<String>,
        /// Only requests waiting for your approval.
        #[arg(long)]
        inbox: bool,
        /// Show at most this many, newest first (writ pages through the server's list).
        #[arg(long, default_value_t = DEFAULT_LIST_LIMIT, value_parser = clap::value_parser!(u32).range(1..))]
        limit: u32,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Approve a pending request.
    Approve {
        /// The request (its id, or a unique part of it such as req_4f2a9c1b).
        id: String,
        /// A comment kept with the approval on the ledger.
        #[arg(long, short = 'm', default_value = "")]
        comment: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Reject a pending request.
    Reject {
        /// The request (its id, or a unique part of it such as req_4f2a9c1b).
        id: String,
        /// Why, kept on the ledger.
        #[arg(long, short = 'm', default_value = "")]
        comment: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Cancel your own pending request.
    Cancel {
        /// The request (its id, or a unique part of it such as req_4f2a9c1b).
        id: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// List grants (or show one).
    Grants {
        /// Show this grant (its id, or a unique part of it such as grt_4f2a9c1b).
        id: Option<String>,
        /// Only grants held by this identity.
        #[arg(long)]
        subject: Option<String>,
        /// Only grants in this state: pending, active, revoking, revoked or failed.
        #[arg(long)]
        state: Option<String>,
        /// Only grants of this entitlement (TARGET/NAME).
        #[arg(long)]
        entitlement: Option<String>,
        /// Show at most this many, newest first (writ pages through the server's list).
        #[arg(long, default_value_t = DEFAULT_LIST_LIMIT, value_parser = clap::value_parser!(u32).range(1..))]
        limit: u32,
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
    /// Sign in with your organisation's OpenID provider: in a browser (authorization
    /// code with PKCE, back to this machine), or with --device on any device. The
    /// tokens are kept in your config folder (0600) and renewed when they expire.
    Login {
        /// Sign in on another device: print an address and a code to enter there.
        #[arg(long)]
        device: bool,
        /// Do not open a browser; print the address to open.
        #[arg(long)]
        no_browser: bool,
        /// The provider's issuer, when the server offers several.
        #[arg(long)]
        provider: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Forget this machine's sign-in to the server.
    Logout {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Who the server takes you for: the identity your token names, its groups, and
    /// whether it is an auditor or an admin.
    Whoami {
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
        /// unmanaged, lingering, missing, not_permitted or entitlement_changed.
        #[arg(long)]
        kind: Option<String>,
        /// Only findings on this target.
        #[arg(long)]
        target: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Collect the short-lived credential of a grant (its password is shown once).
    Credential {
        /// The grant (its id, or a unique part of it such as grt_4f2a9c1b).
        grant: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Emergency access: grant a `[[break_glass]]` profile's entitlements at once,
    /// without approval. Everyone the profile names is told at once, and someone else
    /// must review the use afterwards (`writ activations sign-off`).
    BreakGlass {
        /// The profile's name.
        profile: String,
        /// What is on fire.
        #[arg(long, short = 'j')]
        justification: String,
        /// How long, e.g. 30m or 1h (default: the profile's max_duration).
        #[arg(long)]
        duration: Option<String>,
        /// Agents: the user you act for (required for agents).
        #[arg(long)]
        on_behalf_of: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Break-glass activations and their reviews: list them (yours; everyone's for
    /// auditors), show one, or sign one off.
    Activations {
        #[command(subcommand)]
        action: Option<ActivationsCommand>,
        /// Only reviews in this state: open, overdue or signed_off.
        #[arg(long)]
        state: Option<String>,
        /// Only the reviews waiting for you to sign off.
        #[arg(long)]
        inbox: bool,
        /// Show at most this many, newest first (writ pages through the server's list).
        #[arg(long, default_value_t = DEFAULT_LIST_LIMIT, value_parser = clap::value_parser!(u32).range(1..))]
        limit: u32,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Access reviews: start a campaign (admins), follow its progress, and keep or
    /// revoke the items waiting for you.
    Review {
        #[command(subcommand)]
        action: ReviewCommand,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Ask for more time on an active grant: a new request under the policy in force
    /// (with its own approvals), which moves the grant's end when granted.
    Extend {
        /// The grant (its id, or a unique part of it such as grt_4f2a9c1b).
        grant: String,
        /// How much longer, e.g. 1h or 30m (default: the entitlement's maximum).
        #[arg(long)]
        duration: Option<String>,
        /// Why more time is needed.
        #[arg(long, short = 'j')]
        justification: String,
        /// Agents: the user you act for (required for agents).
        #[arg(long)]
        on_behalf_of: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// A report for auditors (auditors and admins): standing-access, exceptions,
    /// failed-revocations, time-to-revoke, break-glass, orphans, requests-by-outcome or
    /// agent-access or controls. A table; --json for JSON, --csv for CSV.
    Report {
        /// Which report.
        name: String,
        /// The period or threshold in days (each report has its default; docs/reports.md).
        #[arg(long)]
        days: Option<i64>,
        /// Print CSV (RFC 4180) instead of a table.
        #[arg(long, conflicts_with = "json")]
        csv: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// End a grant now: writ removes it from the target and verifies it is gone.
    Revoke {
        /// The grant (its id, or a unique part of it such as grt_4f2a9c1b).
        id: String,
        /// Why, kept on the ledger.
        #[arg(long, default_value = "")]
        reason: String,
        #[command(flatten)]
        client: ClientArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum ActivationsCommand {
    /// Show one activation and its review.
    Show {
        /// The activation (its id, or a unique part of it such as bgl_4f2a9c1b).
        id: String,
    },
    /// Sign off the review of someone else's activation.
    SignOff {
        /// The activation (its id, or a unique part of it such as bgl_4f2a9c1b).
        id: String,
        /// What you looked at and found, kept on the ledger.
        #[arg(long, short = 'm')]
        comment: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum EntitlementsCommand {
    /// One entitlement and what its role really gives on its target now: the roles or
    /// groups it reaches, superuser, powers and object privileges (read from the target).
    Show {
        /// The entitlement, as TARGET/NAME.
        id: String,
        #[command(flatten)]
        client: ClientArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum ReviewCommand {
    /// Start a campaign: one item per active grant (and with --exceptions, accepted
    /// exception) in scope, each assigned to its reviewers (admins only).
    Start {
        /// What to call it, e.g. "2027-Q1 production databases".
        name: String,
        /// Only access on this target.
        #[arg(long)]
        target: Option<String>,
        /// Only this entitlement.
        #[arg(long)]
        entitlement: Option<String>,
        /// Only entitlements of at least this sensitivity: low, medium, high, critical.
        #[arg(long)]
        sensitivity: Option<String>,
        /// Standing access only: held for at least this many days.
        #[arg(long)]
        older_than_days: Option<u32>,
        /// Review accepted exceptions too.
        #[arg(long)]
        exceptions: bool,
        /// Review no grants (with --exceptions: exceptions only).
        #[arg(long, requires = "exceptions")]
        no_grants: bool,
        /// Who reviews: owners (the entitlement's owners group), manager (the
        /// subject's manager) or approvers (whoever an approve policy permits).
        #[arg(long, default_value = "owners")]
        assign: String,
        /// What items nobody decided by the deadline become: revoke or keep.
        #[arg(long = "default", default_value = "revoke")]
        default_decision: String,
        /// How long reviewers have, e.g. 14d.
        #[arg(long, default_value = "14d")]
        due: String,
        /// Remind reviewers with items waiting this often, e.g. 2d.
        #[arg(long)]
        remind_every: Option<String>,
    },
    /// List campaigns, newest first (auditors: all; others: those you review in).
    List {
        /// Only campaigns in this state: open or closed.
        #[arg(long)]
        state: Option<String>,
        /// Show at most this many (writ pages through the server's list).
        #[arg(long, default_value_t = DEFAULT_LIST_LIMIT, value_parser = clap::value_parser!(u32).range(1..))]
        limit: u32,
    },
    /// A campaign's progress: items pending, kept, revoked, and who still has items.
    Show {
        /// The campaign (its id, or a unique part of it such as rvc_4f2a9c1b).
        id: String,
    },
    /// Review items: a campaign's, or with --inbox those waiting for you.
    Items {
        /// The campaign (its id, or a unique part of it); all campaigns when absent.
        campaign: Option<String>,
        /// Only items in this state: pending, kept or revoked.
        #[arg(long)]
        state: Option<String>,
        /// Only the pending items you may decide now.
        #[arg(long)]
        inbox: bool,
        /// Show at most this many (writ pages through the server's list).
        #[arg(long, default_value_t = DEFAULT_LIST_LIMIT, value_parser = clap::value_parser!(u32).range(1..))]
        limit: u32,
    },
    /// Keep an item's access, saying why.
    Keep {
        /// The item (its id, or a unique part of it such as rvi_4f2a9c1b).
        item: String,
        /// Why it stays, kept on the ledger.
        #[arg(long, short = 'm')]
        comment: String,
    },
    /// Revoke an item's access, saying why: writ removes it from the target and
    /// verifies it is gone.
    Revoke {
        /// The item (its id, or a unique part of it such as rvi_4f2a9c1b).
        item: String,
        /// Why it goes, kept on the ledger.
        #[arg(long, short = 'm')]
        comment: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum FindingsCommand {
    /// Show one finding.
    Show {
        /// The finding (its id, or a unique part of it such as fnd_4f2a9c1b).
        id: String,
    },
    /// Accept an open finding as an exception (entitlement owners only).
    Accept {
        /// The finding (its id, or a unique part of it such as fnd_4f2a9c1b).
        id: String,
        /// The user who answers for the exception.
        #[arg(long)]
        owner: String,
        /// Why the access may stay, kept on the ledger.
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
        /// A user, service or agent named in the configuration.
        identity: String,
        /// Lifetime, e.g. 1h, 8h, 30d (at most 90 days).
        #[arg(long, default_value = "1h")]
        ttl: String,
    },
    /// List tokens by id (yours; an admin's list has everyone's).
    List {
        /// Only this identity's tokens (admins).
        #[arg(long)]
        identity: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Revoke a token by the id `writ token list` shows, effective at once (yours;
    /// admins anyone's).
    Revoke {
        /// The token's id (16 hexadecimal digits), not the token itself.
        id: String,
        #[command(flatten)]
        client: ClientArgs,
    },
}

/// Which grants `writ evidence` writes documents for.
#[derive(Debug, clap::Args)]
pub struct EvidenceSelect {
    /// The grant (its id, or a unique part of it such as grt_4f2a9c1b).
    #[arg(conflicts_with_all = ["ticket", "subject", "entitlement", "since", "sample"])]
    pub grant: Option<String>,
    /// Every grant made from this ticket, as SYSTEM:KEY (a ticket writ checked in a
    /// configured ticketing system).
    #[arg(long)]
    pub ticket: Option<String>,
    /// Grants to this identity.
    #[arg(long)]
    pub subject: Option<String>,
    /// Grants of this entitlement (TARGET/NAME).
    #[arg(long)]
    pub entitlement: Option<String>,
    /// Grants requested in this last period (30d, 12h) or since this RFC 3339 time.
    #[arg(long)]
    pub since: Option<String>,
    /// At most this many of the selected grants, drawn at random; the seed is printed.
    #[arg(long)]
    pub sample: Option<usize>,
    /// The seed for --sample: the same seed draws the same grants.
    #[arg(long, requires = "sample")]
    pub seed: Option<u64>,
    /// Write JSON for machines instead of Markdown for people.
    #[arg(long)]
    pub json: bool,
    /// One grant: the file to write (default: standard output). A selection: the folder
    /// to write a document per grant into, with index.md (required).
    #[arg(long, short = 'o', value_name = "PATH")]
    pub out: Option<std::path::PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum EvidenceCommand {
    /// Check evidence documents (Markdown or JSON) with nothing but the public key:
    /// every event's hash, every inclusion proof, the tree head's signature, and that
    /// every statement and every byte is what those events say. Names what fails.
    Verify {
        /// The documents, as `writ evidence` wrote them (a sample's folder: DIR/*.md).
        #[arg(required = true)]
        files: Vec<std::path::PathBuf>,
        /// The ledger's public key you trust (64 hex digits, from `writ audit pubkey`).
        #[arg(long)]
        pubkey: String,
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
        /// Also prove the ledger extends every checkpoint in this file (JSON lines, as
        /// written by writ), each signed by --pubkey.
        #[arg(long, requires = "pubkey")]
        checkpoint: Option<std::path::PathBuf>,
        /// The ledger's public key you trust (64 hex digits, from `writ audit pubkey`).
        #[arg(long, requires = "checkpoint")]
        pubkey: Option<String>,
    },
    /// Sign a checkpoint of the ledger now, append it to the checkpoint file and the
    /// ledger, and print it (works with the server stopped).
    Checkpoint,
    /// Print the public key that verifies this writ's ledger checkpoints.
    Pubkey,
    /// Prove that the ledger under tree head NEW only appended to the one under OLD (an
    /// RFC 6962 consistency proof), from the ledger here or, with --proof, from nothing
    /// but the two heads, the proof and the key.
    Consistency {
        /// The earlier signed tree head: a checkpoint line, or a checkpoint file (its
        /// last line).
        old: std::path::PathBuf,
        /// The later one, likewise.
        new: std::path::PathBuf,
        /// The ledger's public key you trust (64 hex digits, from `writ audit pubkey`).
        #[arg(long)]
        pubkey: String,
        /// A proof printed by `--json` (then the database is not read).
        #[arg(long, value_name = "FILE")]
        proof: Option<std::path::PathBuf>,
        /// Print the heads and the proof as JSON, for someone without the database.
        #[arg(long)]
        json: bool,
    },
    /// Print events, oldest first, for shipping to a SIEM (incrementally with --after).
    Export {
        /// jsonl: writ's own events; ocsf: OCSF 1.8.0 events.
        #[arg(long, value_enum, default_value = "jsonl")]
        format: ExportFormat,
        /// Only events after this sequence number.
        #[arg(long, default_value_t = 0)]
        after: i64,
    },
    /// Print recent events from a running server.
    Log {
        /// Only events after this sequence number.
        #[arg(long, default_value_t = 0)]
        after: i64,
        /// At most this many events.
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
    /// Policies that are valid but probably not meant: automatic high or critical
    /// access, permits without @max_duration, request policies that apply to nobody,
    /// forbids without @reason. Exits 1 when it finds any (`policy check` prints them
    /// as warnings); @lint_allow("RULE") on a policy silences a rule for it.
    Lint,
    /// Why a past request was decided as it was: its decision of record from the
    /// ledger, and — when the policy set at hand is the one that decided — every
    /// policy's part: which set the outcome and with which annotations, which applied,
    /// and why the others did not.
    Explain {
        /// The request (its id, or a unique part of it such as req_4f2a9c1b).
        id: String,
        /// The policy folder to explain with (default: policy.dir); its set must be the
        /// one that decided.
        #[arg(long, value_name = "DIR")]
        policies: Option<PathBuf>,
    },
    /// How a proposed policy set would have decided the recorded requests: each
    /// request on the ledger (since --since) decided again with its recorded facts, and
    /// a table of the decisions that change. Records nothing.
    Replay {
        /// The proposed policy folder.
        #[arg(long, value_name = "DIR")]
        policies: PathBuf,
        /// Only requests made this long ago or since, e.g. 30d or 12h (default: all).
        #[arg(long)]
        since: Option<String>,
        /// Show at most this many changes (the count is always whole).
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Print writ's Cedar schema.
    Schema,
    /// Put the policy folder's current set in force on a running server (admins; the
    /// same as sending it SIGHUP). A set that does not load is refused and the one in
    /// force kept.
    Reload {
        #[command(flatten)]
        client: ClientArgs,
    },
}

pub async fn run(cli: Cli) -> Result<(), Failure> {
    let config = cli.config;
    match cli.command {
        Command::Serve {
            log_format,
            migrate,
        } => serve::run(&config, log_format, migrate).await,
        Command::Migrate => offline::migrate(&config).await,
        Command::Init { dir } => init::run(&dir),
        Command::Check => check::run(&config).await,
        Command::Entitlements {
            command: Some(EntitlementsCommand::Show { id, client }),
            ..
        } => {
            client::Client::new(&config, &client)?
                .show_entitlement(&id)
                .await
        }
        Command::Entitlements {
            command: None,
            client,
        } => {
            client::Client::new(&config, &client)?
                .list_entitlements()
                .await
        }
        Command::Token(TokenCommand::Issue { identity, ttl }) => {
            offline::issue_token(&config, &identity, &ttl).await
        }
        Command::Token(TokenCommand::List { identity, client }) => {
            client::Client::new(&config, &client)?
                .list_tokens(identity)
                .await
        }
        Command::Token(TokenCommand::Revoke { id, client }) => {
            client::Client::new(&config, &client)?
                .revoke_token(&id)
                .await
        }
        Command::Audit(AuditCommand::Verify {
            chain_only,
            checkpoint,
            pubkey,
        }) => {
            let checkpoints = checkpoint.zip(pubkey);
            offline::verify(&config, chain_only, checkpoints).await
        }
        Command::Audit(AuditCommand::Checkpoint) => offline::checkpoint(&config).await,
        Command::Audit(AuditCommand::Pubkey) => offline::pubkey(&config),
        Command::Audit(AuditCommand::Consistency {
            old,
            new,
            pubkey,
            proof,
            json,
        }) => {
            crate::evidence::consistency(&config, &old, &new, &pubkey, proof.as_ref(), json).await
        }
        Command::Evidence {
            command: Some(EvidenceCommand::Verify { files, pubkey }),
            ..
        } => crate::evidence::verify(&files, &pubkey),
        Command::Evidence {
            command: None,
            select,
        } => crate::evidence::write(&config, select).await,
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
        Command::Policy(PolicyCommand::Check) => offline::policy_check(&config).await,
        Command::Policy(PolicyCommand::Lint) => crate::policy_tools::policy_lint(&config),
        Command::Policy(PolicyCommand::Replay {
            policies,
            since,
            limit,
        }) => crate::policy_tools::policy_replay(&config, &policies, since.as_deref(), limit).await,
        Command::Policy(PolicyCommand::Explain { id, policies }) => {
            crate::policy_tools::policy_explain(&config, &id, policies.as_deref()).await
        }
        Command::Policy(PolicyCommand::Reload { client }) => {
            client::Client::new(&config, &client)?.reload_policy().await
        }
        Command::Policy(PolicyCommand::Schema) => {
            crate::stdout::write(writ_policy::SCHEMA_TEXT);
            Ok(())
        }
        Command::Request {
            entitlement,
            subject,
            duration,
            justification,
            ticket,
            on_behalf_of,
            dry_run,
            client,
        } => {
            let asked = client::Asked {
                entitlement,
                subject,
                duration,
                justification,
                ticket,
                on_behalf_of,
            };
            let client = client::Client::new(&config, &client)?;
            if dry_run {
                client.preview(asked).await
            } else {
                client.request(asked).await
            }
        }
        Command::Requests {
            id,
            state,
            subject,
            requester,
            inbox,
            limit,
            client,
        } => {
            let client = client::Client::new(&config, &client)?;
            match id {
                Some(id) => client.show_request(&id).await,
                None => {
                    client
                        .list_requests(state, subject, requester, inbox, limit)
                        .await
                }
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
            limit,
            client,
        } => {
            let client = client::Client::new(&config, &client)?;
            match id {
                Some(id) => client.show_grant(&id).await,
                None => client.list_grants(subject, state, entitlement, limit).await,
            }
        }
        Command::Identities { orphaned, client } => {
            client::Client::new(&config, &client)?
                .list_identities(orphaned)
                .await
        }
        Command::Whoami { client } => client::Client::new(&config, &client)?.whoami().await,
        Command::Login {
            device,
            no_browser,
            provider,
            client,
        } => {
            let flow = if device {
                crate::login::Flow::Device
            } else {
                crate::login::Flow::Browser { open: !no_browser }
            };
            crate::login::login(&config, &client, flow, provider.as_deref()).await
        }
        Command::Logout { client } => crate::login::logout(&config, &client).await,
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
        Command::BreakGlass {
            profile,
            justification,
            duration,
            on_behalf_of,
            client,
        } => {
            client::Client::new(&config, &client)?
                .break_glass(&profile, justification, duration, on_behalf_of)
                .await
        }
        Command::Activations {
            action,
            state,
            inbox,
            limit,
            client,
        } => {
            let client = client::Client::new(&config, &client)?;
            match action {
                None => client.list_activations(state, inbox, limit).await,
                Some(ActivationsCommand::Show { id }) => client.show_activation(&id).await,
                Some(ActivationsCommand::SignOff { id, comment }) => {
                    client.sign_off_activation(&id, comment).await
                }
            }
        }
        Command::Review { action, client } => {
            client::Client::new(&config, &client)?.review(action).await
        }
        Command::Extend {
            grant,
            duration,
            justification,
            on_behalf_of,
            client,
        } => {
            client::Client::new(&config, &client)?
                .extend(&grant, duration, justification, on_behalf_of)
                .await
        }
        Command::Report {
            name,
            days,
            csv,
            client,
        } => {
            client::Client::new(&config, &client)?
                .report(&name, days, csv)
                .await
        }
        Command::Revoke { id, reason, client } => {
            client::Client::new(&config, &client)?
                .revoke(&id, reason)
                .await
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    /// Every command, argument and option explains itself in `--help`.
    #[test]
    fn every_command_and_argument_has_help_text() {
        fn walk(command: &clap::Command, path: &str, missing: &mut Vec<String>) {
            let path = format!("{path} {}", command.get_name());
            if command.get_about().is_none() && !command.is_hide_set() {
                missing.push(path.clone());
            }
            for arg in command.get_arguments() {
                let builtin = matches!(arg.get_id().as_str(), "help" | "version");
                if arg.get_help().is_none() && !builtin && !arg.is_hide_set() {
                    missing.push(format!("{path} <{}>", arg.get_id()));
                }
            }
            for sub in command.get_subcommands() {
                if sub.get_name() != "help" {
                    walk(sub, &path, missing);
                }
            }
        }
        let mut missing = Vec::new();
        walk(&Cli::command(), "", &mut missing);
        assert!(missing.is_empty(), "no help text: {missing:#?}");
    }

    /// docs/cli.md is generated from these definitions; regenerate it with
    /// `WRIT_UPDATE_DOCS=1 cargo test -p writ every_command_is_in_the_cli_reference`.
    #[test]
    fn every_command_is_in_the_cli_reference() {
        let generated = format!(
            "<!-- Generated from crates/writ/src/cli.rs by its tests: do not edit by hand. -->\n\n{}",
            clap_markdown::help_markdown::<Cli>()
        );
        let path = std::path::PathBuf::from(
            std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
        )
        .join("../../docs/cli.md");
        if std::env::var_os("WRIT_UPDATE_DOCS").is_some() {
            std::fs::write(&path, &generated).expect("write docs/cli.md");
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == generated,
            "docs/cli.md is stale: run `WRIT_UPDATE_DOCS=1 cargo test -p writ every_command_is_in_the_cli_reference`"
        );
    }
}
