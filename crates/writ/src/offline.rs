//! Commands that work with the server stopped: tokens, ledger verification and export,
//! policy checks.

use crate::stdout::outln;
use std::path::{Path, PathBuf};

use writ_config::Config;
use writ_domain::{Clock, parse_duration_seconds};
use writ_engine::SystemClock;
use writ_engine::checkpoint::{self, CheckpointErrorOrStore};
use writ_policy::{PolicyEngine, PolicyLoadError};
use writ_store::{Backend, EVENT_PAGE_SIZE, Migrated, Schema, Store, VerifyError};

use crate::Failure;
use crate::cli::ExportFormat;

/// `policy check` evaluates at most this many synthetic requests.
const DRY_RUN_EVALUATIONS_MAX: usize = 100_000;

pub fn load_config(path: &Path) -> Result<Config, Failure> {
    Config::load(path).map_err(|error| Failure::usage(error.to_string()))
}

pub fn load_policy(config: &Config) -> Result<PolicyEngine, Failure> {
    PolicyEngine::load(&config.policy_dir, config).map_err(|error| match error {
        PolicyLoadError::Invalid(diagnostics) => Failure::usage(format!(
            "{} problem(s) in the policies:\n{}",
            diagnostics.len(),
            diagnostics
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        )),
        other => Failure::usage(other.to_string()),
    })
}

/// Opens the configured database. A SQLite file belongs to this one writ, which brings
/// its schema up to date; a PostgreSQL database may be shared by several nodes, so its
/// schema changes only through `writ migrate` or `writ serve --migrate`.
pub async fn open_store(config: &Config) -> Result<Store, Failure> {
    open_store_upgrading(config, false)
        .await
        .map(|(store, _)| store)
}

/// `open_store`, upgrading the schema of any database when `upgrade` is set.
pub async fn open_store_upgrading(
    config: &Config,
    upgrade: bool,
) -> Result<(Store, Migrated), Failure> {
    let schema = if upgrade || Backend::of(&config.storage_url) == Backend::Sqlite {
        Schema::Upgrade
    } else {
        Schema::RequireCurrent
    };
    Store::open_with(&config.storage_url, schema)
        .await
        .map_err(|error| {
            Failure::failed(format!("{}: storage.url: {error}", config.path.display()))
        })
}

/// `writ migrate`: brings the database's schema up to this writ's version.
pub async fn migrate(config_path: &Path) -> Result<(), Failure> {
    let config = load_config(config_path)?;
    let (store, migrated) = open_store_upgrading(&config, true).await?;
    store.close().await;
    if migrated.from == migrated.to {
        outln!("schema already at version {}; nothing to do", migrated.to);
    } else {
        outln!(
            "schema upgraded from version {} to {}",
            migrated.from,
            migrated.to
        );
    }
    Ok(())
}

pub async fn issue_token(config_path: &Path, identity: &str, ttl: &str) -> Result<(), Failure> {
    let config = load_config(config_path)?;
    let ttl_seconds = parse_duration_seconds(ttl)
        .map_err(|problem| Failure::usage(format!("--ttl {ttl:?}: {problem}")))?;
    let key = writ_engine::keys::TokenKey::load(&config.keys.token)
        .map_err(|error| Failure::failed(format!("{}: keys: {error}", config.path.display())))?;
    let store = open_store(&config).await?;
    let token = writ_engine::issue_token(
        &config,
        &store,
        &key,
        SystemClock.now(),
        identity,
        ttl_seconds,
    )
    .await
    .map_err(|error| Failure::failed(error.message))?;
    store.close().await;
    outln!("{token}");
    Ok(())
}

