//! SCIM 2.0 (RFC 7643 / RFC 7644) applications: an entitlement is a group; granting
//! adds the user to the group's `members` with a PATCH.
//!
//! Users are found by `userName eq "…"`, groups by `displayName eq "…"`, the values
//! quoted as JSON strings (RFC 7644 §3.4.2.2), so a name cannot change the filter.
//! Membership is changed in RFC form — `add` with a `members` value, `remove` with the
//! path `members[value eq "…"]` — which strict servers require. A 429 answer waits the
//! `Retry-After` it names (within the call's time) and tries again.
//!
//! "Revoked" means: the group, read back, no longer lists the user. Sessions the
//! application already issued are its own; SCIM has no way to end them.

use std::time::Duration;

use async_trait::async_trait;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::{Access, Connector, ConnectorError};

const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
/// Users read per page when naming a group's members.
const PAGE_SIZE: usize = 200;
/// The longest writ honours a `Retry-After`; a longer one fails the call (retried later).
const RETRY_AFTER_MAX: Duration = Duration::from_secs(30);
/// Times one call is retried after a 429 before it fails.
const RATE_LIMIT_RETRIES: u32 = 5;

/// Where the application is and how writ authenticates to it.
#[derive(Clone)]
pub struct ScimSettings {
    /// The SCIM base URL, e.g. `https://app.example.com/scim/v2`.
    pub url: String,
    pub bearer_token: String,
    /// PEM roots trusted for the application's certificate; `None`: the system's.
    pub ca_file: Option<std::path::PathBuf>,
    /// How long one HTTP exchange may take.
    pub timeout: Duration,
}

impl std::fmt::Debug for ScimSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScimSettings")
            .field("url", &self.url)
            .field("bearer_token", &"<redacted>")
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
pub struct ScimConnector {
    base: String,
    token: String,
    client: reqwest::Client,
}

/// A SCIM string literal: a JSON string, so quotes and backslashes are escaped.
fn literal(value: &str) -> String {
    Value::String(value.to_string()).to_string()
}

fn unreachable(error: &reqwest::Error) -> ConnectorError {
    if error.is_connect() {
        ConnectorError::Failed(format!("cannot reach the application: {error}"))
    } else {
        // Sent, perhaps applied: the answer was lost.
        ConnectorError::Unknown(format!("SCIM call lost: {error}"))
    }
}

/// A SCIM error answer, with its `detail` where the body has one.
fn refused(what: &str, status: StatusCode, body: &Value) -> ConnectorError {
    let detail = body
        .get("detail")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let kind = body
        .get("scimType")
        .and_then(Value::as_str)
        .map(|t| format!(" ({t})"))
        .unwrap_or_default();
    ConnectorError::Failed(
        format!("{what}: HTTP {status}{kind} {detail}")
            .trim_end()
            .to_string(),
    )
}

fn retry_after(response: &reqwest::Response) -> Duration {
    response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map_or(Duration::from_secs(1), Duration::from_secs)
}

impl ScimConnector {
    pub fn new(settings: ScimSettings) -> Result<Self, ConnectorError> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none());
        if let Some(path) = &settings.ca_file {
            let pem = std::fs::read(path).map_err(|e| {
                ConnectorError::Failed(format!("cannot read ca_file {}: {e}", path.display()))
            })?;
            let roots = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| ConnectorError::Failed(format!("ca_file {}: {e}", path.display())))?;
            builder = builder.tls_certs_only(roots);
        }
        let client = builder
            .build()
            .map_err(|e| ConnectorError::Failed(format!("HTTP client: {e}")))?;
        Ok(Self {
            base: settings.url.trim_end_matches('/').to_string(),
            token: settings.bearer_token,
            client,
        })
    }

    /// One exchange, waiting out 429s; the answer's status and JSON body (`Null`
    /// when there is none).
    async fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<(StatusCode, Value), ConnectorError> {
        let mut attempts = 0;
        loop {
            let mut request = self
                .client
                .request(method.clone(), format!("{}{path}", self.base))
                .bearer_auth(&self.token)
                .header(
                    reqwest::header::ACCEPT,
                    "application/scim+json, application/json",
                )
                .query(query);
            if let Some(body) = body {
                request = request
                    .header(reqwest::header::CONTENT_TYPE, "application/scim+json")
                    .body(body.to_string());
            }
            let response = request.send().await.map_err(|e| unreachable(&e))?;
            let status = response.status();
            if status == StatusCode::TOO_MANY_REQUESTS && attempts < RATE_LIMIT_RETRIES {
                let wait = retry_after(&response);
                if wait > RETRY_AFTER_MAX {
                    return Err(ConnectorError::Failed(format!(
                        "rate limited: the application asks to wait {} s",
                        wait.as_secs()
                    )));
                }
                attempts += 1;
                tokio::time::sleep(wait).await;
                continue;
            }
            let text = response.text().await.map_err(|e| unreachable(&e))?;
            let body = if text.trim().is_empty() {
                Value::Null
            } else {
                serde_json::from_str(&text).map_err(|e| {
                    ConnectorError::Failed(format!("{method} {path}: HTTP {status}, not JSON: {e}"))
                })?
            };
            if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
                return Err(refused(
                    "the application refused writ's token",
                    status,
                    &body,
                ));
            }
            return Ok((status, body));
        }
    }

    /// The `id` of the one resource of `kind` whose `attribute` equals `value`;
    /// `None` when there is none.
    async fn find(
        &self,
        kind: &str,
        attribute: &str,
        value: &str,
    ) -> Result<Option<String>, ConnectorError> {
        let query = [
            ("filter", format!("{attribute} eq {}", literal(value))),
            ("attributes", "id".to_string()),
        ];
        let (status, body) = self
            .call(Method::GET, &format!("/{kind}"), &query, None)
            .await?;
        if !status.is_success() {
            return Err(refused(
                &format!("looking up {kind} {value}"),
                status,
                &body,
            ));
        }
        let resources = body
            .get("Resources")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        match resources.as_slice() {
            [] => Ok(None),
            [one] => one
                .get("id")
                .and_then(Value::as_str)
                .map(|id| Some(id.to_string()))
                .ok_or_else(|| ConnectorError::Failed(format!("{kind} {value} has no id"))),
            more => Err(ConnectorError::Failed(format!(
                "{} {kind} have {attribute} {value}: it must name one",
                more.len()
            ))),
        }
    }

    async fn user(&self, account: &str) -> Result<Option<String>, ConnectorError> {
        self.find("Users", "userName", account).await
    }

    async fn group(&self, role: &str) -> Result<String, ConnectorError> {
        self.find("Groups", "displayName", role)
            .await?
            .ok_or_else(|| ConnectorError::Failed(format!("group {role} does not exist")))
    }

    async fn patch(&self, group: &str, operation: Value) -> Result<(), ConnectorError> {
        let body = json!({ "schemas": [PATCH_OP], "Operations": [operation] });
        let (status, answer) = self
            .call(Method::PATCH, &format!("/Groups/{group}"), &[], Some(&body))
            .await?;
        if status.is_success() {
            Ok(())
        } else {
            Err(refused("changing the group", status, &answer))
        }
    }

    /// Every user's id and userName, page by page.
    async fn user_names(
        &self,
    ) -> Result<std::collections::HashMap<String, String>, ConnectorError> {
        let mut names = std::collections::HashMap::new();
        let mut start = 1usize;
        loop {
            let query = [
                ("attributes", "userName".to_string()),
                ("startIndex", start.to_string()),
                ("count", PAGE_SIZE.to_string()),
            ];
            let (status, body) = self.call(Method::GET, "/Users", &query, None).await?;
            if !status.is_success() {
                return Err(refused("listing users", status, &body));
            }
            let page = body
                .get("Resources")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            for user in &page {
                if let (Some(id), Some(name)) = (
                    user.get("id").and_then(Value::as_str),
                    user.get("userName").and_then(Value::as_str),
                ) {
                    names.insert(id.to_string(), name.to_string());
                }
            }
            let total = body
                .get("totalResults")
                .and_then(Value::as_u64)
                .and_then(|n| usize::try_from(n).ok())
                .unwrap_or(0);
            start += page.len();
            if page.is_empty() || start > total {
                return Ok(names);
            }
        }
    }
}

