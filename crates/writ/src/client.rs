//! Client commands: talk to a running server over its REST API.

use crate::stdout::outln;
use std::path::Path;

use reqwest::Method;
use serde_json::{Value, json};
use writ_domain::{Clock, Timestamp, parse_duration_seconds};
use writ_engine::SystemClock;

mod break_glass;
mod reports;
mod reviews;

use crate::cli::ClientArgs;
use crate::{
    EXIT_DENIED, EXIT_FAILED, EXIT_NOT_FOUND, EXIT_REVOKE_FAILED, EXIT_UNAUTHENTICATED,
    EXIT_UNAVAILABLE, EXIT_USAGE, Failure, output,
};

/// `--duration`, in seconds, when given.
pub(crate) fn duration_option(duration: Option<String>) -> Result<Option<i64>, Failure> {
    duration
        .map(|d| {
            parse_duration_seconds(&d)
                .map_err(|problem| Failure::usage(format!("--duration {d:?}: {problem}")))
        })
        .transpose()
}

/// A request as `writ request` takes it.
pub struct Asked {
    pub entitlement: String,
    pub subject: Option<String>,
    pub duration: Option<String>,
    pub justification: String,
    pub ticket: Option<String>,
    pub on_behalf_of: Option<String>,
}

impl Asked {
    /// The body of `POST /v1/requests` (and of its preview).
    fn body(self) -> Result<Value, Failure> {
        // `--duration permanent`: access without an end, where a policy permits it.
        let permanent = self.duration.as_deref() == Some("permanent");
        let duration_seconds = duration_option(self.duration.filter(|_| !permanent))?;
        let ticket = self
            .ticket
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
        Ok(
            json!({ "entitlement": self.entitlement, "subject": self.subject, "duration_seconds": duration_seconds, "permanent": permanent, "justification": self.justification, "ticket": ticket, "on_behalf_of": self.on_behalf_of }),
        )
    }
}

/// reqwest's top-level message hides the cause (refused, timed out, no route, an
/// untrusted certificate): the innermost error says it.
fn innermost_cause(error: &reqwest::Error) -> String {
    let mut cause = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(inner) = source {
        cause = inner.to_string();
        source = inner.source();
    }
    cause
}

/// An HTTP client that trusts the system's CAs and `--ca-file`'s, and presents
/// `--client-cert` when the server asks for one.
fn http_client(args: &ClientArgs) -> Result<reqwest::Client, Failure> {
    writ_itsm::install_crypto_provider();
    let mut builder = reqwest::Client::builder().timeout(std::time::Duration::from_secs(60));
    if let Some(path) = &args.ca_file {
        let pem = std::fs::read(path).map_err(|e| {
            Failure::usage(format!("--ca-file {}: cannot read: {e}", path.display()))
        })?;
        let roots = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
            Failure::usage(format!(
                "--ca-file {}: not PEM certificates: {e}",
                path.display()
            ))
        })?;
        if roots.is_empty() {
            return Err(Failure::usage(format!(
                "--ca-file {}: holds no certificate",
                path.display()
            )));
        }
        builder = builder.tls_certs_merge(roots);
    }
    if let Some(path) = &args.client_cert {
        let pem = std::fs::read(path).map_err(|e| {
            Failure::usage(format!(
                "--client-cert {}: cannot read: {e}",
                path.display()
            ))
        })?;
        let identity = reqwest::Identity::from_pem(&pem).map_err(|e| {
            Failure::usage(format!(
                "--client-cert {}: needs a PEM certificate and its private key: {e}",
                path.display()
            ))
        })?;
        builder = builder.identity(identity);
    }
    builder
        .build()
        .map_err(|e| Failure::failed(format!("cannot build an HTTP client: {e}")))
}

/// What a caller without a token is told.
const NO_TOKEN: &str = "not signed in: run `writ login`, or set WRIT_TOKEN or pass --token (e.g. from `writ token issue NAME`)";
const GET_A_TOKEN: &str = "sign in again with `writ login`, or get a new token (`writ token issue NAME`) and set WRIT_TOKEN or pass --token";
/// A stored access token this close to its expiry is refreshed first.
const REFRESH_BEFORE_SECONDS: i64 = 30;

/// The most items the server sends in one page of a list.
const SERVER_PAGE_MAX: u32 = 1000;

