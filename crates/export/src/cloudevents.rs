//! Ledger events as CloudEvents 1.0 (github.com/cloudevents/spec, v1.0.2), structured
//! mode: the whole envelope is the body, `Content-Type: application/cloudevents+json`.

use serde_json::{Value, json};
use writ_domain::ledger::Event;

pub const CONTENT_TYPE: &str = "application/cloudevents+json";

/// The CloudEvent for a ledger event. `source` identifies the writ deployment (a URI
/// reference); `id` is the event's hash, unique per source, so receivers can drop
/// repeats (delivery is at least once).
pub fn to_cloudevent(event: &Event, source: &str) -> Value {
    let subject = [
        ("request", "request"),
        ("grant", "grant"),
        ("activation", "break-glass"),
    ]
    .iter()
    .find_map(|(record, path)| {
        event.data[record]["id"]
            .as_str()
            .map(|id| format!("{path}/{id}"))
    })
    .or_else(|| {
        event.data["activation_id"]
            .as_str()
            .map(|id| format!("break-glass/{id}"))
    })
    .or_else(|| {
        event.data["itsm"]
            .as_str()
            .map(|itsm| format!("itsm/{itsm}"))
    })
    .or_else(|| {
        event.data["identity"]
            .as_str()
            .map(|who| format!("identity/{who}"))
    });
    let mut envelope = json!({
        "specversion": "1.0",
        "id": event.hash,
        "source": source,
        "type": format!("dev.writ.{}.v1", event.kind),
        "time": event.at.to_rfc3339(),
        "datacontenttype": "application/json",
        // Extension attribute: the ledger's sequence number, for ordering and resuming.
        "sequence": event.seq.to_string(),
        "data": event,
    });
    if let Some(subject) = subject {
        envelope["subject"] = json!(subject);
    }
    envelope
}

#[cfg(test)]
mod tests {
    use super::*;
    use writ_domain::Timestamp;

    #[test]
    fn required_attributes_and_the_whole_event_as_data() {
        let event = Event {
            seq: 12,
            at: Timestamp::from_unix_micros(1_795_000_000_000_000),
            actor: writ_domain::ledger::SystemActor::Scheduler.into(),
            kind: writ_domain::ledger::EventKind::GrantRevoked,
            data: json!({ "grant": { "id": "g-1" }, "target_access": "removed" }),
            prev_hash: "aa".into(),
            hash: "bb".into(),
        };
        let envelope = to_cloudevent(&event, "urn:writ:prod");
        for key in ["specversion", "id", "source", "type"] {
            assert!(envelope[key].is_string(), "{key} is required");
        }
        assert_eq!(envelope["specversion"], "1.0");
        assert_eq!(envelope["type"], "dev.writ.grant.revoked.v1");
        assert_eq!(envelope["subject"], "grant/g-1");
        assert_eq!(envelope["sequence"], "12");
        assert_eq!(envelope["data"]["hash"], "bb");
        assert_eq!(envelope["data"]["data"]["target_access"], "removed");
        assert!(envelope["time"].as_str().is_some_and(|t| t.ends_with('Z')));
    }
}
