//! A ticket as writ needs it, whatever system it came from.

use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime};
use writ_domain::Timestamp;

/// What writ read from the ticketing system's API (never from a webhook body).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TicketInfo {
    /// The key people use: Jira `ITSM-42`, ServiceNow `RITM0010001`.
    pub key: String,
    /// The id the API uses for updates: Jira issue id, ServiceNow `sys_id`.
    pub id: String,
    /// Jira status name, ServiceNow state value.
    pub state: String,
    /// Whether the ticket is resolved/closed (Jira status category `done`, ServiceNow `active` false).
    pub closed: bool,
    /// Jira issue type name, ServiceNow table (`sc_req_item`).
    pub ticket_type: String,
    pub summary: String,
    /// The ITSM's user id of whoever asked (Jira reporter accountId, ServiceNow `opened_by`).
    pub requester: Option<String>,
    /// The ITSM's user id of the assignee, if any (ServiceNow: `requested_for`, for whom it was opened).
    pub assignee: Option<String>,
    /// The ITSM's user id of whom the ticket is for: who gets the access (ServiceNow
    /// `requested_for`, or the field `fields.beneficiary` names). `None` on Jira without
    /// that field: the ticket is then for its reporter, who is its requester.
    pub beneficiary: Option<String>,
    /// The ticket's own approval status, where the system keeps one (ServiceNow
    /// `approval`).
    pub approval: Option<String>,
    /// The mapped fields (see `TicketFields`), as text.
    pub entitlement: Option<String>,
    pub subject: Option<String>,
    pub duration: Option<String>,
    pub justification: Option<String>,
    pub window_end: Option<String>,
}

impl TicketInfo {
    /// Fills the mapped fields, reading each field id with `read`.
    pub fn with_mapped(
        mut self,
        mapping: &writ_config::TicketFields,
        read: impl Fn(&str) -> Option<String>,
    ) -> Self {
        let mapped = |id: Option<&String>| id.and_then(|id| read(id));
        self.entitlement = mapped(Some(&mapping.entitlement));
        self.subject = mapped(mapping.subject.as_ref());
        if mapping.beneficiary.is_some() {
            self.beneficiary = mapped(mapping.beneficiary.as_ref());
        }
        self.duration = mapped(mapping.duration.as_ref());
        self.justification = mapped(mapping.justification.as_ref());
        self.window_end = mapped(mapping.window_end.as_ref());
        self
    }
}

/// A field's value as text: strings as they are, numbers printed, select options by
/// value, users by account id, references by sys_id, Atlassian documents by their text.
pub fn field_text(value: &Value) -> Option<String> {
    let text = match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Object(object) if object.get("type").and_then(Value::as_str) == Some("doc") => {
            let mut out = String::new();
            adf_text(value, &mut out);
            out
        }
        Value::Object(object) => ["value", "accountId", "name", "key"]
            .iter()
            .find_map(|key| object.get(*key).and_then(field_text))?,
        _ => return None,
    };
    let text = text.trim().to_string();
    (!text.is_empty()).then_some(text)
}

/// A date-time as ticketing systems write them: RFC 3339, Jira's
/// `2026-11-20T09:15:02.123+0000`, or ServiceNow's `2026-11-20 09:15:02` (UTC).
pub fn parse_time(text: &str) -> Option<Timestamp> {
    let text = text.trim();
    if let Ok(at) = OffsetDateTime::parse(text, &Rfc3339) {
        return Some(Timestamp::from_offset_date_time(at));
    }
    let jira = format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond][offset_hour sign:mandatory][offset_minute]"
    );
    if let Ok(at) = OffsetDateTime::parse(text, jira) {
        return Some(Timestamp::from_offset_date_time(at));
    }
    let servicenow = format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    PrimitiveDateTime::parse(text, servicenow)
        .ok()
        .map(|at| Timestamp::from_offset_date_time(at.assume_utc()))
}

fn adf_text(node: &Value, out: &mut String) {
    if let Some(text) = node.get("text").and_then(Value::as_str) {
        out.push_str(text);
    }
    if let Some(children) = node.get("content").and_then(Value::as_array) {
        for child in children {
            adf_text(child, out);
        }
        if node.get("type").and_then(Value::as_str) == Some("paragraph") {
            out.push('\n');
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn field_values_of_every_shape_become_text() {
        assert_eq!(field_text(&json!("pg/read")), Some("pg/read".into()));
        assert_eq!(field_text(&json!(3600)), Some("3600".into()));
        assert_eq!(
            field_text(&json!({"self": "x", "value": "pg/read", "id": "10100"})),
            Some("pg/read".into())
        );
        assert_eq!(
            field_text(&json!({"accountId": "5b10", "displayName": "Bob"})),
            Some("5b10".into())
        );
        assert_eq!(
            field_text(&json!({"link": "https://x/api/now/table/sys_user/62", "value": "62"})),
            Some("62".into())
        );
        let adf = json!({"type": "doc", "version": 1, "content": [
            {"type": "paragraph", "content": [{"type": "text", "text": "quarterly "}, {"type": "text", "text": "numbers"}]}]});
        assert_eq!(field_text(&adf), Some("quarterly numbers".into()));
        assert_eq!(field_text(&json!(null)), None);
        assert_eq!(
            field_text(&json!("")),
            None,
            "ServiceNow's empty fields are empty strings"
        );
    }

    #[test]
    fn times_in_each_systems_format() {
        let expected = Timestamp::parse_rfc3339("2026-11-20T09:15:02Z").ok();
        assert_eq!(parse_time("2026-11-20T09:15:02Z"), expected);
        assert_eq!(parse_time("2026-11-20T10:15:02.000+0100"), expected);
        assert_eq!(parse_time("2026-11-20 09:15:02"), expected);
        assert_eq!(parse_time("next tuesday"), None);
    }
}
