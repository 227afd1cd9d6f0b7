//! Signed checkpoints — signed tree heads: the ledger proves itself to someone outside
//! its database.
//!
//! A checkpoint is (seq, head hash, the RFC 6962 root of the first `seq` events, time)
//! signed with writ's Ed25519 ledger key. Each is appended to a file (a JSON line) and
//! to the ledger itself (`ledger.checkpoint`, so `[[notify]]` sinks and exports carry it
//! off the host). Whoever keeps a copy and the public key can later prove the ledger
//! still extends every checkpoint: a rewritten or truncated history fails, even when the
//! whole chain and its head were recomputed. The root lets them check one event (an
//! inclusion proof, as evidence documents carry) or that a later head only appended
//! (a consistency proof) without the database.

use std::io::Write as _;
use std::path::Path;

use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use writ_domain::Timestamp;
use writ_domain::ledger::merkle::{self, Hash};
use writ_domain::ledger::{Actor, EventKind, SystemActor};
use writ_store::Store;

use crate::keys::{KeyError, load_or_create};
use crate::{EngineError, ErrorCode};

/// What a signature covers, so no other message signed with the key can pass for one.
const DOMAIN_TAG: &[u8] = b"writ-ledger-checkpoint-v1\0";
/// What a tree head's signature covers (a checkpoint with a Merkle root).
const TREE_HEAD_TAG: &[u8] = b"writ-tree-head-v1\0";
/// Who takes checkpoints, on the ledger.
const CHECKPOINT_ACTOR: Actor = Actor::System(SystemActor::Checkpoint);
/// The name of `writ serve`'s checkpoint task, for supervision and `/healthz`.
pub const CHECKPOINT_TASK_NAME: &str = "checkpointer";

/// writ's ledger signing key. Never shown: `Debug` prints only its public half.
pub struct LedgerKey(SigningKey);

impl std::fmt::Debug for LedgerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LedgerKey(public {})", self.public_hex())
    }
}

impl LedgerKey {
    pub fn load(source: &writ_config::KeySource) -> Result<Self, KeyError> {
        load_or_create(source).map(|seed| Self(SigningKey::from_bytes(&seed)))
    }

    /// The public key, as `writ audit pubkey` prints it (64 hex digits).
    pub fn public_hex(&self) -> String {
        hex::encode(self.0.verifying_key().to_bytes())
    }

    /// Signs a tree head: the ledger had `seq` events, the last with hash `head`, and
    /// the Merkle tree of them has this `root`.
    pub fn sign(&self, seq: i64, head: &str, root: &Hash, at: Timestamp) -> Checkpoint {
        let root = hex::encode(root);
        let signature = self.0.sign(&message(seq, head, Some(&root), at));
        Checkpoint {
            seq,
            head: head.to_string(),
            root: Some(root),
            at,
            key: self.public_hex(),
            signature: hex::encode(signature.to_bytes()),
        }
    }
}

/// The signed message: a tree head's (its texts length-prefixed, so no byte can move
/// from one to the other), or (without a root) a checkpoint's of a writ from before
/// the Merkle tree, which still verify.
fn message(seq: i64, head: &str, root: Option<&str>, at: Timestamp) -> Vec<u8> {
    let Some(root) = root else {
        let mut message = DOMAIN_TAG.to_vec();
        message.extend_from_slice(&seq.to_be_bytes());
        message.extend_from_slice(&at.unix_micros().to_be_bytes());
        message.extend_from_slice(head.as_bytes());
        return message;
    };
    let mut message = TREE_HEAD_TAG.to_vec();
    message.extend_from_slice(&seq.to_be_bytes());
    message.extend_from_slice(&at.unix_micros().to_be_bytes());
    for text in [head, root] {
        let length = u64::try_from(text.len()).unwrap_or(u64::MAX);
        message.extend_from_slice(&length.to_be_bytes());
        message.extend_from_slice(text.as_bytes());
    }
    message
}

/// One signed checkpoint: the ledger had `seq` events, the last with hash `head`, at `at`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    pub seq: i64,
    pub head: String,
    /// The RFC 6962 Merkle tree root of events 1 to `seq` (64 hex digits). Absent only
    /// on checkpoints signed before writ kept the tree.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root: Option<String>,
    pub at: Timestamp,
    /// The public key that signed it (informative: verification uses the key the
    /// verifier trusts, never this one).
    pub key: String,
    /// Ed25519 over a domain tag, `seq`, `at`, `head` and `root`, in hex.
    pub signature: String,
}