pub async fn verify(
    config_path: &Path,
    chain_only: bool,
    checkpoints: Option<(PathBuf, String)>,
) -> Result<(), Failure> {
    let config = load_config(config_path)?;
    // Bad input first, before any work: a file that is not checkpoints, a key that is not one.
    let checkpoints = checkpoints
        .map(|(file, key)| {
            let text = std::fs::read_to_string(&file).map_err(|error| {
                Failure::usage(format!("--checkpoint {}: {error}", file.display()))
            })?;
            let parsed = checkpoint::parse_checkpoints(&text).map_err(|error| {
                Failure::usage(format!("--checkpoint {}: {error}", file.display()))
            })?;
            let key = checkpoint::parse_public_key(&key)
                .map_err(|error| Failure::usage(format!("--pubkey: {error}")))?;
            Ok::<_, Failure>((file, parsed, key))
        })
        .transpose()?;
    let store = open_store(&config).await?;
    let result = if chain_only {
        store.verify_chain().await
    } else {
        store.verify().await
    };
    // The stored Merkle tree, which proofs are made from, recomputed from the events.
    let tree = match &result {
        Ok(report) if !chain_only => Some(
            store
                .check_stored_tree(u64::try_from(report.events).unwrap_or(0))
                .await,
        ),
        _ => None,
    };
    let checked = match (&result, &checkpoints) {
        (Ok(_), Some((_, parsed, key))) => {
            Some(checkpoint::check_checkpoints(&store, parsed, key).await)
        }
        _ => None,
    };
    store.close().await;
    let summary = match result {
        Ok(report) if chain_only => format!(
            "ledger chain intact: {} events, head {} (state tables not compared: run without --chain-only for that)",
            report.events, report.head
        ),
        Ok(report) => format!(
            "ledger intact: {} events, head {}; {}; {} requests, {} grants, {} findings, {} tokens, {} break-glass activations, {} review campaigns and {} review items agree with the ledger",
            report.events,
            report.head,
            match tree {
                Some(Ok(subtrees)) =>
                    format!("its Merkle tree's {subtrees} stored subtrees recomputed"),
                Some(Err(error)) => {
                    return Err(Failure::failed(format!(
                        "ledger verification FAILED: {error}"
                    )));
                }
                None => "its Merkle tree not checked".to_string(),
            },
            report.requests,
            report.grants,
            report.findings,
            report.tokens,
            report.activations,
            report.campaigns,
            report.review_items
        ),
        Err(VerifyError::Ledger(error)) => {
            let located = error
                .seq()
                .map_or_else(String::new, |seq| format!(" at event {seq}"));
            return Err(Failure::failed(format!(
                "ledger verification FAILED{located}: {error}"
            )));
        }
        Err(VerifyError::Store(error)) => {
            return Err(Failure::failed(format!("cannot read the ledger: {error}")));
        }
    };
    match (checked, checkpoints) {
        (Some(Ok(count)), Some((file, _, _))) => outln!(
            "{summary}; it extends all {count} checkpoints in {}",
            file.display()
        ),
        (Some(Err(CheckpointErrorOrStore::Checkpoint(error))), _) => {
            return Err(Failure::failed(format!(
                "ledger verification FAILED against the checkpoints: {error}"
            )));
        }
        (Some(Err(CheckpointErrorOrStore::Store(error))), _) => {
            return Err(Failure::failed(format!("cannot read the ledger: {error}")));
        }
        _ => outln!("{summary}"),
    }
    Ok(())
}

/// `writ audit checkpoint`: sign the ledger's head now.
pub async fn checkpoint(config_path: &Path) -> Result<(), Failure> {
    let config = load_config(config_path)?;
    let key = ledger_key(&config)?;
    let store = open_store(&config).await?;
    let taken = checkpoint::take_checkpoint(
        &store,
        &key,
        &config.checkpoints.file,
        SystemClock.now(),
        true,
    )
    .await;
    store.close().await;
    match taken.map_err(|error| Failure::failed(error.message))? {
        Some(taken) => {
            let line = serde_json::to_string(&taken)
                .map_err(|error| Failure::failed(error.to_string()))?;
            outln!("{line}");
            Ok(())
        }
        None => Err(Failure::failed(
            "the ledger is empty: there is nothing to sign yet",
        )),
    }
}

/// `writ audit pubkey`: the key that verifies this writ's checkpoints.
pub fn pubkey(config_path: &Path) -> Result<(), Failure> {
    let config = load_config(config_path)?;
    outln!("{}", ledger_key(&config)?.public_hex());
    Ok(())
}

