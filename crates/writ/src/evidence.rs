//! `writ evidence` (documents for auditors, offline), `writ evidence verify` (a document
//! checked with nothing but the public key) and `writ audit consistency` (two tree
//! heads, one history).

use std::path::{Path, PathBuf};

use rand::SeedableRng as _;
use writ_domain::{Clock as _, GrantId, Timestamp};
use writ_engine::SystemClock;
use writ_engine::checkpoint::{self, Checkpoint, ConsistencyProof};
use writ_engine::evidence_doc::{self, EvidenceDocument};
use writ_store::{IdTable, Store};

use crate::cli::EvidenceSelect;
use crate::offline::{ledger_key, load_config, open_store};
use crate::stdout::outln;
use crate::{EXIT_NOT_FOUND, Failure};

/// `writ evidence GRANT` or a selection of grants into a folder.
pub async fn write(config_path: &Path, select: EvidenceSelect) -> Result<(), Failure> {
    let config = load_config(config_path)?;
    let selection = Selection::read(&select)?;
    let key = ledger_key(&config)?;
    let store = open_store(&config).await?;
    let outcome = async {
        match &select.grant {
            Some(text) => {
                let id = crate::offline::resolve_id(
                    &store,
                    text,
                    GrantId::reference,
                    IdTable::Grants,
                    "grant",
                )
                .await?;
                let document = make(&store, &key, &config.checkpoints.file, id).await?;
                let text = rendered(&document, select.json);
                match &select.out {
                    Some(file) => std::fs::write(file, text).map_err(|error| {
                        Failure::failed(format!("--out {}: {error}", file.display()))
                    }),
                    None => {
                        crate::stdout::write(&text);
                        Ok(())
                    }
                }
            }
            None => {
                let dir = select.out.as_deref().ok_or_else(|| {
                    Failure::usage("--out DIR: a selection of grants is written into a folder")
                })?;
                write_selection(
                    &store,
                    &key,
                    &config.checkpoints.file,
                    &select,
                    &selection,
                    dir,
                )
                .await
            }
        }
    }
    .await;
    store.close().await;
    outcome
}

/// What an auditor asked for, read and checked before any work.
struct Selection {
    ticket: Option<(String, String)>,
    since: Option<Timestamp>,
    sample: Option<usize>,
    seed: u64,
}

impl Selection {
    fn read(select: &EvidenceSelect) -> Result<Self, Failure> {
        let ticket = select
            .ticket
            .as_deref()
            .map(|text| {
                text.split_once(':')
                    .filter(|(system, key)| !system.is_empty() && !key.is_empty())
                    .map(|(system, key)| (system.to_string(), key.to_string()))
                    .ok_or_else(|| {
                        Failure::usage(format!(
                            "--ticket {text:?}: give it as SYSTEM:KEY, e.g. jira:OPS-42"
                        ))
                    })
            })
            .transpose()?;
        let since = select
            .since
            .as_deref()
            .map(|text| {
                since_of(text, SystemClock.now())
                    .map_err(|problem| Failure::usage(format!("--since {text:?}: {problem}")))
            })
            .transpose()?;
        if select.sample == Some(0) {
            return Err(Failure::usage("--sample: at least 1"));
        }
        if select.grant.is_none()
            && ticket.is_none()
            && since.is_none()
            && select.subject.is_none()
            && select.entitlement.is_none()
        {
            return Err(Failure::usage(
                "name a grant, or select grants with --ticket, --subject, --entitlement or --since",
            ));
        }
        // Randomness only for a sample that was not given its seed.
        let seed = match (select.seed, select.sample) {
            (Some(seed), _) => seed,
            (None, None) => 0,
            (None, Some(_)) => {
                let mut bytes = [0u8; 8];
                getrandom::fill(&mut bytes)
                    .map_err(|e| Failure::failed(format!("no randomness for --sample: {e}")))?;
                u64::from_le_bytes(bytes)
            }
        };
        Ok(Self {
            ticket,
            since,
            sample: select.sample,
            seed,
        })
    }
}

/// A period back from `now` (30d, 12h) or an RFC 3339 time.
fn since_of(text: &str, now: Timestamp) -> Result<Timestamp, String> {
    match writ_domain::parse_duration_seconds(text) {
        Ok(seconds) => Ok(now.plus_seconds(-seconds)),
        Err(_) => Timestamp::parse_rfc3339(text)
            .map_err(|_| "give a period such as 30d or 12h, or an RFC 3339 time".to_string()),
    }
}

