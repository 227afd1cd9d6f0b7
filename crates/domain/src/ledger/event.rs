use serde::{Deserialize, Serialize};

use super::hash::{digest_matches, event_digest, event_hash};
use super::{Actor, EventKind, LedgerError};
use crate::Timestamp;

/// An event as stored: `data` is kept as the exact JSON text that was hashed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    pub seq: i64,
    pub at: Timestamp,
    pub actor: Actor,
    pub kind: EventKind,
    pub data: String,
    pub prev_hash: String,
    pub hash: String,
}

/// An event as the API and exports show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Event {
    pub seq: i64,
    pub at: Timestamp,
    /// An identity's name, or `writ:<name>` for writ itself (`writ:scheduler`,
    /// `writ:itsm`, `writ:reconcile`, `writ:webhook`, `writ:checkpoint`, `writ:cli`).
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub actor: Actor,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub kind: EventKind,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub data: serde_json::Value,
    pub prev_hash: String,
    pub hash: String,
}

/// An event's stored text, owned: what a row holds, before it is known to be writ's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawEvent {
    pub seq: i64,
    pub at: Timestamp,
    pub actor: String,
    pub kind: String,
    pub data: String,
    pub prev_hash: String,
    pub hash: String,
}

impl RawEvent {
    pub fn fields(&self) -> EventFields<'_> {
        EventFields {
            seq: self.seq,
            at: self.at,
            actor: &self.actor,
            kind: &self.kind,
            data: &self.data,
            prev_hash: &self.prev_hash,
            hash: &self.hash,
        }
    }
}

impl StoredEvent {
    /// Its stored text.
    pub fn to_raw(&self) -> RawEvent {
        RawEvent {
            seq: self.seq,
            at: self.at,
            actor: self.actor.to_string(),
            kind: self.kind.to_string(),
            data: self.data.clone(),
            prev_hash: self.prev_hash.clone(),
            hash: self.hash.clone(),
        }
    }

    /// Its fields, borrowed.
    pub fn fields(&self) -> EventFields<'_> {
        EventFields {
            seq: self.seq,
            at: self.at,
            actor: self.actor.as_str(),
            kind: self.kind.as_str(),
            data: &self.data,
            prev_hash: &self.prev_hash,
            hash: &self.hash,
        }
    }

    /// The event with its data parsed. Stored data that is not JSON was altered: that is
    /// an error naming the event, never an event with `null` data.
    pub fn to_event(&self) -> Result<Event, LedgerError> {
        let data = serde_json::from_str(&self.data).map_err(|e| LedgerError::BadData {
            seq: self.seq,
            problem: e.to_string(),
        })?;
        Ok(Event {
            seq: self.seq,
            at: self.at,
            actor: self.actor.clone(),
            kind: self.kind,
            data,
            prev_hash: self.prev_hash.clone(),
            hash: self.hash.clone(),
        })
    }
}

/// The next link of the chain after `head`.
pub fn seal(
    prev_seq: i64,
    prev_hash: &str,
    at: Timestamp,
    actor: &Actor,
    kind: EventKind,
    data: &serde_json::Value,
) -> StoredEvent {
    let seq = prev_seq + 1;
    let data = data.to_string();
    let hash = event_hash(seq, at, actor.as_str(), kind.as_str(), &data, prev_hash);
    StoredEvent {
        seq,
        at,
        actor: actor.clone(),
        kind,
        data,
        prev_hash: prev_hash.to_string(),
        hash,
    }
}

/// An event's stored fields, borrowed from wherever they were read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventFields<'a> {
    pub seq: i64,
    pub at: Timestamp,
    pub actor: &'a str,
    pub kind: &'a str,
    pub data: &'a str,
    pub prev_hash: &'a str,
    pub hash: &'a str,
}

impl EventFields<'_> {
    /// Whether the stored hash is the one these fields hash to.
    pub fn hash_matches(self) -> bool {
        let digest = event_digest(
            self.seq,
            self.at,
            self.actor,
            self.kind,
            self.data,
            self.prev_hash,
        );
        digest_matches(&digest, self.hash)
    }

    /// The event, typed. An actor or a kind writ does not know was not written by writ:
    /// an error naming the event.
    pub fn to_stored(self) -> Result<StoredEvent, LedgerError> {
        let actor =
            self.actor
                .parse()
                .map_err(|e: super::InvalidActor| LedgerError::BadReplay {
                    seq: self.seq,
                    problem: e.to_string(),
                })?;
        let kind = EventKind::parse(self.kind).ok_or_else(|| LedgerError::BadReplay {
            seq: self.seq,
            problem: format!("unknown event kind {:?}", self.kind),
        })?;
        Ok(StoredEvent {
            seq: self.seq,
            at: self.at,
            actor,
            kind,
            data: self.data.to_string(),
            prev_hash: self.prev_hash.to_string(),
            hash: self.hash.to_string(),
        })
    }
}
