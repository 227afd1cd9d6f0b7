//! Which record an event is about, so one record's history is an index read
//! (the `record` column of `events`; a grant's timeline, its evidence).

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

/// The id of the record `data` carries, if it carries one (see `RECORD_FIELDS`).
pub fn record_of(data: &serde_json::Value) -> Option<String> {
    RECORD_FIELDS
        .iter()
        .find_map(|field| data.get(field)?.get("id")?.as_str().map(str::to_string))
}

#[cfg(test)]
mod tests {
    use super::record_of;
    use serde_json::json;

    #[test]
    fn the_most_specific_record_names_the_event() {
        assert_eq!(
            record_of(&json!({"request": {"id": "r"}, "grant": {"id": "g"}})).as_deref(),
            Some("g")
        );
        assert_eq!(
            record_of(&json!({"request": {"id": "r"}})).as_deref(),
            Some("r")
        );
        assert_eq!(
            record_of(&json!({"finding": {"id": "f"}, "change": {}})).as_deref(),
            Some("f")
        );
        assert_eq!(record_of(&json!({"token_id": "t"})), None);
        // Not an id: no record rather than a wrong one.
        assert_eq!(record_of(&json!({"grant": 7})), None);
        assert_eq!(
            record_of(&json!({"grant": {"id": 7}, "request": {"id": "r"}})).as_deref(),
            Some("r")
        );
    }
}
