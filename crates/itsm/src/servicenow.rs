//! ServiceNow Table API (docs.servicenow.com, "Table API"): `GET
//! /api/now/table/sc_req_item?sysparm_query=number=<RITM>` answers `{"result": [...]}`
//! where every value is a string, empty fields are `""`, and references are plain
//! sys_ids with `sysparm_exclude_reference_link=true`. Catalog variables are read by
//! dot-walking (`variables.duration`) in `sysparm_fields`. Writes answer 200 even when
//! an ACL made the instance drop a field, so each one is checked: the echoed record for
//! ordinary fields, `sys_journal_field` for work notes (which never read back).

use async_trait::async_trait;
use reqwest::Method;
use serde_json::{Value, json};
use writ_config::{Closure, Itsm};

use crate::ticket::{TicketInfo, field_text};
use crate::{Client, ItsmError, NewIncident, TicketSystem};

/// Requested items: what a catalog request for access creates.
const TABLE: &str = "sc_req_item";
/// Catalog tasks: the fulfilment steps of an item, which a flow may close it by.
const TASK_TABLE: &str = "sc_task";
/// Journal entries (work notes, comments) of every record.
const JOURNAL_TABLE: &str = "sys_journal_field";
/// How many of an item's latest work notes writ looks through for its own.
const JOURNAL_LOOKBACK: usize = 20;

/// Whether the instance shows `written` as writ wrote it: the same text but for line
/// endings (a browser-facing instance may store `\r\n`) and surrounding blanks.
fn same_text(shown: &str, written: &str) -> bool {
    shown.replace("\r\n", "\n").trim() == written.replace("\r\n", "\n").trim()
}

pub struct ServiceNow {
    client: Client,
}

impl ServiceNow {
    pub fn new(config: &Itsm) -> Result<Self, ItsmError> {
        Ok(Self {
            client: Client::new(config)?,
        })
    }

    /// `PATCH /api/now/table/{table}/{sys_id}`: the record as it is after the write,
    /// with `fields`.
    async fn patch(
        &self,
        table: &str,
        key: &str,
        sys_id: &str,
        body: &Value,
        fields: &str,
    ) -> Result<Value, ItsmError> {
        let answer = self
            .client
            .send_json(
                Method::PATCH,
                &format!("/api/now/table/{table}/{sys_id}?sysparm_fields={fields}&sysparm_exclude_reference_link=true"),
                body,
                key,
            )
            .await?;
        Ok(answer["result"].clone())
    }

    fn ignored(&self, key: &str, problem: impl Into<String>) -> ItsmError {
        ItsmError::WriteIgnored {
            system: self.client.name.clone(),
            key: key.to_string(),
            problem: problem.into(),
        }
    }

    /// Sets a record's `state` to `close_state` with `close_notes`, and checks the
    /// echoed record shows both (ACLs, a missing role or a flow that owns the state
    /// make the Table API drop them and still answer 200).
    async fn close_record(
        &self,
        table: &str,
        key: &str,
        sys_id: &str,
        text: &str,
    ) -> Result<(), ItsmError> {
        crate::check_key(sys_id)?;
        let close_state = &self.client.config.close_state;
        let echo = self
            .patch(
                table,
                key,
                sys_id,
                &json!({ "state": close_state, "close_notes": text }),
                "state,close_notes",
            )
            .await?;
        let mut dropped = Vec::new();
        if field_text(&echo["state"]).as_deref() != Some(close_state.as_str()) {
            dropped.push(format!(
                "state (asked {close_state:?}, the record shows {:?})",
                field_text(&echo["state"]).unwrap_or_default()
            ));
        }
        if !field_text(&echo["close_notes"]).is_some_and(|shown| same_text(&shown, text)) {
            dropped.push("close_notes".to_string());
        }
        if dropped.is_empty() {
            return Ok(());
        }
        Err(self.ignored(
            key,
            format!(
                "{table} {sys_id} did not take {}; writ's API user needs write access to \
                 state and close_notes, and where a flow owns the item's state set \
                 closure = \"tasks\" or \"flow\"",
                dropped.join(" and ")
            ),
        ))
    }