/// Why a checkpoint does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    #[error("{0:?} is not an Ed25519 public key (64 hexadecimal digits)")]
    BadPublicKey(String),
    #[error("line {line}: not a checkpoint: {problem}")]
    Malformed { line: usize, problem: String },
    #[error("checkpoint of event {seq}: the signature is not the given key's")]
    BadSignature { seq: i64 },
    #[error("checkpoint of event {seq}: the ledger has only {events} events (it was truncated)")]
    Truncated { seq: i64, events: i64 },
    #[error(
        "checkpoint of event {seq}: the ledger's event {seq} has another hash (its history was rewritten)"
    )]
    Rewritten { seq: i64 },
    #[error(
        "checkpoint of event {seq}: the Merkle tree of the ledger's first {seq} events has another root (its history was rewritten)"
    )]
    TreeMismatch { seq: i64 },
    #[error("checkpoint of event {seq}: its root is not 64 hexadecimal digits")]
    BadRoot { seq: i64 },
}

pub fn parse_public_key(text: &str) -> Result<VerifyingKey, CheckpointError> {
    let bad = || CheckpointError::BadPublicKey(text.chars().take(80).collect());
    let bytes: [u8; 32] = hex::decode(text.trim())
        .ok()
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or_else(bad)?;
    VerifyingKey::from_bytes(&bytes).map_err(|_| bad())
}

impl Checkpoint {
    /// Whether `key` signed exactly this checkpoint.
    pub fn verify_signature(&self, key: &VerifyingKey) -> Result<(), CheckpointError> {
        let bad = || CheckpointError::BadSignature { seq: self.seq };
        let bytes: [u8; 64] = hex::decode(&self.signature)
            .ok()
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or_else(bad)?;
        let signature = ed25519_dalek::Signature::from_bytes(&bytes);
        key.verify_strict(
            &message(self.seq, &self.head, self.root.as_deref(), self.at),
            &signature,
        )
        .map_err(|_| bad())
    }

    /// Its tree: the size and the root, for a checkpoint that has one.
    pub fn tree(&self) -> Result<Option<(u64, Hash)>, CheckpointError> {
        let Some(root) = &self.root else {
            return Ok(None);
        };
        let root = merkle::parse_hash(root).ok_or(CheckpointError::BadRoot { seq: self.seq })?;
        let size =
            u64::try_from(self.seq).map_err(|_| CheckpointError::BadRoot { seq: self.seq })?;
        Ok(Some((size, root)))
    }
}

/// The checkpoints in a file of JSON lines (blank lines skipped).
pub fn parse_checkpoints(text: &str) -> Result<Vec<Checkpoint>, CheckpointError> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(index, line)| {
            serde_json::from_str(line).map_err(|error| CheckpointError::Malformed {
                line: index + 1,
                problem: error.to_string(),
            })
        })
        .collect()
}

/// Checks each checkpoint's signature against `key`, then that the ledger in `store`
/// still holds its event with the hash it signed. Run after the chain itself was
/// verified: then every later event extends that one. Returns how many were checked.
pub async fn check_checkpoints(
    store: &Store,
    checkpoints: &[Checkpoint],
    key: &VerifyingKey,
) -> Result<usize, CheckpointErrorOrStore> {
    let events = store.last_event_seq().await?;
    // Every head's root, from the stored tree extended once (after the signature and
    // the event checks below, which say more precisely what is wrong).
    let mut trees = Vec::new();
    for checkpoint in checkpoints {
        checkpoint.verify_signature(key)?;
        if checkpoint.seq > events {
            return Err(CheckpointError::Truncated {
                seq: checkpoint.seq,
                events,
            }
            .into());
        }
        let hash = store.event_hash(checkpoint.seq).await?;
        if hash.as_deref() != Some(checkpoint.head.as_str()) {
            return Err(CheckpointError::Rewritten {
                seq: checkpoint.seq,
            }
            .into());
        }
        if let Some(tree) = checkpoint.tree()? {
            trees.push((checkpoint.seq, tree));
        }
    }
    let sizes: Vec<u64> = trees.iter().map(|(_, (size, _))| *size).collect();
    let roots = store.tree_roots(&sizes).await?;
    for ((seq, (_, root)), found) in trees.iter().zip(roots) {
        if found != *root {
            return Err(CheckpointError::TreeMismatch { seq: *seq }.into());
        }
    }
    Ok(checkpoints.len())
}

/// The proof that the tree under one signed head extends the tree under an earlier
/// one (RFC 6962 §2.1.2): what `writ audit consistency` prints and checks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyProof {
    pub old: Checkpoint,
    pub new: Checkpoint,
    /// The proof's hashes, in hex.
    pub proof: Vec<String>,
}

