//! Jira Cloud REST v3. Shapes follow developer.atlassian.com/cloud/jira/platform/rest/v3:
//! `GET /rest/api/3/issue/{issueIdOrKey}?fields=...` ("Get issue"), whose `fields`
//! object holds `summary`, `status` (`name`, `statusCategory.key`), `issuetype.name`,
//! `reporter` / `assignee` (`accountId`; assignee may be null) and custom fields under
//! their `customfield_NNNNN` ids.

use async_trait::async_trait;
use reqwest::Method;
use serde_json::{Value, json};
use writ_config::{Closure, Itsm};

use crate::ticket::{TicketInfo, field_text};
use crate::{Client, ItsmError, NewIncident, TicketSystem};

pub struct Jira {
    client: Client,
}

impl Jira {
    pub fn new(config: &Itsm) -> Result<Self, ItsmError> {
        Ok(Self {
            client: Client::new(config)?,
        })
    }

    fn ticket_from(&self, key: &str, issue: &Value) -> Result<TicketInfo, ItsmError> {
        let fields = &issue["fields"];
        let malformed = |what: &str| ItsmError::Malformed {
            system: self.client.name.clone(),
            problem: format!("issue {key} has no {what}"),
        };
        Ok(TicketInfo {
            key: issue["key"]
                .as_str()
                .ok_or_else(|| malformed("key"))?
                .to_string(),
            id: issue["id"]
                .as_str()
                .ok_or_else(|| malformed("id"))?
                .to_string(),
            state: fields["status"]["name"]
                .as_str()
                .ok_or_else(|| malformed("fields.status.name"))?
                .to_string(),
            closed: fields["status"]["statusCategory"]["key"].as_str() == Some("done"),
            ticket_type: fields["issuetype"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            summary: fields["summary"].as_str().unwrap_or_default().to_string(),
            requester: fields["reporter"]["accountId"].as_str().map(str::to_string),
            assignee: fields["assignee"]["accountId"].as_str().map(str::to_string),
            ..TicketInfo::default()
        }
        .with_mapped(&self.client.config.fields, |id| field_text(&fields[id])))
    }
}

/// Text as an Atlassian Document (ADF): one paragraph per line.
pub fn adf(text: &str) -> Value {
    let paragraphs: Vec<Value> = text
        .lines()
        .map(|line| {
            if line.is_empty() {
                json!({ "type": "paragraph", "content": [] })
            } else {
                json!({ "type": "paragraph", "content": [{ "type": "text", "text": line }] })
            }
        })
        .collect();
    json!({ "type": "doc", "version": 1, "content": paragraphs })
}

#[async_trait]
impl TicketSystem for Jira {
    /// `POST /rest/api/3/issue` (201: `{"id", "key", "self"}`) in the incident's project,
    /// of its issue type, with an ADF description.
    async fn open_incident(&self, incident: &NewIncident) -> Result<String, ItsmError> {
        let project = incident.project.as_deref().unwrap_or_default();
        let body = json!({ "fields": {
            "project": { "key": project },
            "issuetype": { "name": incident.issue_type.as_deref().unwrap_or("Incident") },
            "summary": incident.summary,
            "description": adf(&incident.description),
            "labels": ["writ-break-glass"],
        }});
        let created = self
            .client
            .send_json(Method::POST, "/rest/api/3/issue", &body, project)
            .await?;
        match created["key"].as_str() {
            Some(key) if crate::check_key(key).is_ok() => Ok(key.to_string()),
            _ => Err(ItsmError::WriteIgnored {
                system: self.client.name.clone(),
                key: project.to_string(),
                problem: "the answer to creating an issue names no created issue".to_string(),
            }),
        }
    }

    async fn ticket(&self, key: &str) -> Result<TicketInfo, ItsmError> {
        let mapping = &self.client.config.fields;
        let mut fields = vec!["summary", "status", "issuetype", "reporter", "assignee"];
        fields.extend(mapping.ids());
        crate::check_key(key)?;
        let path = format!("/rest/api/3/issue/{key}");
        let issue = self
            .client
            .get(&path, &[("fields", fields.join(","))], key)
            .await?;
        self.ticket_from(key, &issue)
    }

