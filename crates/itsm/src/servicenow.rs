//! ServiceNow Table API (docs.servicenow.com, "Table API"): `GET
//! /api/now/table/sc_req_item?sysparm_query=number=<RITM>` answers `{"result": [...]}`
//! where every value is a string, empty fields are `""`, and references are plain
//! sys_ids with `sysparm_exclude_reference_link=true`. Catalog variables are read by
//! dot-walking (`variables.duration`) in `sysparm_fields`.

use async_trait::async_trait;
use reqwest::Method;
use serde_json::json;
use writ_config::Itsm;

use crate::ticket::{TicketInfo, field_text};
use crate::{Client, ItsmError, TicketSystem};

/// Requested items: what a catalog request for access creates.
const TABLE: &str = "sc_req_item";

pub struct ServiceNow {
    client: Client,
}

impl ServiceNow {
    pub fn new(config: &Itsm) -> Result<Self, ItsmError> {
        Ok(Self {
            client: Client::new(config)?,
        })
    }
}

#[async_trait]
impl TicketSystem for ServiceNow {
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
    /// each write appends an entry).
    async fn add_note(&self, key: &str, id: &str, text: &str) -> Result<(), ItsmError> {
        crate::check_key(id)?;
        self.client
            .send_json(
                Method::PATCH,
                &format!("/api/now/table/{TABLE}/{id}"),
                &json!({ "work_notes": text }),
                key,
            )
            .await
            .map(|_| ())
    }

    /// Sets `state` to `close_state` with the evidence as `close_notes` and a work note;
    /// an item no longer active only gets the note.
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
        let body = json!({ "state": self.client.config.close_state, "close_notes": text, "work_notes": text });
        self.client
            .send_json(
                Method::PATCH,
                &format!("/api/now/table/{TABLE}/{id}"),
                &body,
                key,
            )
            .await
            .map(|_| ())
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
