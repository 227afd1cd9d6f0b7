//! The ledger: an append-only, SHA-256 hash-chained list of events.
//!
//! Each event's hash covers a canonical, length-prefixed encoding of every field:
//! sequence number, time, actor, kind, data and the previous hash. So changing,
//! removing or reordering any event breaks the chain at that event.

mod actor;
mod event;
mod hash;
mod kind;
pub mod merkle;
mod record;
mod verify;

pub use actor::{Actor, InvalidActor, SystemActor};
pub use event::{Event, EventFields, RawEvent, StoredEvent, seal};
pub use hash::{GENESIS_HASH, digest_matches, event_digest, event_hash};
pub use kind::EventKind;
pub use record::{LEDGER_RECORD, RECORD_FIELDS, record_of};
pub use verify::{ChainVerifier, LedgerError, LedgerToken, PreparedEvent};
