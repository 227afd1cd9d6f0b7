//! Which record an event is about, so one record's history is an index read
//! (the `record` column of `events`; a grant's timeline, its evidence).

use super::EventKind;

/// The records an event may carry, most specific first: an event that carries a
/// request and the grant it became (`request.approved`) belongs to the grant's story,
/// which is read together with its request's.
pub const RECORD_FIELDS: [&str; 6] = [
    "grant",
    "request",
    "finding",
    "activation",
    "review_item",
    "campaign",
];

/// What a checkpoint is about: the ledger itself (so the latest is an index read too).
pub const LEDGER_RECORD: &str = "ledger";

/// The record an event of `kind` with `data` is about: the ledger for a checkpoint,
/// else the id of the record it carries, if any (see `RECORD_FIELDS`).
pub fn record_of(kind: EventKind, data: &serde_json::Value) -> Option<String> {
    if kind == EventKind::LedgerCheckpoint {
        return Some(LEDGER_RECORD.to_string());
    }
    RECORD_FIELDS
        .iter()
        .find_map(|field| data.get(field)?.get("id")?.as_str().map(str::to_string))
}

#[cfg(test)]
mod tests {
    use super::{EventKind, record_of};
    use serde_json::json;

    fn record(data: &serde_json::Value) -> Option<String> {
        record_of(EventKind::GrantRevoked, data)
    }

    #[test]
    fn the_most_specific_record_names_the_event() {
        assert_eq!(
            record(&json!({"request": {"id": "r"}, "grant": {"id": "g"}})).as_deref(),
            Some("g")
        );
        assert_eq!(
            record(&json!({"request": {"id": "r"}})).as_deref(),
            Some("r")
        );
        assert_eq!(
            record(&json!({"finding": {"id": "f"}, "change": {}})).as_deref(),
            Some("f")
        );
        assert_eq!(record(&json!({"token_id": "t"})), None);
        assert_eq!(
            record_of(EventKind::LedgerCheckpoint, &json!({"seq": 1})).as_deref(),
            Some("ledger")
        );
        // Not an id: no record rather than a wrong one.
        assert_eq!(record(&json!({"grant": 7})), None);
        assert_eq!(
            record(&json!({"grant": {"id": 7}, "request": {"id": "r"}})).as_deref(),
            Some("r")
        );
    }
}