/// Why two tree heads are not one history.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConsistencyError {
    #[error("the {which} tree head: {error}")]
    Head {
        which: &'static str,
        error: CheckpointError,
    },
    #[error("the {which} tree head has no Merkle root (it was signed before writ kept the tree)")]
    NoRoot { which: &'static str },
    #[error("the proof holds hashes that are not 64 hexadecimal digits")]
    BadProof,
    #[error(
        "the tree head of {new} events does not extend the one of {old}: {error} (history before event {old} was rewritten, or the ledger was truncated and rebuilt)"
    )]
    NotExtended {
        old: i64,
        new: i64,
        error: merkle::ProofError,
    },
}

impl ConsistencyProof {
    /// Checks both heads' signatures under `key` and the proof between them.
    pub fn verify(&self, key: &VerifyingKey) -> Result<(), ConsistencyError> {
        let tree = |head: &Checkpoint, which: &'static str| {
            head.verify_signature(key)
                .and_then(|()| head.tree())
                .map_err(|error| ConsistencyError::Head { which, error })?
                .ok_or(ConsistencyError::NoRoot { which })
        };
        let (old_size, old_root) = tree(&self.old, "old")?;
        let (new_size, new_root) = tree(&self.new, "new")?;
        let proof: Vec<Hash> = self
            .proof
            .iter()
            .map(|hash| merkle::parse_hash(hash))
            .collect::<Option<_>>()
            .ok_or(ConsistencyError::BadProof)?;
        merkle::verify_consistency(old_size, new_size, &old_root, &new_root, &proof).map_err(
            |error| ConsistencyError::NotExtended {
                old: self.old.seq,
                new: self.new.seq,
                error,
            },
        )
    }
}

/// The consistency proof between two heads, from the ledger in `store`.
pub async fn prove_consistency(
    store: &Store,
    old: &Checkpoint,
    new: &Checkpoint,
) -> Result<ConsistencyProof, writ_store::StoreError> {
    let (old_size, new_size) = (
        u64::try_from(old.seq).unwrap_or(0),
        u64::try_from(new.seq).unwrap_or(0),
    );
    let proof = if old_size <= new_size
        && new_size <= u64::try_from(store.last_event_seq().await?).unwrap_or(0)
    {
        store.consistency_proof(old_size, new_size).await?
    } else {
        Vec::new()
    };
    Ok(ConsistencyProof {
        old: old.clone(),
        new: new.clone(),
        proof: proof.iter().map(hex::encode).collect(),
    })
}

/// A checkpoint that does not hold, or a store that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointErrorOrStore {
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error(transparent)]
    Store(#[from] writ_store::StoreError),
}

/// Takes a checkpoint of the ledger as it stands: appends it to `file`, then records it
/// on the ledger. Unless `always`, nothing is done when the last event is itself a
/// checkpoint (nothing changed since). Returns the checkpoint taken.
pub async fn take_checkpoint(
    store: &Store,
    key: &LedgerKey,
    file: &Path,
    now: Timestamp,
    always: bool,
) -> Result<Option<Checkpoint>, EngineError> {
    // The tree head of the ledger as committed, computed before the write lock is taken
    // (events are final, so it stays true while others append).
    let (seq, head) = store.head().await?;
    if seq == 0 {
        return Ok(None);
    }
    let root = store.tree_root(u64::try_from(seq).unwrap_or(0)).await?;
    let mut tx = store.begin().await?;
    let last = tx.head().0;
    if !always
        && tx.event_kind(last).await?.as_deref() == Some(EventKind::LedgerCheckpoint.as_str())
    {
        return Ok(None);
    }
    let checkpoint = key.sign(seq, &head, &root, now);
    // The file first: a checkpoint of a committed head is true whether or not its own
    // event commits, so the file never lacks one the ledger has.
    append_line(file, &checkpoint).map_err(|error| {
        EngineError::new(
            ErrorCode::CheckpointFile,
            format!("cannot append to {}: {error}", file.display()),
        )
    })?;
    let data = serde_json::to_value(&checkpoint)
        .map_err(|e| EngineError::new(ErrorCode::Checkpoint, e.to_string()))?;
    tx.append(now, &CHECKPOINT_ACTOR, EventKind::LedgerCheckpoint, &data)
        .await?;
    tx.commit().await?;
    tracing::info!(seq, head = %head, "ledger checkpoint signed");
    Ok(Some(checkpoint))
}

fn append_line(file: &Path, checkpoint: &Checkpoint) -> std::io::Result<()> {
    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut line = serde_json::to_string(checkpoint).map_err(std::io::Error::other)?;
    line.push('\n');
    let mut out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)?;
    out.write_all(line.as_bytes())?;
    out.sync_all()
}