    /// `GET /rest/api/3/search/jql` with JQL on `status` and `updated` (relative:
    /// `-Nm`), oldest first.
    async fn updated_within(
        &self,
        minutes: i64,
        states: &[String],
        limit: usize,
    ) -> Result<Vec<(String, String)>, ItsmError> {
        let statuses: Vec<String> = states
            .iter()
            .map(|s| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\"")))
            .collect();
        let jql = format!(
            "status in ({}) AND updated >= \"-{minutes}m\" ORDER BY updated ASC",
            statuses.join(", ")
        );
        let answer = self
            .client
            .get(
                "/rest/api/3/search/jql",
                &[
                    ("jql", jql),
                    ("fields", "updated".to_string()),
                    ("maxResults", limit.to_string()),
                ],
                "(poll)",
            )
            .await?;
        Ok(answer["issues"]
            .as_array()
            .map(|issues| {
                issues
                    .iter()
                    .filter_map(|issue| {
                        let key = issue["key"].as_str()?.to_string();
                        let updated = issue["fields"]["updated"].as_str().unwrap_or_default();
                        Some((key, updated.to_string()))
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    /// `POST /rest/api/3/issue/{key}/comment` (201) with an ADF body, marked internal
    /// for Jira Service Management through the `sd.public.comment` property.
    async fn add_note(&self, key: &str, _id: &str, text: &str) -> Result<(), ItsmError> {
        crate::check_key(key)?;
        let body = json!({
            "body": adf(text),
            "properties": [{ "key": "sd.public.comment", "value": { "internal": true } }],
        });
        let created = self
            .client
            .send_json(
                Method::POST,
                &format!("/rest/api/3/issue/{key}/comment"),
                &body,
                key,
            )
            .await?;
        // Jira refuses what it will not write (400, 403) rather than dropping it; the
        // created comment's id is the check that it was written.
        if field_text(&created["id"]).is_none() {
            return Err(ItsmError::WriteIgnored {
                system: self.client.name.clone(),
                key: key.to_string(),
                problem: "the answer to adding a comment names no created comment".to_string(),
            });
        }
        Ok(())
    }

    /// Finds the transition named `close_state` among `GET .../transitions`, posts it
    /// (`POST /rest/api/3/issue/{key}/transitions`, 204) with `close_fields`, then adds
    /// the evidence as an internal comment. With `closure = "flow"` (an automation rule
    /// closes the issue), only the comment.
    async fn close(&self, key: &str, id: &str, text: &str) -> Result<(), ItsmError> {
        crate::check_key(key)?;
        let status = self
            .client
            .get(
                &format!("/rest/api/3/issue/{key}"),
                &[("fields", "status".to_string())],
                key,
            )
            .await?;
        if status["fields"]["status"]["statusCategory"]["key"].as_str() == Some("done")
            || self.client.config.closure == Closure::Flow
        {
            return self.add_note(key, id, text).await;
        }
        let wanted = &self.client.config.close_state;
        let transitions = self
            .client
            .get(&format!("/rest/api/3/issue/{key}/transitions"), &[], key)
            .await?;
        let transition = transitions["transitions"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|t| {
                [&t["name"], &t["to"]["name"]].iter().any(|name| {
                    name.as_str()
                        .is_some_and(|name| name.eq_ignore_ascii_case(wanted))
                })
            })
            .and_then(|t| t["id"].as_str())
            .ok_or_else(|| ItsmError::Refused {
                system: self.client.name.clone(),
                status: 409,
                body: format!(
                    "issue {key} has no transition named {wanted:?} from its current status"
                ),
            })?;
        // The evidence goes as an internal comment, like every other note (a comment in
        // the transition would be public on a JSM portal and mailed to the customer).
        // Transition first: if the note then fails, the retry finds the ticket done
        // and only adds the note, so nothing is said twice.
        let fields: serde_json::Map<String, serde_json::Value> = self
            .client
            .config
            .close_fields
            .iter()
            .filter_map(|(name, value)| Some((name.clone(), serde_json::to_value(value).ok()?)))
            .collect();
        let mut body = json!({ "transition": { "id": transition } });
        if !fields.is_empty() {
            body["fields"] = serde_json::Value::Object(fields);
        }
        self.client
            .send_json(
                Method::POST,
                &format!("/rest/api/3/issue/{key}/transitions"),
                &body,
                key,
            )
            .await?;
        self.add_note(key, id, text).await
    }

    /// `GET /rest/servicedeskapi/request/{key}/approval` (JSM, `PagedApproval`): every
    /// approver whose `approverDecision` is `approved`, in any approval of the request.
    async fn approvers(&self, key: &str, _id: &str) -> Result<Vec<String>, ItsmError> {
        crate::check_key(key)?;
        let page = self
            .client
            .get(
                &format!("/rest/servicedeskapi/request/{key}/approval"),
                &[("limit", "50".to_string())],
                key,
            )
            .await?;
        Ok(page["values"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|approval| approval["approvers"].as_array().into_iter().flatten())
            .filter(|approver| approver["approverDecision"] == "approved")
            .filter_map(|approver| {
                approver["approver"]["accountId"]
                    .as_str()
                    .map(str::to_string)
            })
            .collect())
    }
}