pub struct Client {
    http: reqwest::Client,
    server: String,
    source: ServerSource,
    bearer: Bearer,
    json: bool,
}

/// What speaks for the caller.
enum Bearer {
    /// --token or WRIT_TOKEN.
    Given(String),
    /// `writ login`'s sign-in for this server, refreshed when it is about to expire.
    Stored(tokio::sync::Mutex<crate::credentials::StoredLogin>),
    /// Nothing: the client certificate (mutual TLS), or a call that needs no token.
    None,
}

/// Where the server's address came from, to say so when it cannot be reached.
#[derive(Clone)]
enum ServerSource {
    Flag,
    Environment,
    Config(std::path::PathBuf),
}

/// The server to call: --server (or WRIT_SERVER), else `listen` in the config.
fn resolve_server(
    config_path: &Path,
    args: &ClientArgs,
) -> Result<(String, ServerSource), Failure> {
    Ok(match &args.server {
        Some(server) => {
            let source = if std::env::var("WRIT_SERVER").is_ok_and(|env| env == *server) {
                ServerSource::Environment
            } else {
                ServerSource::Flag
            };
            (server.trim_end_matches('/').to_string(), source)
        }
        None => {
            let config = crate::offline::load_config(config_path).map_err(|f| {
                Failure::usage(format!(
                    "no --server given and the config cannot tell: {}",
                    f.message
                ))
            })?;
            // A server listening on every address is reached on this machine's.
            let mut address = config.listen;
            if address.ip().is_unspecified() {
                address.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
            }
            let scheme = if config.tls.is_some() {
                "https"
            } else {
                "http"
            };
            (
                format!("{scheme}://{address}"),
                ServerSource::Config(config.path.clone()),
            )
        }
    })
}

impl Client {
    pub fn new(config_path: &Path, args: &ClientArgs) -> Result<Self, Failure> {
        let (server, source) = resolve_server(config_path, args)?;
        // `export WRIT_TOKEN=$(writ token issue NAME)` sets an empty token when the
        // command fails: that is no token, not a wrong one.
        let bearer = match args.token.clone().filter(|token| !token.trim().is_empty()) {
            Some(token) => Bearer::Given(token),
            None => match crate::credentials::load(&server)? {
                Some(login) => Bearer::Stored(tokio::sync::Mutex::new(login)),
                // A client certificate can prove a service or agent on its own.
                None if args.client_cert.is_some() => Bearer::None,
                None => return Err(Failure::with_code(EXIT_UNAUTHENTICATED, NO_TOKEN)),
            },
        };
        Self::with_bearer(server, source, args, bearer)
    }

    /// A client for calls that need no token (`writ login` asking which providers to
    /// sign in with).
    pub fn anonymous(config_path: &Path, args: &ClientArgs) -> Result<Self, Failure> {
        let (server, source) = resolve_server(config_path, args)?;
        Self::with_bearer(server, source, args, Bearer::None)
    }

    /// The same server, with `token` speaking for the caller.
    pub fn with_token(&self, token: String) -> Self {
        Self {
            http: self.http.clone(),
            server: self.server.clone(),
            source: self.source.clone(),
            bearer: Bearer::Given(token),
            json: self.json,
        }
    }

    pub fn server(&self) -> &str {
        &self.server
    }

    fn with_bearer(
        server: String,
        source: ServerSource,
        args: &ClientArgs,
        bearer: Bearer,
    ) -> Result<Self, Failure> {
        let http = http_client(args)?;
        Ok(Self {
            http,
            server,
            source,
            bearer,
            json: args.json,
        })
    }

    fn unreachable(&self, error: &reqwest::Error) -> Failure {
        let cause = innermost_cause(error);
        if cause.contains("certificate") || cause.contains("Certificate") {
            let hint = if cause.contains("expired") {
                "writ's certificate has expired: replace its tls_cert and tls_key files (writ serves new ones without a restart)"
            } else {
                "if its certificate is signed by your own CA, pass that CA with --ca-file or WRIT_CA_FILE; if writ asks for a client certificate, pass yours with --client-cert or WRIT_CLIENT_CERT"
            };
            return Failure::with_code(
                EXIT_UNAVAILABLE,
                format!(
                    "cannot reach writ at {} over TLS: {cause}\n  {hint}",
                    self.server
                ),
            );
        }
        let from = match &self.source {
            ServerSource::Flag => "from --server".to_string(),
            ServerSource::Environment => "from WRIT_SERVER".to_string(),
            ServerSource::Config(path) => format!("server.listen in {}", path.display()),
        };
        let start = match &self.source {
            ServerSource::Config(path) => format!("writ serve --config {}", path.display()),
            _ => "writ serve".to_string(),
        };
        Failure::with_code(
            EXIT_UNAVAILABLE,
            format!(
                "cannot reach writ at {} ({from}): {}\n  is it running? start it with `{start}`, or point --server / WRIT_SERVER at it",
                self.server, cause
            ),
        )
    }

