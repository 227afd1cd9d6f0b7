use sha2::{Digest, Sha256};

use crate::Timestamp;

/// The hash that precedes the first event.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

const DOMAIN_TAG: &[u8] = b"writ-ledger-v1\0";

fn put_bytes(hasher: &mut Sha256, bytes: &[u8]) {
    let length = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
    hasher.update(length.to_be_bytes());
    hasher.update(bytes);
}

/// The hash of an event with these fields, as lowercase hex.
pub fn event_hash(
    seq: i64,
    at: Timestamp,
    actor: &str,
    kind: &str,
    data: &str,
    prev_hash: &str,
) -> String {
    hex::encode(event_digest(seq, at, actor, kind, data, prev_hash))
}

/// The SHA-256 digest behind `event_hash`, as bytes.
pub fn event_digest(
    seq: i64,
    at: Timestamp,
    actor: &str,
    kind: &str,
    data: &str,
    prev_hash: &str,
) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(DOMAIN_TAG);
    hasher.update(seq.to_be_bytes());
    hasher.update(at.unix_micros().to_be_bytes());
    put_bytes(&mut hasher, actor.as_bytes());
    put_bytes(&mut hasher, kind.as_bytes());
    put_bytes(&mut hasher, data.as_bytes());
    put_bytes(&mut hasher, prev_hash.as_bytes());
    hasher.finalize().into()
}

/// Whether `hash` is `digest` in lowercase hex (as `event_hash` writes it), without
/// allocating: verification compares one per event.
pub fn digest_matches(digest: &[u8; 32], hash: &str) -> bool {
    let mut hex = [0u8; 64];
    hex::encode_to_slice(digest, &mut hex).is_ok() && hex.as_slice() == hash.as_bytes()
}