impl crate::Engine {
    /// Signs ledger checkpoints with this key (see `checkpoint`).
    #[must_use]
    pub fn with_ledger_key(mut self, key: LedgerKey) -> Self {
        self.ledger_key = Some(std::sync::Arc::new(key));
        self
    }

    /// `writ serve`'s checkpoint task: every `[audit].checkpoint_every`, a checkpoint if
    /// the ledger changed since the last one. Runs until `shutdown` changes.
    pub async fn run_checkpoints(&self, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        let (Some(key), Some(every)) = (
            self.ledger_key.clone(),
            self.config.checkpoints.every_seconds,
        ) else {
            let _ = shutdown.changed().await;
            return;
        };
        let every = std::time::Duration::from_secs(u64::try_from(every.max(1)).unwrap_or(60));
        loop {
            self.health.tick(CHECKPOINT_TASK_NAME);
            tokio::select! {
                () = tokio::time::sleep(every) => {}
                _ = shutdown.changed() => return,
            }
            // One node signs checkpoints for all.
            if !self.leads(CHECKPOINT_TASK_NAME).await {
                continue;
            }
            let file = &self.config.checkpoints.file;
            if let Err(error) =
                take_checkpoint(&self.store, &key, file, self.clock.now(), false).await
            {
                tracing::error!(%error, "ledger checkpoint not taken; trying again next time");
                metrics::counter!(crate::metrics_names::CHECKPOINT_FAILURES).increment(1);
            }
        }
    }

    /// How long the checkpoint task may go without ticking before `/healthz` worries.
    pub fn checkpoint_tick_deadline(&self) -> Option<std::time::Duration> {
        self.config
            .checkpoints
            .every_seconds
            .map(|every| std::time::Duration::from_secs(u64::try_from(every).unwrap_or(60) + 120))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> LedgerKey {
        LedgerKey(SigningKey::from_bytes(&[byte; 32]))
    }

    #[test]
    fn a_checkpoint_verifies_only_under_its_key_and_unchanged() {
        let at = Timestamp::from_unix_micros(1_800_000_000_000_000);
        let signed = key(1).sign(42, "ab", &[3u8; 32], at);
        let public = parse_public_key(&key(1).public_hex()).expect("key");
        signed.verify_signature(&public).expect("verifies");
        let other = parse_public_key(&key(2).public_hex()).expect("key");
        assert!(signed.verify_signature(&other).is_err(), "another key");
        for forged in [
            Checkpoint {
                seq: 43,
                ..signed.clone()
            },
            Checkpoint {
                head: "ac".into(),
                ..signed.clone()
            },
            Checkpoint {
                at: at.plus_seconds(1),
                ..signed.clone()
            },
            Checkpoint {
                root: Some(hex::encode([4u8; 32])),
                ..signed.clone()
            },
            // Without its root it is checked as an old checkpoint, under another tag.
            Checkpoint {
                root: None,
                ..signed.clone()
            },
            Checkpoint {
                signature: "00".repeat(64),
                ..signed.clone()
            },
            Checkpoint {
                signature: "zz".into(),
                ..signed.clone()
            },
        ] {
            assert!(forged.verify_signature(&public).is_err(), "{forged:?}");
        }
        assert!(!format!("{:?}", key(1)).contains(&hex::encode([1u8; 32])));
        assert_eq!(signed.tree(), Ok(Some((42, [3u8; 32]))));
    }

    #[test]
    fn checkpoints_signed_before_the_tree_still_verify() {
        let at = Timestamp::from_unix_micros(1_800_000_000_000_000);
        let old = Checkpoint {
            seq: 7,
            head: "ab".into(),
            root: None,
            at,
            key: key(1).public_hex(),
            signature: hex::encode(key(1).0.sign(&message(7, "ab", None, at)).to_bytes()),
        };
        let public = parse_public_key(&key(1).public_hex()).expect("key");
        old.verify_signature(&public).expect("verifies");
        assert_eq!(old.tree(), Ok(None));
        assert!(!serde_json::to_string(&old).expect("json").contains("root"));
    }

    #[test]
    fn checkpoint_files_and_keys_are_read_strictly() {
        let line = serde_json::to_string(&key(1).sign(
            1,
            "ab",
            &[0u8; 32],
            Timestamp::from_unix_micros(0),
        ))
        .expect("json");
        assert_eq!(
            parse_checkpoints(&format!("{line}\n\n{line}\n")).map(|c| c.len()),
            Ok(2)
        );
        assert!(matches!(
            parse_checkpoints(&format!("{line}\nnot json\n")),
            Err(CheckpointError::Malformed { line: 2, .. })
        ));
        for bad in ["", "00", &"zz".repeat(32), &"ab".repeat(33)] {
            assert!(parse_public_key(bad).is_err(), "{bad}");
        }
    }
}
