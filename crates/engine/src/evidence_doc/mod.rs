//! Evidence documents: one grant's story for an auditor, provable without writ's
//! database.
//!
//! A document holds the grant's statements (`story`), every ledger event they cite, an
//! RFC 6962 inclusion proof of each event against a signed tree head (a checkpoint with
//! a Merkle root), and that head. `verify` checks it holding nothing but the document
//! and the public key: each event's hash from its fields, each proof to the head's
//! root, the head's signature, the statements told again from the events, and the
//! document's own bytes (Markdown and JSON alike are exactly what writ renders from
//! what it proves).

mod markdown;
mod story;

use std::path::Path;

use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};
use writ_domain::ledger::merkle::{self, Hash};
use writ_domain::ledger::{Event, EventKind, event_hash};
use writ_domain::{GrantId, Timestamp};
use writ_store::Store;

pub use markdown::render as render_markdown;
pub use story::{Citation, Statement, StoryError, story};

use crate::checkpoint::{Checkpoint, LedgerKey, take_checkpoint};
use crate::{Caller, Engine, EngineError, ErrorCode};

/// What a document says it is.
pub const FORMAT: &str = "writ-evidence/1";
/// The most events one grant's document holds (a counted lease's uses are events).
pub const EVIDENCE_EVENTS_MAX: i64 = 100_000;

/// One grant's evidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvidenceDocument {
    pub format: String,
    pub grant: GrantId,
    pub statements: Vec<Statement>,
    pub events: Vec<ProvenEvent>,
    /// The signed tree head every proof leads to.
    pub tree_head: Checkpoint,
}

/// A ledger event exactly as stored (`data` as JSON: written compactly, as writ does,
/// it is the text that was hashed), with its inclusion proof against the document's
/// tree head.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProvenEvent {
    pub seq: i64,
    pub at: Timestamp,
    pub actor: String,
    pub kind: String,
    pub data: serde_json::Value,
    pub prev_hash: String,
    pub hash: String,
    /// The hashes of the RFC 6962 inclusion proof of leaf `seq - 1`, nearest first.
    pub proof: Vec<String>,
}

impl ProvenEvent {
    fn to_event(&self) -> Result<Event, String> {
        Ok(Event {
            seq: self.seq,
            at: self.at,
            actor: self.actor.parse().map_err(|e| format!("{e}"))?,
            kind: EventKind::parse(&self.kind)
                .ok_or_else(|| format!("unknown event kind {:?}", self.kind))?,
            data: self.data.clone(),
            prev_hash: self.prev_hash.clone(),
            hash: self.hash.clone(),
        })
    }
}

impl EvidenceDocument {
    /// The document as JSON, exactly as writ writes it (and `verify` expects it).
    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).unwrap_or_default();
        text.push('\n');
        text
    }
}