    /// The bearer token to send: a stored sign-in is refreshed (and kept) first when it
    /// is about to expire.
    async fn bearer_token(&self) -> Result<Option<String>, Failure> {
        let stored = match &self.bearer {
            Bearer::Given(token) => return Ok(Some(token.clone())),
            Bearer::None => return Ok(None),
            Bearer::Stored(stored) => stored,
        };
        let mut login = stored.lock().await;
        let fresh = login
            .expires_at
            .is_none_or(|at| at - REFRESH_BEFORE_SECONDS > crate::login::unix_now());
        if fresh {
            return Ok(Some(login.access_token.clone()));
        }
        let expired = || {
            Failure::with_code(
                EXIT_UNAUTHENTICATED,
                format!(
                    "your sign-in to {} has expired: run `writ login`",
                    self.server
                ),
            )
        };
        let refresh_token = login.refresh_token.clone().ok_or_else(expired)?;
        let refreshed = crate::login::refresh(&login, &refresh_token)
            .await
            .map_err(|e| {
                Failure::with_code(
                    EXIT_UNAUTHENTICATED,
                    format!(
                        "your sign-in to {} has expired and cannot be renewed ({e}): run `writ login`",
                        self.server
                    ),
                )
            })?;
        *login = refreshed;
        crate::credentials::store(&self.server, login.clone())?;
        Ok(Some(login.access_token.clone()))
    }