    /// The sys_ids of the item's catalog tasks that are still open.
    async fn open_tasks(&self, key: &str, id: &str) -> Result<Vec<String>, ItsmError> {
        let query = [
            ("sysparm_query", format!("request_item={id}^active=true")),
            ("sysparm_fields", "sys_id".to_string()),
            ("sysparm_exclude_reference_link", "true".to_string()),
        ];
        let answer = self
            .client
            .get(&format!("/api/now/table/{TASK_TABLE}"), &query, key)
            .await?;
        Ok(answer["result"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|task| field_text(&task["sys_id"]))
            .collect())
    }

    /// Whether the item's work notes hold `text`. The Table API never shows journal
    /// fields (they read as ""); `sys_journal_field` holds each entry.
    async fn has_work_note(&self, key: &str, id: &str, text: &str) -> Result<bool, ItsmError> {
        let query = [
            (
                "sysparm_query",
                format!("element_id={id}^element=work_notes^ORDERBYDESCsys_created_on"),
            ),
            ("sysparm_fields", "value".to_string()),
            ("sysparm_limit", JOURNAL_LOOKBACK.to_string()),
        ];
        let answer = self
            .client
            .get(&format!("/api/now/table/{JOURNAL_TABLE}"), &query, key)
            .await?;
        Ok(answer["result"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|entry| field_text(&entry["value"]).is_some_and(|shown| same_text(&shown, text))))
    }
}

#[async_trait]
impl TicketSystem for ServiceNow {
    /// `POST /api/now/table/incident` (201: `{"result": {"sys_id", "number", ...}}`),
    /// urgent and high impact: someone broke the glass.
    async fn open_incident(&self, incident: &NewIncident) -> Result<String, ItsmError> {
        let body = json!({
            "short_description": incident.summary,
            "description": incident.description,
            "urgency": "1",
            "impact": "1",
        });
        let created = self
            .client
            .send_json(
                Method::POST,
                "/api/now/table/incident?sysparm_fields=sys_id,number",
                &body,
                "incident",
            )
            .await?;
        match created["result"]["number"].as_str() {
            Some(number) if crate::check_key(number).is_ok() => Ok(number.to_string()),
            _ => Err(self.ignored(
                "incident",
                "the answer to creating an incident names no created record; writ's API user needs \
                 create access to the incident table (e.g. role itil)",
            )),
        }
    }

    async fn ticket(&self, key: &str) -> Result<TicketInfo, ItsmError> {
        crate::check_key(key)?;
        let mapping = &self.client.config.fields;
        let mut fields = vec![
            "sys_id",
            "number",
            "state",
            "active",
            "sys_class_name",
            "short_description",
            "opened_by",
            "requested_for",
            "approval",
        ];
        fields.extend(mapping.ids());
        let query = [
            ("sysparm_query", format!("number={key}")),
            ("sysparm_fields", fields.join(",")),
            ("sysparm_exclude_reference_link", "true".to_string()),
            ("sysparm_limit", "1".to_string()),
        ];
        let answer = self
            .client
            .get(&format!("/api/now/table/{TABLE}"), &query, key)
            .await?;
        let record = answer["result"]
            .as_array()
            .and_then(|records| records.first())
            .ok_or_else(|| ItsmError::NotFound {
                system: self.client.name.clone(),
                key: key.to_string(),
            })?;
        let text = |name: &str| field_text(&record[name]);
        Ok(TicketInfo {
            key: text("number").unwrap_or_else(|| key.to_string()),
            id: text("sys_id").ok_or_else(|| ItsmError::Malformed {
                system: self.client.name.clone(),
                problem: format!("{key} has no sys_id"),
            })?,
            state: text("state").unwrap_or_default(),
            closed: record["active"] == "false",
            ticket_type: text("sys_class_name").unwrap_or_else(|| TABLE.to_string()),
            summary: text("short_description").unwrap_or_default(),
            requester: text("opened_by"),
            assignee: text("requested_for"),
            beneficiary: text("requested_for"),
            approval: text("approval"),
            ..TicketInfo::default()
        }
        .with_mapped(mapping, text))
    }