pub(crate) fn ledger_key(config: &Config) -> Result<checkpoint::LedgerKey, Failure> {
    checkpoint::LedgerKey::load(&config.keys.ledger)
        .map_err(|error| Failure::failed(format!("{}: keys: {error}", config.path.display())))
}

pub async fn export(config_path: &Path, format: ExportFormat, after: i64) -> Result<(), Failure> {
    let config = load_config(config_path)?;
    let store = open_store(&config).await?;
    let mut after = after.max(0);
    loop {
        let page = store
            .events(after, EVENT_PAGE_SIZE)
            .await
            .map_err(|e| Failure::failed(e.to_string()))?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        for event in &page {
            let event = event
                .to_event()
                .map_err(|e| Failure::failed(format!("the ledger is corrupt: {e}")))?;
            let line = match format {
                ExportFormat::Jsonl => serde_json::to_string(&event),
                ExportFormat::Ocsf => serde_json::to_string(&writ_export::ocsf::to_ocsf(
                    &event,
                    env!("CARGO_PKG_VERSION"),
                )),
            }
            .map_err(|e| Failure::failed(e.to_string()))?;
            outln!("{line}");
        }
    }
    store.close().await;
    Ok(())
}

pub async fn policy_check(config_path: &Path) -> Result<(), Failure> {
    let config = load_config(config_path)?;
    let policy = load_policy(&config)?;
    outln!(
        "ok: {} policies in {} files in {} validate against writ's schema (strict); policy set hash {}",
        policy.policy_count(),
        policy.file_count(),
        config.policy_dir.display(),
        policy.policy_hash()
    );
    for (id, effect) in policy.policy_ids() {
        outln!("  {effect:<6} {id}");
    }
    let lint = crate::policy_tools::findings(&policy, &config);
    crate::policy_tools::print(&lint, "warning: ");
    // What the entitlements' roles really give, asked of the targets.
    for warning in crate::check::critical_warnings(&config).await {
        outln!("warning: {warning}");
    }
    let dry_run = policy.dry_run(&config, SystemClock.now(), DRY_RUN_EVALUATIONS_MAX);
    if dry_run.errors.is_empty() {
        outln!(
            "dry run: {} requests (every identity × entitlement) evaluated without errors",
            dry_run.evaluated
        );
        return Ok(());
    }
    for (error, example) in &dry_run.errors {
        eprintln!("evaluation error ({example}): {error}");
    }
    Err(Failure::failed(format!(
        "{} distinct evaluation error(s) in a dry run of {} requests; an erroring policy counts as not satisfied",
        dry_run.errors.len(),
        dry_run.evaluated
    )))
}

/// An id as a person types it (whole, `grt_4f2a9c1b`, or a unique part), read against
/// the database: `reference` reads the text, `table` holds the ids, `what` names them.
pub async fn resolve_id<T: std::str::FromStr<Err = writ_domain::InvalidId>>(
    store: &Store,
    text: &str,
    reference: fn(&str) -> Result<writ_domain::IdRef<T>, writ_domain::InvalidId>,
    table: writ_store::IdTable,
    what: &str,
) -> Result<T, Failure> {
    let not_found = |problem: String| Failure::with_code(crate::EXIT_NOT_FOUND, problem);
    match reference(text) {
        Ok(writ_domain::IdRef::Full(id)) => Ok(id),
        Ok(writ_domain::IdRef::Fragment(fragment)) => {
            let found = store
                .ids_matching(table, &fragment)
                .await
                .map_err(|e| Failure::failed(e.to_string()))?;
            match found.as_slice() {
                [one] => one
                    .parse()
                    .map_err(|e: writ_domain::InvalidId| Failure::failed(e.to_string())),
                [] => Err(not_found(format!("no {what} {text}"))),
                _ => Err(Failure::usage(format!(
                    "{text} names more than one {what}; give more of the id"
                ))),
            }
        }
        Err(invalid) => Err(not_found(format!("no {what} {text}: {}", invalid.problem))),
    }
}