    /// An id as a path segment: what people type is hex, dashes and a tag (`req_`);
    /// anything else could change which endpoint is called, so it never gets there.
    fn segment(id: &str) -> Result<&str, Failure> {
        if !id.is_empty()
            && id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            Ok(id)
        } else {
            Err(Failure::with_code(
                EXIT_NOT_FOUND,
                format!(
                    "{id:?} is not an id: ids are UUIDs or their short forms, e.g. req_4f2a9c1b"
                ),
            ))
        }
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<Value>,
    ) -> Result<Value, Failure> {
        let url = format!("{}{path}", self.server);
        let mut request = self.http.request(method, &url).query(query);
        if let Some(token) = self.bearer_token().await? {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.map_err(|e| self.unreachable(&e))?;
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
        let exit = match status.as_u16() {
            401 => EXIT_UNAUTHENTICATED,
            403 => EXIT_DENIED,
            404 => EXIT_NOT_FOUND,
            503 => EXIT_UNAVAILABLE,
            400 | 413 | 415 | 422 => EXIT_USAGE,
            _ => EXIT_FAILED,
        };
        let hint = if status.as_u16() == 401 {
            format!("\n  {GET_A_TOKEN}")
        } else {
            String::new()
        };
        Err(Failure::with_code(
            exit,
            format!("{code} ({}): {message}{hint}", status.as_u16()),
        ))
    }

    /// Up to `limit` items of a paged list (`{"<field>": [...], "next"}`), following
    /// `next` from page to page; as one list under `field`.
    async fn pages(
        &self,
        path: &str,
        mut query: Vec<(&str, String)>,
        field: &str,
        limit: u32,
    ) -> Result<Value, Failure> {
        let wanted = usize::try_from(limit).unwrap_or(usize::MAX);
        let mut items: Vec<Value> = Vec::new();
        query.push(("limit", limit.min(SERVER_PAGE_MAX).to_string()));
        loop {
            let page = self.call(Method::GET, path, &query, None).await?;
            items.extend(page[field].as_array().cloned().unwrap_or_default());
            match page["next"].as_str() {
                Some(next) if items.len() < wanted => {
                    query.retain(|(name, _)| *name != "cursor");
                    query.push(("cursor", next.to_string()));
                }
                _ => break,
            }
        }
        items.truncate(wanted);
        Ok(json!({ field: items }))
    }

    fn print(&self, value: &Value, human: impl FnOnce(&Value) -> String) {
        if self.json {
            outln!(
                "{}",
                serde_json::to_string_pretty(value).unwrap_or_default()
            );
        } else {
            crate::stdout::write(&human(value));
        }
    }

    pub async fn request(&self, asked: Asked) -> Result<(), Failure> {
        let request = self
            .call(Method::POST, "/v1/requests", &[], Some(asked.body()?))
            .await?;
        self.print(&request, output::request);
        if request["state"] == "denied" {
            // The answer printed says why; the exit code lets a script know.
            return Err(Failure::silent(EXIT_DENIED));
        }
        // "approved" is the decision; whether the target took it is the grant's state.
        // Say it now, with the target's error, rather than leave it to `writ grants ID`.
        if let (false, Some(grant)) = (self.json, request["grant_id"].as_str()) {
            let path = format!("/v1/grants/{}", Self::segment(grant)?);
            if let Ok(grant) = self.call(Method::GET, &path, &[], None).await {
                crate::stdout::write(&output::grant_status(&grant));
            }
        }
        Ok(())
    }

    pub async fn list_entitlements(&self) -> Result<(), Failure> {
        let list = self
            .call(Method::GET, "/v1/entitlements", &[], None)
            .await?;
        self.print(&list, output::entitlement_list);
        Ok(())
    }

    pub async fn show_entitlement(&self, id: &str) -> Result<(), Failure> {
        // Entitlement names are letters, digits and `_ - .`: nothing that could change
        // which endpoint is called.
        let plain = |part: &str| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
                && part != "."
                && part != ".."
        };
        let (target, name) = id
            .split_once('/')
            .filter(|(target, name)| plain(target) && plain(name))
            .ok_or_else(|| {
                Failure::usage(format!(
                    "{id:?} is not an entitlement id: expected TARGET/NAME (writ entitlements lists them)"
                ))
            })?;
        let detail = self
            .call(
                Method::GET,
                &format!("/v1/entitlements/{target}/{name}"),
                &[],
                None,
            )
            .await?;
        self.print(&detail, output::entitlement_detail);
        Ok(())
    }

    pub async fn show_request(&self, id: &str) -> Result<(), Failure> {
        let request = self
            .call(
                Method::GET,
                &format!("/v1/requests/{}", Self::segment(id)?),
                &[],
                None,
            )
            .await?;
        self.print(&request, output::request);
        Ok(())
    }

    /// `writ extend GRANT`: more time, decided now as a request of its own.
    pub async fn extend(
        &self,
        grant: &str,
        duration: Option<String>,
        justification: String,
        on_behalf_of: Option<String>,
    ) -> Result<(), Failure> {
        let duration_seconds = duration_option(duration)?;
        let path = format!("/v1/grants/{}/extend", Self::segment(grant)?);
        let body = json!({ "duration_seconds": duration_seconds, "justification": justification, "on_behalf_of": on_behalf_of });
        let request = self.call(Method::POST, &path, &[], Some(body)).await?;
        self.print(&request, output::request);
        if request["state"] == "denied" {
            return Err(Failure::silent(EXIT_DENIED));
        }
        Ok(())
    }

    /// `writ request --dry-run`: the decision writ would make now; nothing recorded.
    pub async fn preview(&self, asked: Asked) -> Result<(), Failure> {
        let preview = self
            .call(
                Method::POST,
                "/v1/requests/preview",
                &[],
                Some(asked.body()?),
            )
            .await?;
        self.print(&preview, output::request_preview);
        if preview["state"] == "denied" {
            return Err(Failure::silent(EXIT_DENIED));
        }
        Ok(())
    }

    pub async fn list_requests(
        &self,
        state: Option<String>,
        subject: Option<String>,
        requester: Option<String>,
        inbox: bool,
        limit: u32,
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
        let list = self.pages("/v1/requests", query, "requests", limit).await?;
        self.print(&list, output::request_list);
        Ok(())
    }

    pub async fn decide(&self, id: &str, verb: &str, comment: String) -> Result<(), Failure> {
        let request = self
            .call(
                Method::POST,
                &format!("/v1/requests/{}/{verb}", Self::segment(id)?),
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
                &format!("/v1/requests/{}/cancel", Self::segment(id)?),
                &[],
                None,
            )
            .await?;
        self.print(&request, output::request);
        Ok(())
    }

    pub async fn show_grant(&self, id: &str) -> Result<(), Failure> {
        let grant = self
            .call(
                Method::GET,
                &format!("/v1/grants/{}", Self::segment(id)?),
                &[],
                None,
            )
            .await?;
        self.print(&grant, output::grant);
        Ok(())
    }

    pub async fn list_grants(
        &self,
        subject: Option<String>,
        state: Option<String>,
        entitlement: Option<String>,
        limit: u32,
    ) -> Result<(), Failure> {
        let query: Vec<(&str, String)> = [
            ("subject", subject),
            ("state", state),
            ("entitlement", entitlement),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect();
        let list = self.pages("/v1/grants", query, "grants", limit).await?;
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

    /// The providers the server signs people in with (`GET /v1/auth/providers`).
    pub async fn sign_in_providers(&self) -> Result<Value, Failure> {
        self.call(Method::GET, "/v1/auth/providers", &[], None)
            .await
    }

    /// Who the server takes this client's token for.
    pub async fn who(&self) -> Result<Value, Failure> {
        self.call(Method::GET, "/v1/whoami", &[], None).await
    }

    /// Prints `me` (a `GET /v1/whoami` answer) as `writ whoami` does.
    pub fn print_identity(&self, me: &Value) {
        self.print(me, output::whoami);
    }

    pub async fn whoami(&self) -> Result<(), Failure> {
        let me = self.call(Method::GET, "/v1/whoami", &[], None).await?;
        self.print(&me, output::whoami);
        Ok(())
    }

    pub async fn list_tokens(&self, identity: Option<String>) -> Result<(), Failure> {
        let query: Vec<(&str, String)> = identity.map(|i| ("identity", i)).into_iter().collect();
        let list = self.call(Method::GET, "/v1/tokens", &query, None).await?;
        self.print(&list, output::token_list);
        Ok(())
    }

    pub async fn revoke_token(&self, id: &str) -> Result<(), Failure> {
        let revoked = self
            .call(
                Method::POST,
                &format!("/v1/tokens/{}/revoke", Self::segment(id)?),
                &[],
                None,
            )
            .await?;
        self.print(&revoked, |v| {
            format!("token {} revoked\n", v["id"].as_str().unwrap_or("?"))
        });
        Ok(())
    }

    pub async fn revoke(&self, id: &str, reason: String) -> Result<(), Failure> {
        let grant = self
            .call(
                Method::POST,
                &format!("/v1/grants/{}/revoke", Self::segment(id)?),
                &[],
                Some(json!({ "reason": reason })),
            )
            .await?;
        self.print(&grant, output::grant);
        if grant["state"] == "failed" {
            return Err(Failure::with_code(
                EXIT_REVOKE_FAILED,
                "the revocation failed: the access may still be on the target (writ retries)",
            ));
        }
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
                &format!("/v1/grants/{}/credential", Self::segment(grant)?),
                &[],
                None,
            )
            .await?;
        self.print(&collected, output::collected_credential);
        Ok(())
    }

    pub async fn reload_policy(&self) -> Result<(), Failure> {
        let result = self
            .call(Method::POST, "/v1/policy/reload", &[], Some(json!({})))
            .await?;
        self.print(&result, output::policy_reloaded);
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
        let query: Vec<(&str, String)> = [
            ("state", Some(state.clone())),
            ("kind", kind),
            ("target", target),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect();
        let list = self.call(Method::GET, "/v1/findings", &query, None).await?;
        self.print(&list, |list| output::finding_list(list, &state));
        Ok(())
    }

    pub async fn show_finding(&self, id: &str) -> Result<(), Failure> {
        let finding = self
            .call(
                Method::GET,
                &format!("/v1/findings/{}", Self::segment(id)?),
                &[],
                None,
            )
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
                &format!("/v1/findings/{}/accept", Self::segment(id)?),
                &[],
                Some(json!({ "owner": owner, "reason": reason, "expires_at": expires_at })),
            )
            .await?;
        self.print(&finding, output::finding);
        Ok(())
    }
}