/// Draws `n` of `ids` with a generator seeded by `seed` (the same seed, the same
/// grants), in id order; all of them when there are no more than `n`.
fn sample(ids: &[GrantId], n: usize, seed: u64) -> Vec<GrantId> {
    if n >= ids.len() {
        return ids.to_vec();
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut picked: Vec<GrantId> = rand::seq::index::sample(&mut rng, ids.len(), n)
        .into_iter()
        .map(|index| ids[index])
        .collect();
    picked.sort_unstable();
    picked
}

async fn write_selection(
    store: &Store,
    key: &checkpoint::LedgerKey,
    checkpoint_file: &Path,
    select: &EvidenceSelect,
    selection: &Selection,
    dir: &Path,
) -> Result<(), Failure> {
    let read = |e: writ_store::StoreError| Failure::failed(format!("cannot read the ledger: {e}"));
    let ids = store
        .grants_selected(
            select.subject.as_deref(),
            select.entitlement.as_deref(),
            selection
                .ticket
                .as_ref()
                .map(|(system, key)| (system.as_str(), key.as_str())),
            selection.since,
        )
        .await
        .map_err(read)?;
    if ids.is_empty() {
        return Err(Failure::with_code(
            EXIT_NOT_FOUND,
            "no grant matches the selection",
        ));
    }
    let chosen = match selection.sample {
        Some(n) => sample(&ids, n, selection.seed),
        None => ids.clone(),
    };
    std::fs::create_dir_all(dir)
        .map_err(|error| Failure::failed(format!("--out {}: {error}", dir.display())))?;
    let extension = if select.json { "json" } else { "md" };
    let mut index = format!(
        "# Evidence index\n\nSelected: {}.\n\nEach document proves itself (`writ evidence verify FILE --pubkey KEY`); this index only lists them.\n\n| grant | subject | entitlement | state | document |\n|---|---|---|---|---|\n",
        describe(select, selection, chosen.len(), ids.len())
    );
    for id in &chosen {
        let document = make(store, key, checkpoint_file, *id).await?;
        let name = format!("{id}.{extension}");
        let path = dir.join(&name);
        std::fs::write(&path, rendered(&document, select.json))
            .map_err(|error| Failure::failed(format!("{}: {error}", path.display())))?;
        let grant = store.grant(*id).await.map_err(read)?;
        let (subject, entitlement, state) = grant.map_or_else(Default::default, |g| {
            (
                g.subject.to_string(),
                g.entitlement.to_string(),
                g.state.as_str().to_string(),
            )
        });
        index.push_str(&format!(
            "| {id} | {subject} | {entitlement} | {state} | [{name}]({name}) |\n"
        ));
    }
    let path = dir.join("index.md");
    std::fs::write(&path, index)
        .map_err(|error| Failure::failed(format!("{}: {error}", path.display())))?;
    outln!(
        "wrote {} evidence document(s) and index.md to {} ({})",
        chosen.len(),
        dir.display(),
        describe(select, selection, chosen.len(), ids.len())
    );
    Ok(())
}

/// The selection in words, with the seed of a sample (to draw it again).
fn describe(
    select: &EvidenceSelect,
    selection: &Selection,
    chosen: usize,
    matched: usize,
) -> String {
    let mut parts = Vec::new();
    if let Some((system, key)) = &selection.ticket {
        parts.push(format!("ticket {system}:{key}"));
    }
    if let Some(subject) = &select.subject {
        parts.push(format!("subject {subject}"));
    }
    if let Some(entitlement) = &select.entitlement {
        parts.push(format!("entitlement {entitlement}"));
    }
    if let Some(since) = selection.since {
        parts.push(format!("requested since {since}"));
    }
    match selection.sample {
        Some(n) if n < matched => parts.push(format!(
            "a random sample of {chosen} of the {matched} grants that match, seed {} (--seed {} draws the same)",
            selection.seed, selection.seed
        )),
        _ => parts.push(format!("all {matched} grants that match")),
    }
    parts.join("; ")
}

async fn make(
    store: &Store,
    key: &checkpoint::LedgerKey,
    checkpoint_file: &Path,
    id: GrantId,
) -> Result<EvidenceDocument, Failure> {
    evidence_doc::build(store, key, checkpoint_file, SystemClock.now(), id)
        .await
        .map_err(|error| {
            if error.code == writ_engine::ErrorCode::NotFound {
                Failure::with_code(EXIT_NOT_FOUND, error.message)
            } else {
                Failure::failed(error.message)
            }
        })
}

fn rendered(document: &EvidenceDocument, json: bool) -> String {
    if json {
        document.to_json()
    } else {
        evidence_doc::render_markdown(document)
    }
}

/// `writ evidence verify FILE... --pubkey KEY`: each document checked on its own; any
/// that fails fails the command, after all were checked.
pub fn verify(files: &[PathBuf], pubkey: &str) -> Result<(), Failure> {
    let key = checkpoint::parse_public_key(pubkey)
        .map_err(|error| Failure::usage(format!("--pubkey: {error}")))?;
    let mut failed = Vec::new();
    for file in files {
        let text = match std::fs::read_to_string(file) {
            Ok(text) => text,
            Err(error) => {
                eprintln!("{}: {error}", file.display());
                failed.push(file.display().to_string());
                continue;
            }
        };
        match evidence_doc::verify(&text, &key) {
            Ok(verified) => outln!(
                "{}: verified — grant {}, {} events, each in the tree of {} events with root {} signed by the given key",
                file.display(),
                verified.grant,
                verified.events,
                verified.tree_size,
                verified.root
            ),
            Err(problems) => {
                let lines: Vec<String> = problems.iter().map(|p| format!("  {p}")).collect();
                eprintln!(
                    "{}: verification FAILED:\n{}",
                    file.display(),
                    lines.join("\n")
                );
                failed.push(file.display().to_string());
            }
        }
    }
    match failed.as_slice() {
        [] => Ok(()),
        [one] => Err(Failure::failed(format!("{one}: verification FAILED"))),
        many => Err(Failure::failed(format!(
            "{} of {} documents failed verification: {}",
            many.len(),
            files.len(),
            many.join(", ")
        ))),
    }
}

/// A signed tree head from a file: one checkpoint, or a checkpoint file's last line.
fn read_head(file: &Path, name: &str) -> Result<Checkpoint, Failure> {
    let text = std::fs::read_to_string(file)
        .map_err(|error| Failure::usage(format!("{name} {}: {error}", file.display())))?;
    let heads = checkpoint::parse_checkpoints(&text)
        .map_err(|error| Failure::usage(format!("{name} {}: {error}", file.display())))?;
    heads
        .last()
        .cloned()
        .ok_or_else(|| Failure::usage(format!("{name} {}: no tree head in it", file.display())))
}

/// `writ audit consistency OLD NEW --pubkey KEY [--proof FILE] [--json]`.
pub async fn consistency(
    config_path: &Path,
    old: &Path,
    new: &Path,
    pubkey: &str,
    proof: Option<&PathBuf>,
    json: bool,
) -> Result<(), Failure> {
    let key = checkpoint::parse_public_key(pubkey)
        .map_err(|error| Failure::usage(format!("--pubkey: {error}")))?;
    let (old, new) = (read_head(old, "OLD")?, read_head(new, "NEW")?);
    let proven = match proof {
        Some(file) => {
            let text = std::fs::read_to_string(file)
                .map_err(|error| Failure::usage(format!("--proof {}: {error}", file.display())))?;
            let given: ConsistencyProof = serde_json::from_str(&text).map_err(|error| {
                Failure::usage(format!(
                    "--proof {}: not a consistency proof: {error}",
                    file.display()
                ))
            })?;
            ConsistencyProof {
                old,
                new,
                proof: given.proof,
            }
        }
        None => {
            let config = load_config(config_path)?;
            let store = open_store(&config).await?;
            let outcome = from_ledger(&store, &old, &new).await;
            store.close().await;
            outcome?
        }
    };
    proven
        .verify(&key)
        .map_err(|error| Failure::failed(format!("consistency check FAILED: {error}")))?;
    if json {
        let text = serde_json::to_string_pretty(&proven)
            .map_err(|error| Failure::failed(error.to_string()))?;
        outln!("{text}");
    } else {
        outln!(
            "consistent: the tree head of {} events extends the one of {} (history was only appended to); {} proof hashes",
            proven.new.seq,
            proven.old.seq,
            proven.proof.len()
        );
    }
    Ok(())
}

/// The proof from the ledger here, once it is known to be the history NEW was signed
/// over (else the proof would be of another history, and say nothing of NEW).
async fn from_ledger(
    store: &Store,
    old: &Checkpoint,
    new: &Checkpoint,
) -> Result<ConsistencyProof, Failure> {
    let read = |e: writ_store::StoreError| Failure::failed(format!("cannot read the ledger: {e}"));
    let events = store.last_event_seq().await.map_err(read)?;
    if new.seq > events {
        return Err(Failure::failed(format!(
            "consistency check FAILED: the ledger here has {events} events, fewer than the {} NEW was signed over (it was truncated)",
            new.seq
        )));
    }
    if let Ok(Some((size, root))) = new.tree()
        && store.tree_root(size).await.map_err(read)? != root
    {
        return Err(Failure::failed(format!(
            "consistency check FAILED: the ledger here is not the history NEW was signed over: its first {} events have another root (rewritten)",
            new.seq
        )));
    }
    checkpoint::prove_consistency(store, old, new)
        .await
        .map_err(read)
}