/// Finds and proves the events of grant `id` into a document against the newest signed
/// tree head that covers them, signing a new one (appended to `checkpoint_file` and the
/// ledger, like `writ audit checkpoint`) when none does yet.
pub async fn build(
    store: &Store,
    key: &LedgerKey,
    checkpoint_file: &Path,
    now: Timestamp,
    id: GrantId,
) -> Result<EvidenceDocument, EngineError> {
    let grant = store
        .grant(id)
        .await?
        .ok_or_else(|| EngineError::not_found("grant", id))?;
    let mut records = vec![grant.id.to_string(), grant.request_id.to_string()];
    let mut stored = store.events_about(&records, EVIDENCE_EVENTS_MAX).await?;
    // Extensions are requests of their own: their events too.
    let extensions: Vec<String> = stored
        .iter()
        .filter(|e| e.kind == EventKind::GrantRescheduled)
        .filter_map(|e| serde_json::from_str::<serde_json::Value>(&e.data).ok())
        .filter_map(|data| data.get("extended_by")?.as_str().map(str::to_string))
        .collect();
    if !extensions.is_empty() {
        records.extend(extensions);
        stored = store.events_about(&records, EVIDENCE_EVENTS_MAX).await?;
    }
    if stored.len() as i64 >= EVIDENCE_EVENTS_MAX {
        return Err(EngineError::new(
            ErrorCode::EvidenceTooLarge,
            format!(
                "grant {id} has {EVIDENCE_EVENTS_MAX} events or more: too many for one document"
            ),
        ));
    }
    let events: Vec<Event> = stored
        .iter()
        .map(|e| e.to_event().map_err(EngineError::from))
        .collect::<Result<_, _>>()?;
    let statements = story(id, &events)
        .map_err(|e| EngineError::new(ErrorCode::Evidence, format!("grant {id}: {e}")))?;
    let last = events.last().map_or(0, |e| e.seq);
    let tree_head = covering_tree_head(store, key, checkpoint_file, now, last).await?;
    let size = u64::try_from(tree_head.seq).unwrap_or(0);
    let paths: Vec<Vec<std::ops::Range<u64>>> = events
        .iter()
        .map(|e| merkle::inclusion_path(u64::try_from(e.seq - 1).unwrap_or(0), size))
        .collect();
    let all: Vec<std::ops::Range<u64>> = paths.iter().flatten().cloned().collect();
    let mut hashes = store.tree_hashes(&all, size).await?.into_iter();
    let events = stored
        .iter()
        .zip(&paths)
        .map(|(stored, path)| {
            let proof = hashes.by_ref().take(path.len()).map(hex::encode).collect();
            let data = serde_json::from_str(&stored.data).map_err(|e| {
                EngineError::new(ErrorCode::Evidence, format!("event {}: {e}", stored.seq))
            })?;
            Ok(ProvenEvent {
                seq: stored.seq,
                at: stored.at,
                actor: stored.actor.to_string(),
                kind: stored.kind.to_string(),
                data,
                prev_hash: stored.prev_hash.clone(),
                hash: stored.hash.clone(),
                proof,
            })
        })
        .collect::<Result<_, EngineError>>()?;
    Ok(EvidenceDocument {
        format: FORMAT.to_string(),
        grant: id,
        statements,
        events,
        tree_head,
    })
}

/// The newest signed tree head covering event `seq`, signed now if there is none.
async fn covering_tree_head(
    store: &Store,
    key: &LedgerKey,
    checkpoint_file: &Path,
    now: Timestamp,
    seq: i64,
) -> Result<Checkpoint, EngineError> {
    if let Some(event) = store.latest_checkpoint().await?
        && let Ok(head) = serde_json::from_str::<Checkpoint>(&event.data)
        && head.root.is_some()
        && head.seq >= seq
    {
        return Ok(head);
    }
    take_checkpoint(store, key, checkpoint_file, now, true)
        .await?
        .filter(|head| head.seq >= seq)
        .ok_or_else(|| {
            EngineError::new(
                ErrorCode::Evidence,
                format!("no tree head covers event {seq}"),
            )
        })
}

impl Engine {
    /// The evidence document of a grant the caller may read (as its timeline).
    pub async fn evidence_document(
        &self,
        caller: &Caller,
        id: GrantId,
    ) -> Result<EvidenceDocument, EngineError> {
        self.visible_grant(caller, id).await?;
        let key = self.ledger_key.clone().ok_or_else(|| {
            EngineError::new(
                ErrorCode::Evidence,
                "this writ has no ledger key to sign a tree head with",
            )
        })?;
        build(
            &self.store,
            &key,
            &self.config.checkpoints.file,
            self.clock.now(),
            id,
        )
        .await
    }
}

/// What does not hold in a document, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Where: `document`, `tree head`, `event 12`, `statement approvals`.
    pub at: String,
    pub problem: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.at, self.problem)
    }
}

fn problem(at: impl Into<String>, problem: impl Into<String>) -> Problem {
    Problem {
        at: at.into(),
        problem: problem.into(),
    }
}

/// What a document proves once verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub grant: GrantId,
    pub events: usize,
    pub tree_size: i64,
    pub root: String,
}