#[async_trait]
impl Connector for ScimConnector {
    async fn grant(&self, access: Access<'_>) -> Result<(), ConnectorError> {
        let user = self.user(access.account).await?.ok_or_else(|| {
            ConnectorError::Failed(format!("user {} does not exist", access.account))
        })?;
        let group = self.group(access.role).await?;
        self.patch(
            &group,
            json!({ "op": "add", "path": "members", "value": [{ "value": user }] }),
        )
        .await
    }

    async fn revoke(&self, access: Access<'_>) -> Result<(), ConnectorError> {
        // No such user or group: nothing is held, and the read-back decides.
        let Some(user) = self.user(access.account).await? else {
            return Ok(());
        };
        let Some(group) = self.find("Groups", "displayName", access.role).await? else {
            return Ok(());
        };
        let path = format!("members[value eq {}]", literal(&user));
        match self
            .patch(&group, json!({ "op": "remove", "path": path }))
            .await
        {
            // RFC 7644 §3.5.2.3: removing what is not there may answer noTarget.
            Err(ConnectorError::Failed(message)) if message.contains("(noTarget)") => Ok(()),
            other => other,
        }
    }

    /// Whether the group lists the user, asked of the application with a value
    /// filter (RFC 7644 §3.4.2.2) so a large group is not read whole.
    async fn holds(&self, access: Access<'_>) -> Result<bool, ConnectorError> {
        let Some(user) = self.user(access.account).await? else {
            return Ok(false);
        };
        let query = [
            (
                "filter",
                format!(
                    "displayName eq {} and members[value eq {}]",
                    literal(access.role),
                    literal(&user)
                ),
            ),
            ("attributes", "id".to_string()),
        ];
        let (status, body) = self.call(Method::GET, "/Groups", &query, None).await?;
        if !status.is_success() {
            return Err(refused("reading the group", status, &body));
        }
        Ok(body
            .get("totalResults")
            .and_then(Value::as_u64)
            .is_some_and(|n| n > 0))
    }

    /// The group's members by userName; a member that is not a user (a nested group,
    /// an unknown id) is listed by its id, so reconciliation reports it.
    async fn members(&self, role: &str) -> Result<Vec<String>, ConnectorError> {
        let group = self.group(role).await?;
        let query = [("attributes", "members".to_string())];
        let (status, body) = self
            .call(Method::GET, &format!("/Groups/{group}"), &query, None)
            .await?;
        if !status.is_success() {
            return Err(refused("reading the group", status, &body));
        }
        let ids: Vec<String> = body
            .get("members")
            .and_then(Value::as_array)
            .map(|members| {
                members
                    .iter()
                    .filter_map(|m| m.get("value").and_then(Value::as_str))
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let names = self.user_names().await?;
        Ok(ids
            .into_iter()
            .map(|id| names.get(&id).cloned().unwrap_or(id))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_values_are_json_strings() {
        assert_eq!(literal("alice"), "\"alice\"");
        assert_eq!(
            literal("a\" or userName pr or \"\\"),
            "\"a\\\" or userName pr or \\\"\\\\\""
        );
    }
}
