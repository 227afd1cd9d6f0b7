//! Ticketing systems. writ treats a ticket as evidence, never as authority: a webhook
//! only names a ticket (after its signature is checked), and writ re-reads the ticket
//! from the system's API before deciding anything.

pub mod jira;
pub mod notify;
mod oauth;
pub mod servicenow;
pub mod ticket;
pub mod webhook;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;
use writ_config::{Config, Itsm, ItsmAuth, ItsmKind};

pub use ticket::TicketInfo;

/// How long writ waits after a 429 that names no time.
const RATE_LIMITED_WAIT_SECONDS: u64 = 60;
/// The longest wait a 429 can ask of writ (evidence must still arrive).
const RATE_LIMITED_WAIT_MAX_SECONDS: u64 = 3600;

/// How long one call to a ticketing system may take.
pub(crate) const CALL_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ItsmError {
    #[error("{system}: ticket {key} does not exist")]
    NotFound { system: String, key: String },
    #[error("{system} is unreachable: {problem}")]
    Unreachable { system: String, problem: String },
    #[error("{system} answered {status}: {body}")]
    Refused {
        system: String,
        status: u16,
        body: String,
    },
    #[error("{system} is limiting writ's calls; it asks to wait {retry_after_seconds}s")]
    RateLimited {
        system: String,
        retry_after_seconds: u64,
    },
    #[error("{system} answered something writ cannot read: {problem}")]
    Malformed { system: String, problem: String },
    #[error("{0:?} is not a ticket key")]
    BadKey(String),
    /// The system answered success but did not apply what writ wrote (ServiceNow drops
    /// fields the API user may not write, and says nothing).
    #[error("{system} accepted writ's write to {key} but did not apply it: {problem}")]
    WriteIgnored {
        system: String,
        key: String,
        problem: String,
    },
}

impl ItsmError {
    /// A short, stable name for the kind of failure (a metric label).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::NotFound { .. } => "not_found",
            Self::Unreachable { .. } => "unreachable",
            Self::Refused { .. } => "refused",
            Self::RateLimited { .. } => "rate_limited",
            Self::Malformed { .. } => "malformed",
            Self::BadKey(_) => "bad_key",
            Self::WriteIgnored { .. } => "write_ignored",
        }
    }
}

/// An incident to open: what happened, in a summary line and a description, and where
/// (Jira's project and issue type; ServiceNow's `incident` table needs neither).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NewIncident {
    pub summary: String,
    pub description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issue_type: Option<String>,
}

/// What writ needs from a ticketing system.
#[async_trait]
pub trait TicketSystem: Send + Sync {
    /// Opens an incident and returns its key as people know it (Jira `OPS-12`,
    /// ServiceNow `INC0010001`).
    async fn open_incident(&self, incident: &NewIncident) -> Result<String, ItsmError>;

    /// The ticket as the system's API shows it now.
    async fn ticket(&self, key: &str) -> Result<TicketInfo, ItsmError>;

    /// Adds an internal note (Jira internal comment, ServiceNow work note). `id` is the
    /// ticket's API id as `ticket` reported it.
    async fn add_note(&self, key: &str, id: &str, text: &str) -> Result<(), ItsmError>;

    /// Closes the ticket with `text` as the closing evidence; a ticket already closed
    /// only gets the note.
    async fn close(&self, key: &str, id: &str, text: &str) -> Result<(), ItsmError>;

    /// The user ids (as in `accounts.<itsm>`) who approved the ticket in the system.
    async fn approvers(&self, key: &str, id: &str) -> Result<Vec<String>, ItsmError>;

    /// Tickets in one of `states` updated in the last `minutes`, oldest first, at most
    /// `limit`: (key, a version that changes with every update). What the poller looks
    /// for, so that a delivery that never arrived loses nothing. Relative, so that no
    /// time zone of the API user's can shift it.
    async fn updated_within(
        &self,
        minutes: i64,
        states: &[String],
        limit: usize,
    ) -> Result<Vec<(String, String)>, ItsmError>;
}

/// An HTTP client for one configured system: base URL, credentials, timeout.
pub(crate) struct Client {
    name: String,
    config: Itsm,
    http: reqwest::Client,
    /// Access tokens, where the system is signed in to with OAuth client credentials.
    oauth: Option<oauth::TokenSource>,
}

impl Client {
    fn new(config: &Itsm) -> Result<Self, ItsmError> {
        install_crypto_provider();
        let http = reqwest::Client::builder()
            .timeout(CALL_TIMEOUT)
            .build()
            .map_err(|e| ItsmError::Unreachable {
                system: config.name.clone(),
                problem: e.to_string(),
            })?;
        let oauth = match &config.auth {
            ItsmAuth::OAuth {
                token_url,
                client_id,
                client_secret,
                scope,
            } => Some(oauth::TokenSource::new(
                &config.name,
                token_url,
                client_id,
                client_secret,
                scope.as_deref(),
                CALL_TIMEOUT,
            )?),
            ItsmAuth::Basic { .. } | ItsmAuth::Bearer(_) => None,
        };
        Ok(Self {
            name: config.name.clone(),
            config: config.clone(),
            http,
            oauth,
        })
    }