/// Verifies a document as written (Markdown or JSON, told apart by its first
/// character) with nothing but `key`. Every problem found is named.
pub fn verify(text: &str, key: &VerifyingKey) -> Result<Verified, Vec<Problem>> {
    let (document, rendered) = if text.trim_start().starts_with('{') {
        let document: EvidenceDocument = serde_json::from_str(text).map_err(|e| {
            vec![problem(
                "document",
                format!("not an evidence document: {e}"),
            )]
        })?;
        let rendered = document.to_json();
        (document, rendered)
    } else {
        let document = markdown::embedded(text).map_err(|e| vec![problem("document", e)])?;
        let rendered = markdown::render(&document);
        (document, rendered)
    };
    let mut problems = verify_document(&document, key);
    if problems.is_empty()
        && let Some(line) = first_different_line(text, &rendered)
    {
        problems.push(problem(
            "document",
            format!("line {line} is not what the proven events say (the text was changed)"),
        ));
    }
    if problems.is_empty() {
        Ok(Verified {
            grant: document.grant,
            events: document.events.len(),
            tree_size: document.tree_head.seq,
            root: document.tree_head.root.unwrap_or_default(),
        })
    } else {
        Err(problems)
    }
}

fn first_different_line(text: &str, expected: &str) -> Option<usize> {
    if text == expected {
        return None;
    }
    let mut lines = text.split('\n').zip(expected.split('\n'));
    let same = lines.by_ref().take_while(|(a, b)| a == b).count();
    Some(same + 1)
}

/// The checks that need only the parsed document.
fn verify_document(document: &EvidenceDocument, key: &VerifyingKey) -> Vec<Problem> {
    let mut problems = Vec::new();
    if document.format != FORMAT {
        problems.push(problem(
            "document",
            format!("format {:?} is not {FORMAT}", document.format),
        ));
    }
    let head = &document.tree_head;
    if let Err(error) = head.verify_signature(key) {
        problems.push(problem("tree head", error.to_string()));
    } else if head.key != hex::encode(key.to_bytes()) {
        // Not signed, but part of the document: it must say what is true.
        problems.push(problem(
            "tree head",
            format!("it names key {}, not the one that signed it", head.key),
        ));
    }
    let tree = match head.tree() {
        Ok(Some(tree)) => Some(tree),
        Ok(None) => {
            problems.push(problem(
                "tree head",
                "it has no Merkle root to prove against",
            ));
            None
        }
        Err(error) => {
            problems.push(problem("tree head", error.to_string()));
            None
        }
    };
    let mut events = Vec::with_capacity(document.events.len());
    for proven in &document.events {
        let at = format!("event {}", proven.seq);
        let recomputed = event_hash(
            proven.seq,
            proven.at,
            &proven.actor,
            &proven.kind,
            &proven.data.to_string(),
            &proven.prev_hash,
        );
        if recomputed != proven.hash {
            problems.push(problem(
                &at,
                "its hash does not match its contents (the event was changed)",
            ));
        }
        if let Some((size, root)) = tree {
            match proof_of(proven) {
                Some(proof) => {
                    let leaf = merkle::event_leaf(&proven.hash).unwrap_or([0; 32]);
                    let index = u64::try_from(proven.seq - 1).unwrap_or(u64::MAX);
                    if let Err(error) = merkle::verify_inclusion(index, size, &leaf, &proof, &root)
                    {
                        problems.push(problem(
                            &at,
                            format!(
                                "its inclusion proof does not hold against the tree head: {error}"
                            ),
                        ));
                    }
                }
                None => problems.push(problem(
                    &at,
                    "its proof is not a list of 64-hex-digit hashes",
                )),
            }
        }
        match proven.to_event() {
            Ok(event) => events.push(event),
            Err(error) => problems.push(problem(&at, error)),
        }
    }
    if !problems.is_empty() {
        return problems;
    }
    match story(document.grant, &events) {
        Ok(told) => {
            for (index, expected) in told.iter().enumerate() {
                match document.statements.get(index) {
                    Some(found) if found == expected => {}
                    Some(found) => problems.push(problem(
                        format!("statement {}", found.topic),
                        format!(
                            "it does not follow from the events, which say: {} — {}",
                            expected.topic, expected.text
                        ),
                    )),
                    None => problems.push(problem(
                        format!("statement {}", expected.topic),
                        "it is missing",
                    )),
                }
            }
            if document.statements.len() > told.len() {
                problems.push(problem(
                    "statements",
                    format!(
                        "{} more than the events tell",
                        document.statements.len() - told.len()
                    ),
                ));
            }
        }
        Err(error) => problems.push(problem("events", error.to_string())),
    }
    problems
}

fn proof_of(event: &ProvenEvent) -> Option<Vec<Hash>> {
    event
        .proof
        .iter()
        .map(|hash| merkle::parse_hash(hash))
        .collect()
}
