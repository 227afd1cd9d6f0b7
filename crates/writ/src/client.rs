//! Client commands: talk to a running server over its REST API.

use std::path::Path;

use reqwest::Method;
use serde_json::{Value, json};
use writ_domain::{Clock, SystemClock, Timestamp, parse_duration_seconds};

use crate::cli::ClientArgs;
use crate::{Failure, output};

pub struct Client {
    http: reqwest::Client,
    server: String,
    token: String,
    json: bool,
}

impl Client {
    pub fn new(config_path: &Path, args: &ClientArgs) -> Result<Self, Failure> {
        let server = match &args.server {
            Some(server) => server.trim_end_matches('/').to_string(),
            None => {
                let config = crate::offline::load_config(config_path).map_err(|f| {
                    Failure::usage(format!(
                        "no --server given and the config cannot tell: {}",
                        f.message
                    ))
                })?;
                format!("http://{}", config.listen)
            }
        };
        let token = args.token.clone().ok_or_else(|| {
            Failure::usage(
                "no token: pass --token or set WRIT_TOKEN (get one with `writ token issue NAME`)",
            )
        })?;
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(60))
            .build()
            .map_err(|e| Failure::failed(format!("cannot build an HTTP client: {e}")))?;
        Ok(Self {
            http,
            server,
            token,
            json: args.json,
        })
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<Value>,
    ) -> Result<Value, Failure> {
        let url = format!("{}{path}", self.server);
        let mut request = self
            .http
            .request(method, &url)
            .bearer_auth(&self.token)
            .query(query);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .map_err(|e| Failure::failed(format!("cannot reach writ at {}: {e}", self.server)))?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(body);
        }
        let code = body
            .pointer("/error/code")
            .and_then(Value::as_str)
            .unwrap_or("error");
        let message = body
            .pointer("/error/message")
            .and_then(Value::as_str)
            .unwrap_or("no details");
        Err(Failure::failed(format!(
            "{code} ({}): {message}",
            status.as_u16()
        )))
    }

    fn print(&self, value: &Value, human: impl FnOnce(&Value) -> String) {
        if self.json {
            println!(
                "{}",
                serde_json::to_string_pretty(value).unwrap_or_default()
            );
        } else {
            print!("{}", human(value));
        }
    }

    pub async fn request(
        &self,
        entitlement: String,
        subject: Option<String>,
        duration: Option<String>,
        justification: String,
        ticket: Option<String>,
        on_behalf_of: Option<String>,
    ) -> Result<(), Failure> {
        let duration_seconds = duration
            .map(|d| {
                parse_duration_seconds(&d)
                    .map_err(|problem| Failure::usage(format!("--duration {d:?}: {problem}")))
            })
            .transpose()?;
        let ticket = ticket
            .map(|t| {
                t.split_once(':')
                    .map(|(system, key)| json!({ "system": system, "key": key }))
                    .ok_or_else(|| {
                        Failure::usage(format!(
                            "--ticket {t:?}: write SYSTEM:KEY, e.g. jira:OPS-42"
                        ))
                    })
            })
            .transpose()?;
        let body = json!({ "entitlement": entitlement, "subject": subject, "duration_seconds": duration_seconds, "justification": justification, "ticket": ticket, "on_behalf_of": on_behalf_of });
        let request = self
            .call(Method::POST, "/v1/requests", &[], Some(body))
            .await?;
        self.print(&request, output::request);
        Ok(())
    }

    pub async fn show_request(&self, id: &str) -> Result<(), Failure> {
        let request = self
            .call(Method::GET, &format!("/v1/requests/{id}"), &[], None)
            .await?;
        self.print(&request, output::request);
        Ok(())
    }

    pub async fn list_requests(
        &self,
        state: Option<String>,
        subject: Option<String>,
        requester: Option<String>,
        inbox: bool,
    ) -> Result<(), Failure> {
        let mut query = Vec::new();
        if inbox {
            query.push(("state", "pending_approval".to_string()));
            query.push(("approvable_by_me", "true".to_string()));
        } else if let Some(state) = state {
            query.push(("state", state));
        }
        query.extend(subject.map(|s| ("subject", s)));
        query.extend(requester.map(|r| ("requester", r)));
        let list = self.call(Method::GET, "/v1/requests", &query, None).await?;
        self.print(&list, output::request_list);
        Ok(())
    }

    pub async fn decide(&self, id: &str, verb: &str, comment: String) -> Result<(), Failure> {
        let request = self
            .call(
                Method::POST,
                &format!("/v1/requests/{id}/{verb}"),
                &[],
                Some(json!({ "comment": comment })),
            )
            .await?;
        self.print(&request, output::request);
        Ok(())
    }

    pub async fn cancel(&self, id: &str) -> Result<(), Failure> {
        let request = self
            .call(
                Method::POST,
                &format!("/v1/requests/{id}/cancel"),
                &[],
                None,
            )
            .await?;
        self.print(&request, output::request);
        Ok(())
    }

    pub async fn show_grant(&self, id: &str) -> Result<(), Failure> {
        let grant = self
            .call(Method::GET, &format!("/v1/grants/{id}"), &[], None)
            .await?;
        self.print(&grant, output::grant);
        Ok(())
    }

    pub async fn list_grants(
        &self,
        subject: Option<String>,
        state: Option<String>,
        entitlement: Option<String>,
    ) -> Result<(), Failure> {
        let query: Vec<(&str, String)> = [
            ("subject", subject),
            ("state", state),
            ("entitlement", entitlement),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect();
        let list = self.call(Method::GET, "/v1/grants", &query, None).await?;
        self.print(&list, output::grant_list);
        Ok(())
    }

    pub async fn list_identities(&self, orphaned: bool) -> Result<(), Failure> {
        let query: Vec<(&str, String)> = if orphaned {
            vec![("orphaned", "true".to_string())]
        } else {
            Vec::new()
        };
        let list = self
            .call(Method::GET, "/v1/identities", &query, None)
            .await?;
        self.print(&list, output::identity_list);
        Ok(())
    }

    pub async fn revoke(&self, id: &str, reason: String) -> Result<(), Failure> {
        let grant = self
            .call(
                Method::POST,
                &format!("/v1/grants/{id}/revoke"),
                &[],
                Some(json!({ "reason": reason })),
            )
            .await?;
        self.print(&grant, output::grant);
        Ok(())
    }

    pub async fn audit_log(&self, after: i64, limit: i64) -> Result<(), Failure> {
        let events = self
            .call(
                Method::GET,
                "/v1/audit",
                &[("after", after.to_string()), ("limit", limit.to_string())],
                None,
            )
            .await?;
        self.print(&events, output::event_list);
        Ok(())
    }

    pub async fn collect_credential(&self, grant: &str) -> Result<(), Failure> {
        let collected = self
            .call(
                Method::POST,
                &format!("/v1/grants/{grant}/credential"),
                &[],
                None,
            )
            .await?;
        self.print(&collected, output::collected_credential);
        Ok(())
    }

    pub async fn reconcile(&self, target: Option<String>) -> Result<(), Failure> {
        let result = self
            .call(
                Method::POST,
                "/v1/reconcile",
                &[],
                Some(json!({ "target": target })),
            )
            .await?;
        self.print(&result, output::reconcile_reports);
        Ok(())
    }

    pub async fn list_findings(
        &self,
        state: String,
        kind: Option<String>,
        target: Option<String>,
    ) -> Result<(), Failure> {
        let query: Vec<(&str, String)> =
            [("state", Some(state)), ("kind", kind), ("target", target)]
                .into_iter()
                .filter_map(|(k, v)| v.map(|v| (k, v)))
                .collect();
        let list = self.call(Method::GET, "/v1/findings", &query, None).await?;
        self.print(&list, output::finding_list);
        Ok(())
    }

    pub async fn show_finding(&self, id: &str) -> Result<(), Failure> {
        let finding = self
            .call(Method::GET, &format!("/v1/findings/{id}"), &[], None)
            .await?;
        self.print(&finding, output::finding);
        Ok(())
    }

    pub async fn accept_finding(
        &self,
        id: &str,
        owner: String,
        reason: String,
        expires: &str,
    ) -> Result<(), Failure> {
        let expires_at = match Timestamp::parse_rfc3339(expires) {
            Ok(at) => at,
            Err(_) => {
                let seconds = parse_duration_seconds(expires).map_err(|problem| {
                    Failure::usage(format!(
                        "--expires {expires:?} is neither a duration (30d, 12h) nor an RFC 3339 time: {problem}"
                    ))
                })?;
                SystemClock.now().plus_seconds(seconds)
            }
        };
        let finding = self
            .call(
                Method::POST,
                &format!("/v1/findings/{id}/accept"),
                &[],
                Some(json!({ "owner": owner, "reason": reason, "expires_at": expires_at })),
            )
            .await?;
        self.print(&finding, output::finding);
        Ok(())
    }
}