    /// Sends `request`, signed in; with OAuth, a 401 gets one new token and one more try
    /// (a revoked token, or clocks that disagree on its expiry), not an endless
    /// "unavailable".
    async fn call(&self, request: reqwest::RequestBuilder, key: &str) -> Result<Value, ItsmError> {
        let Some(oauth) = &self.oauth else {
            return self
                .answer(self.authorised(request, None).send().await, key)
                .await;
        };
        // Bodies are JSON bytes, so the request can always be built twice.
        let again = request.try_clone();
        let token = oauth.token().await?;
        let response = self.authorised(request, Some(&token)).send().await;
        if let (Ok(refused), Some(again)) = (&response, again)
            && refused.status() == reqwest::StatusCode::UNAUTHORIZED
        {
            tracing::info!(system = %self.name, "access token refused; asking for a new one");
            let fresh = oauth.renew(&token).await?;
            let retried = self.authorised(again, Some(&fresh)).send().await;
            return self.answer(retried, key).await;
        }
        self.answer(response, key).await
    }

    fn authorised(
        &self,
        request: reqwest::RequestBuilder,
        oauth_token: Option<&str>,
    ) -> reqwest::RequestBuilder {
        let mut request = request.header("Accept", "application/json");
        if self.config.kind == ItsmKind::Jira {
            // Several Jira Service Management endpoints (approvals) are flagged
            // experimental and need this opt-in; other endpoints ignore it.
            request = request.header("X-ExperimentalApi", "opt-in");
        }
        match &self.config.auth {
            ItsmAuth::Basic { user, password } => request.basic_auth(user, Some(password)),
            ItsmAuth::Bearer(token) => request.bearer_auth(token),
            ItsmAuth::OAuth { .. } => request.bearer_auth(oauth_token.unwrap_or_default()),
        }
    }

    async fn answer(
        &self,
        response: Result<reqwest::Response, reqwest::Error>,
        key: &str,
    ) -> Result<Value, ItsmError> {
        let unreachable = |e: reqwest::Error| ItsmError::Unreachable {
            system: self.name.clone(),
            problem: e.to_string(),
        };
        let response = response.map_err(unreachable)?;
        let status = response.status();
        if status == reqwest::StatusCode::NOT_FOUND {
            return Err(ItsmError::NotFound {
                system: self.name.clone(),
                key: key.to_string(),
            });
        }
        if status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            // Retry-After in seconds (both Jira and ServiceNow send seconds); without
            // one, a minute.
            let retry_after_seconds = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|value| value.to_str().ok())
                .and_then(|text| text.trim().parse::<u64>().ok())
                .unwrap_or(RATE_LIMITED_WAIT_SECONDS)
                .min(RATE_LIMITED_WAIT_MAX_SECONDS);
            return Err(ItsmError::RateLimited {
                system: self.name.clone(),
                retry_after_seconds,
            });
        }
        let body = response.text().await.map_err(unreachable)?;
        if !status.is_success() {
            return Err(ItsmError::Refused {
                system: self.name.clone(),
                status: status.as_u16(),
                body: body.chars().take(300).collect(),
            });
        }
        if body.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&body).map_err(|e| ItsmError::Malformed {
            system: self.name.clone(),
            problem: e.to_string(),
        })
    }

    async fn get(
        &self,
        path: &str,
        query: &[(&str, String)],
        key: &str,
    ) -> Result<Value, ItsmError> {
        let url = format!("{}{path}", self.config.url);
        self.call(self.http.get(url).query(query), key).await
    }

    async fn send_json(
        &self,
        method: reqwest::Method,
        path: &str,
        body: &Value,
        key: &str,
    ) -> Result<Value, ItsmError> {
        let url = format!("{}{path}", self.config.url);
        self.call(self.http.request(method, url).json(body), key)
            .await
    }
}

/// rustls needs one process-wide crypto provider; writ uses ring. Call before building
/// any HTTP client (the workspace's reqwest has TLS without a default provider).
pub fn install_crypto_provider() {
    // Err means one is installed already, which is fine.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Checks a ticket key before it goes into a URL or a ServiceNow encoded query: letters,
/// digits, `-` and `_` (`ITSM-42`, `RITM0010001`).
pub fn check_key(key: &str) -> Result<(), ItsmError> {
    if key.is_empty()
        || key.len() > 64
        || !key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
    {
        return Err(ItsmError::BadKey(key.to_string()));
    }
    Ok(())
}

/// The configured ticketing systems and notification sinks, by name.
#[derive(Clone, Default)]
pub struct TicketSystems {
    systems: BTreeMap<String, (Itsm, Arc<dyn TicketSystem>)>,
    notifiers: Vec<Arc<notify::Notifier>>,
}

impl std::fmt::Debug for TicketSystems {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.systems.keys()).finish()
    }
}

impl TicketSystems {
    pub fn from_config(config: &Config) -> Result<Self, ItsmError> {
        let mut systems = Self::default();
        for itsm in config.itsms.values() {
            let system: Arc<dyn TicketSystem> = match itsm.kind {
                ItsmKind::Jira => Arc::new(jira::Jira::new(itsm)?),
                ItsmKind::ServiceNow => Arc::new(servicenow::ServiceNow::new(itsm)?),
            };
            systems.insert(itsm.clone(), system);
        }
        for sink in config.notify.values() {
            systems
                .notifiers
                .push(Arc::new(notify::Notifier::new(sink)?));
        }
        Ok(systems)
    }

    /// Registers a system (tests use this to put a fake in place of a client).
    pub fn insert(&mut self, config: Itsm, system: Arc<dyn TicketSystem>) {
        self.systems.insert(config.name.clone(), (config, system));
    }

    /// No ticketing system is configured.
    pub fn is_empty(&self) -> bool {
        self.systems.is_empty()
    }

    pub fn notifiers(&self) -> &[Arc<notify::Notifier>] {
        &self.notifiers
    }

    pub fn get(&self, name: &str) -> Option<(&Itsm, &Arc<dyn TicketSystem>)> {
        self.systems
            .get(name)
            .map(|(config, system)| (config, system))
    }
}