    /// `GET /api/now/table/sc_req_item` with an encoded query on `state` and
    /// `sys_updated_on` (relative: `gs.minutesAgoStart`), oldest first.
    async fn updated_within(
        &self,
        minutes: i64,
        states: &[String],
        limit: usize,
    ) -> Result<Vec<(String, String)>, ItsmError> {
        let since = format!("javascript:gs.minutesAgoStart({minutes})");
        let query = [
            (
                "sysparm_query",
                format!(
                    "stateIN{}^sys_updated_on>={since}^ORDERBYsys_updated_on",
                    states.join(",")
                ),
            ),
            (
                "sysparm_fields",
                "number,sys_id,sys_mod_count,sys_updated_on".to_string(),
            ),
            ("sysparm_exclude_reference_link", "true".to_string()),
            ("sysparm_limit", limit.to_string()),
        ];
        let answer = self
            .client
            .get(&format!("/api/now/table/{TABLE}"), &query, "(poll)")
            .await?;
        Ok(answer["result"]
            .as_array()
            .map(|records| {
                records
                    .iter()
                    .filter_map(|r| {
                        let number = field_text(&r["number"])?;
                        let version = format!(
                            "{}:{}",
                            field_text(&r["sys_id"]).unwrap_or_default(),
                            field_text(&r["sys_mod_count"]).unwrap_or_default()
                        );
                        Some((number, version))
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    /// `PATCH /api/now/table/sc_req_item/{sys_id}` with `work_notes` (journal input:
    /// each write appends an entry), checked in `sys_journal_field`: the Table API
    /// answers 200 while dropping a field the API user may not write. A note already
    /// there (an earlier attempt that landed) is not written twice.
    async fn add_note(&self, key: &str, id: &str, text: &str) -> Result<(), ItsmError> {
        crate::check_key(id)?;
        if self.has_work_note(key, id, text).await? {
            return Ok(());
        }
        self.patch(TABLE, key, id, &json!({ "work_notes": text }), "sys_id")
            .await?;
        if self.has_work_note(key, id, text).await? {
            return Ok(());
        }
        Err(self.ignored(
            key,
            "the work note is not in sys_journal_field after writing it; writ's API user needs \
             write access to work_notes on sc_req_item (e.g. role itil) and read access to \
             sys_journal_field",
        ))
    }

    /// Closes the item the way `closure` says, once the access it backed is verified
    /// gone: its `state` (with the evidence as `close_notes`), its open catalog tasks,
    /// or neither (a flow closes it); the evidence is a work note in every case. An item
    /// no longer active only gets the note.
    async fn close(&self, key: &str, id: &str, text: &str) -> Result<(), ItsmError> {
        crate::check_key(id)?;
        let current = self
            .client
            .get(
                &format!("/api/now/table/{TABLE}/{id}"),
                &[("sysparm_fields", "active,state".to_string())],
                key,
            )
            .await?;
        if current["result"]["active"] == "false" {
            return self.add_note(key, id, text).await;
        }
        match self.client.config.closure {
            Closure::Ticket => self.close_record(TABLE, key, id, text).await?,
            Closure::Tasks => {
                for task in self.open_tasks(key, id).await? {
                    self.close_record(TASK_TABLE, key, &task, text).await?;
                }
            }
            Closure::Flow => {}
        }
        self.add_note(key, id, text).await
    }

    /// `GET /api/now/table/sysapproval_approver?sysparm_query=sysapproval=<sys_id>^state=approved`:
    /// the approvers (sys_user sys_ids) of the item's approval records in state approved.
    async fn approvers(&self, key: &str, id: &str) -> Result<Vec<String>, ItsmError> {
        crate::check_key(id)?;
        let query = [
            ("sysparm_query", format!("sysapproval={id}^state=approved")),
            ("sysparm_fields", "approver,state".to_string()),
            ("sysparm_exclude_reference_link", "true".to_string()),
        ];
        let answer = self
            .client
            .get("/api/now/table/sysapproval_approver", &query, key)
            .await?;
        Ok(answer["result"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|record| record["state"] == "approved")
            .filter_map(|record| field_text(&record["approver"]))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn text_compares_across_line_endings_and_blanks() {
        assert!(super::same_text("a\r\nb \n", "a\nb"));
        assert!(!super::same_text("a\nb", "a\nc"));
        assert!(!super::same_text("", "a"));
    }
}
