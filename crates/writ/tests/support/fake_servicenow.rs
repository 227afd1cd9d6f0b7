//! A fake ServiceNow for end-to-end tests, behaving as ServiceNow documents its Table API
//! (docs.servicenow.com "Table API") and as real instances do:
//! - `{"result": ...}` envelopes; every value a string, empty fields `""`;
//! - references as `{"link", "value"}` unless `sysparm_exclude_reference_link=true`;
//! - journal fields (`work_notes`) write-only: they read as `""`, and each write is an
//!   entry in `sys_journal_field`;
//! - `sys_mod_count` bumped on every write that changes the record;
//! - fields the API user may not write (ACLs, a missing role) silently dropped, 200 all
//!   the same;
//! - the Business Rule of docs/itsm.md, fired after every change of `state` or
//!   `approval` — writ's own writes included;
//! - catalog tasks (`sc_task`) and approvals (`sysapproval_approver`) as tables;
//! - basic auth, or OAuth client credentials (`POST /oauth_token.do`) with expiring tokens.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use serde_json::{Map, Value, json};
use writ_config::ItsmKind;

pub const USER: &str = "writ.integration";
pub const PASSWORD: &str = "servicenow-password";
pub const WEBHOOK_SECRET: &str = "servicenow-webhook-secret";
pub const CLIENT_ID: &str = "writ-oauth-client";
pub const CLIENT_SECRET: &str = "writ-oauth-client-secret";

/// Reference columns and the table each points to.
const REFERENCES: &[(&str, &str)] = &[
    ("opened_by", "sys_user"),
    ("requested_for", "sys_user"),
    ("approver", "sys_user"),
    ("sysapproval", "task"),
    ("request_item", "sc_req_item"),
];

/// Item and task states that end them (Closed Complete, Closed Incomplete, Closed Skipped).
const CLOSED_STATES: &[&str] = &["3", "4", "7"];

type Record = Map<String, Value>;

#[derive(Default)]
struct Inner {
    /// Records by table, then sys_id (journal entries in insertion order).
    tables: BTreeMap<String, BTreeMap<String, Record>>,
    calls: Vec<String>,
    /// (table, field) the API user's writes to are dropped.
    denied: BTreeSet<(String, String)>,
    /// Where the Business Rule posts, when it is installed.
    business_rule: Option<String>,
    /// What writ answered each Business Rule call: (status, body).
    rule_answers: Vec<(u16, Value)>,
    /// OAuth: tokens issued and still valid, and how long new ones live.
    oauth: Option<OAuth>,
    next_id: u64,
}

#[derive(Default)]
struct OAuth {
    /// Live tokens and when each expires.
    valid: BTreeMap<String, Instant>,
    lifetime_seconds: u64,
    issued: u64,
    /// Calls refused for a missing, expired or revoked token.
    refused: u64,
}

#[derive(Clone)]
pub struct FakeServiceNow {
    inner: Arc<Mutex<Inner>>,
    pub url: String,
}

/// A requested item. `variables` are extra columns (e.g. `variables.entitlement`).
pub fn item(
    number: &str,
    sys_id: &str,
    state: &str,
    opened_by: &str,
    variables: &[(&str, &str)],
) -> Record {
    let mut record = Map::new();
    for (name, value) in [
        ("sys_id", sys_id),
        ("number", number),
        ("state", state),
        (
            "active",
            if CLOSED_STATES.contains(&state) {
                "false"
            } else {
                "true"
            },
        ),
        ("sys_class_name", "sc_req_item"),
        ("short_description", "Access request"),
        ("opened_by", opened_by),
        ("requested_for", opened_by),
        ("approval", "approved"),
        ("work_notes", ""),
        ("close_notes", ""),
        ("sys_mod_count", "2"),
    ] {
        record.insert(name.to_string(), json!(value));
    }
    for (name, value) in variables {
        record.insert((*name).to_string(), json!(value));
    }
    record
}

impl FakeServiceNow {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let fake = Self {
            inner: Arc::default(),
            url,
        };
        let app = axum::Router::new()
            .route(
                "/api/now/table/{table}",
                get(list_records).post(create_record),
            )
            .route(
                "/api/now/table/{table}/{sys_id}",
                get(get_record).patch(patch_record),
            )
            .route("/oauth_token.do", post(issue_token))
            .with_state(fake.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        fake
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn put_item(&self, record: Record) {
        self.put("sc_req_item", record);
    }

    fn put(&self, table: &str, record: Record) {
        let sys_id = record["sys_id"].as_str().unwrap_or_default().to_string();
        self.lock()
            .tables
            .entry(table.to_string())
            .or_default()
            .insert(sys_id, record);
    }

    /// A catalog task of the item `item_sys_id`, open.
    pub fn put_task(&self, item_sys_id: &str, sys_id: &str) {
        let mut record = Map::new();
        for (name, value) in [
            ("sys_id", sys_id),
            ("number", "SCTASK0010001"),
            ("request_item", item_sys_id),
            ("state", "1"),
            ("active", "true"),
            ("close_notes", ""),
            ("sys_mod_count", "0"),
        ] {
            record.insert(name.to_string(), json!(value));
        }
        self.put("sc_task", record);
    }

    /// A field of an item.
    /// Every record of `table` (e.g. the incidents writ opened), in sys_id order.
    pub fn records(&self, table: &str) -> Vec<Record> {
        self.lock()
            .tables
            .get(table)
            .map(|records| records.values().cloned().collect())
            .unwrap_or_default()
    }

    pub fn field(&self, sys_id: &str, name: &str) -> String {
        self.field_of("sc_req_item", sys_id, name)
    }

    pub fn field_of(&self, table: &str, sys_id: &str, name: &str) -> String {
        self.lock()
            .tables
            .get(table)
            .and_then(|records| records.get(sys_id))
            .and_then(|r| r.get(name))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    }

    /// The item's work notes, oldest first.
    pub fn work_notes(&self, sys_id: &str) -> Vec<String> {
        self.lock()
            .tables
            .get("sys_journal_field")
            .into_iter()
            .flat_map(|journal| journal.values())
            .filter(|entry| entry["element_id"] == sys_id && entry["element"] == "work_notes")
            .filter_map(|entry| entry["value"].as_str().map(str::to_string))
            .collect()
    }

    /// Adds an approval record for the item `sys_id`.
    pub fn add_approval(&self, sys_id: &str, approver: &str, state: &str) {
        let mut inner = self.lock();
        inner.next_id += 1;
        let approval_id = format!("a{:031}", inner.next_id);
        let mut record = Map::new();
        for (name, value) in [
            ("sys_id", approval_id.as_str()),
            ("sysapproval", sys_id),
            ("approver", approver),
            ("state", state),
            ("source_table", "sc_req_item"),
        ] {
            record.insert(name.to_string(), json!(value));
        }
        inner
            .tables
            .entry("sysapproval_approver".to_string())
            .or_default()
            .insert(approval_id, record);
    }

    /// From now on, writ's writes to `field` of `table` are dropped without a word, as
    /// an ACL or a missing role makes ServiceNow do.
    pub fn deny_writes(&self, table: &str, field: &str) {
        self.lock()
            .denied
            .insert((table.to_string(), field.to_string()));
    }

    /// Writes to `field` of `table` are allowed again (the administrator fixed the role).
    pub fn allow_writes(&self, table: &str, field: &str) {
        self.lock()
            .denied
            .remove(&(table.to_string(), field.to_string()));
    }

    /// Installs the Business Rule of docs/itsm.md, posting to `webhook_url` after every
    /// change of an item's `state` or `approval`, whoever made it.
    pub fn install_business_rule(&self, webhook_url: &str) {
        self.lock().business_rule = Some(webhook_url.to_string());
    }

    /// What writ answered each Business Rule call, in order.
    pub fn rule_answers(&self) -> Vec<(u16, Value)> {
        self.lock().rule_answers.clone()
    }

    /// Only OAuth bearer tokens from `/oauth_token.do` are accepted from now on, each
    /// valid for `lifetime_seconds` (as `expires_in` says) or until revoked; an expired
    /// token is refused like any other.
    pub fn require_oauth(&self, lifetime_seconds: u64) {
        self.lock().oauth = Some(OAuth {
            lifetime_seconds,
            ..OAuth::default()
        });
    }

    /// Every token issued so far stops working, as when an administrator revokes them.
    pub fn revoke_tokens(&self) {
        if let Some(oauth) = self.lock().oauth.as_mut() {
            oauth.valid.clear();
        }
    }

    /// How many access tokens were issued.
    pub fn tokens_issued(&self) -> u64 {
        self.lock().oauth.as_ref().map_or(0, |o| o.issued)
    }

    /// How many calls were refused for want of a live token.
    pub fn calls_refused(&self) -> u64 {
        self.lock().oauth.as_ref().map_or(0, |o| o.refused)
    }

    pub fn calls(&self) -> Vec<String> {
        self.lock().calls.clone()
    }

    /// The body the Business Rule in docs/itsm.md sends for `sys_id`.
    pub fn webhook_body(&self, sys_id: &str) -> Vec<u8> {
        let record = self
            .lock()
            .tables
            .get("sc_req_item")
            .and_then(|items| items.get(sys_id))
            .cloned()
            .unwrap_or_default();
        rule_body(sys_id, &record)
    }
}

fn rule_body(sys_id: &str, record: &Record) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "number": record.get("number"), "sys_id": sys_id, "operation": "update",
        "state": record.get("state"), "sys_mod_count": record.get("sys_mod_count"),
    }))
    .unwrap_or_default()
}

fn failure(status: StatusCode, message: &str, detail: &str) -> (StatusCode, Json<Value>) {
    (
        status,
        Json(json!({ "error": { "message": message, "detail": detail }, "status": "failure" })),
    )
}

/// Basic auth with the integration user, or (with OAuth required) a live token.
fn authorised(inner: &mut Inner, headers: &HeaderMap) -> Result<(), (StatusCode, Json<Value>)> {
    use base64::Engine as _;
    let given = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let ok = match inner.oauth.as_mut() {
        Some(oauth) => {
            let live = given
                .strip_prefix("Bearer ")
                .and_then(|token| oauth.valid.get(token))
                .is_some_and(|expires| *expires > Instant::now());
            if !live {
                oauth.refused += 1;
            }
            live
        }
        None => {
            given
                == format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"))
                )
        }
    };
    if ok {
        Ok(())
    } else {
        Err(failure(
            StatusCode::UNAUTHORIZED,
            "User Not Authenticated",
            "Required to provide Auth information",
        ))
    }
}

/// A field as the Table API shows it: a reference as `{link, value}` unless reference
/// links are excluded.
fn shown(name: &str, value: Value, query: &BTreeMap<String, String>, base: &str) -> Value {
    let plain = query
        .get("sysparm_exclude_reference_link")
        .is_some_and(|v| v == "true");
    match REFERENCES.iter().find(|(column, _)| *column == name) {
        Some((_, table)) if !plain && value.as_str().is_some_and(|v| !v.is_empty()) => {
            let id = value.as_str().unwrap_or_default();
            json!({ "link": format!("{base}/api/now/table/{table}/{id}"), "value": id })
        }
        _ => value,
    }
}

/// Only the fields asked for in `sysparm_fields`, as ServiceNow answers.
fn project(record: &Record, query: &BTreeMap<String, String>, base: &str) -> Value {
    let names: Vec<String> = match query.get("sysparm_fields") {
        Some(fields) => fields.split(',').map(str::to_string).collect(),
        None => record.keys().cloned().collect(),
    };
    Value::Object(
        names
            .into_iter()
            .map(|name| {
                let value = record.get(&name).cloned().unwrap_or(json!(""));
                let value = shown(&name, value, query, base);
                (name, value)
            })
            .collect(),
    )
}

/// Whether a record meets an encoded query: conditions joined by `^`, each `name=value`
/// or `nameINa,b`; `ORDERBY…` and time conditions (`sys_updated_on>=…`) are not
/// filters here (every record counts as recently updated).
fn matches(record: &Record, encoded: &str) -> bool {
    encoded.split('^').all(|condition| {
        let text = |name: &str| record.get(name).and_then(Value::as_str).unwrap_or_default();
        if condition.starts_with("ORDERBY") || condition.contains(">=") || condition.is_empty() {
            return true;
        }
        if let Some((name, value)) = condition.split_once('=') {
            return text(name) == value;
        }
        if let Some((name, list)) = condition.split_once("IN")
            && name.chars().all(|c| c.is_ascii_lowercase() || c == '_')
        {
            return list.split(',').any(|v| v == text(name));
        }
        false
    })
}

async fn list_records(
    State(fake): State<FakeServiceNow>,
    Path(table): Path<String>,
    Query(query): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
) -> (StatusCode, Json<Value>) {
    let mut inner = fake.lock();
    let encoded = query.get("sysparm_query").cloned().unwrap_or_default();
    inner.calls.push(format!("GET {table}?{encoded}"));
    if let Err(refused) = authorised(&mut inner, &headers) {
        return refused;
    }
    let mut result: Vec<Value> = inner
        .tables
        .get(&table)
        .into_iter()
        .flat_map(|records| records.values())
        .filter(|r| matches(r, &encoded))
        .map(|r| project(r, &query, &fake.url))
        .collect();
    if encoded.contains("ORDERBYDESC") {
        result.reverse();
    }
    if let Some(limit) = query.get("sysparm_limit").and_then(|l| l.parse().ok()) {
        result.truncate(limit);
    }
    // Table API v2 answers 200 with [] on no match.
    (StatusCode::OK, Json(json!({ "result": result })))
}

/// `POST /api/now/table/{table}`: one new record, 201 with it (its `sys_id`, and for an
/// incident a `number` such as `INC0010001`), as the Table API answers.
async fn create_record(
    State(fake): State<FakeServiceNow>,
    Path(table): Path<String>,
    Query(query): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
    Json(body): Json<Record>,
) -> (StatusCode, Json<Value>) {
    let mut inner = fake.lock();
    inner.calls.push(format!("POST {table}"));
    if let Err(refused) = authorised(&mut inner, &headers) {
        return refused;
    }
    if inner.denied.iter().any(|(t, _)| t == &table) {
        return failure(
            StatusCode::FORBIDDEN,
            "Operation Failed",
            "ACL Exception Insert Failed due to security constraints",
        );
    }
    inner.next_id += 1;
    let sys_id = format!("n{:031}", inner.next_id);
    let mut record = Record::new();
    for (name, value) in body {
        // Every field is a string in the Table API.
        let text = value
            .as_str()
            .map_or_else(|| value.to_string(), str::to_string);
        record.insert(name, json!(text));
    }
    record.insert("sys_id".into(), json!(sys_id));
    if table == "incident" {
        record.insert(
            "number".into(),
            json!(format!("INC{:07}", 10_000 + inner.next_id)),
        );
        record.insert("state".into(), json!("1"));
    }
    let shown = project(&record, &query, &fake.url);
    inner
        .tables
        .entry(table)
        .or_default()
        .insert(sys_id, record);
    (StatusCode::CREATED, Json(json!({ "result": shown })))
}

async fn get_record(
    State(fake): State<FakeServiceNow>,
    Path((table, sys_id)): Path<(String, String)>,
    Query(query): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
) -> (StatusCode, Json<Value>) {
    let mut inner = fake.lock();
    inner.calls.push(format!("GET {table}/{sys_id}"));
    if let Err(refused) = authorised(&mut inner, &headers) {
        return refused;
    }
    match inner.tables.get(&table).and_then(|r| r.get(&sys_id)) {
        Some(record) => (
            StatusCode::OK,
            Json(json!({ "result": project(record, &query, &fake.url) })),
        ),
        None => failure(
            StatusCode::NOT_FOUND,
            "No Record found",
            "Record doesn't exist or ACL restricts the record retrieval",
        ),
    }
}

async fn patch_record(
    State(fake): State<FakeServiceNow>,
    Path((table, sys_id)): Path<(String, String)>,
    Query(query): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
    Json(body): Json<Record>,
) -> (StatusCode, Json<Value>) {
    let mut inner = fake.lock();
    inner.calls.push(format!("PATCH {table}/{sys_id}"));
    if let Err(refused) = authorised(&mut inner, &headers) {
        return refused;
    }
    let Some(mut record) = inner
        .tables
        .get(&table)
        .and_then(|r| r.get(&sys_id))
        .cloned()
    else {
        return failure(StatusCode::NOT_FOUND, "No Record found", "");
    };
    let before = record.clone();
    let mut notes = Vec::new();
    for (name, value) in body {
        let Some(text) = value.as_str() else {
            return failure(
                StatusCode::BAD_REQUEST,
                &format!("{name} must be a string"),
                "",
            );
        };
        if inner.denied.contains(&(table.clone(), name.clone())) {
            continue;
        }
        if name == "work_notes" {
            // A journal field: each write appends an entry; reads show "".
            notes.push(text.to_string());
            continue;
        }
        if name == "state" {
            let active = if CLOSED_STATES.contains(&text) {
                "false"
            } else {
                "true"
            };
            record.insert("active".into(), json!(active));
        }
        record.insert(name, json!(text));
    }
    let changed = record != before || !notes.is_empty();
    if changed {
        let count = before["sys_mod_count"]
            .as_str()
            .and_then(|c| c.parse::<u64>().ok())
            .unwrap_or(0);
        record.insert("sys_mod_count".into(), json!((count + 1).to_string()));
    }
    for note in notes {
        inner.next_id += 1;
        let entry_id = format!("j{:031}", inner.next_id);
        let mut entry = Map::new();
        for (name, value) in [
            ("sys_id", entry_id.as_str()),
            ("element_id", sys_id.as_str()),
            ("element", "work_notes"),
            ("name", table.as_str()),
            ("value", note.as_str()),
        ] {
            entry.insert(name.to_string(), json!(value));
        }
        inner
            .tables
            .entry("sys_journal_field".to_string())
            .or_default()
            .insert(entry_id, entry);
    }
    inner
        .tables
        .entry(table.clone())
        .or_default()
        .insert(sys_id.clone(), record.clone());
    let rule_fires = table == "sc_req_item"
        && ["state", "approval"]
            .iter()
            .any(|f| before.get(*f) != record.get(*f));
    if rule_fires && let Some(url) = inner.business_rule.clone() {
        tokio::spawn(fire_business_rule(
            fake.clone(),
            url,
            rule_body(&sys_id, &record),
        ));
    }
    (
        StatusCode::OK,
        Json(json!({ "result": project(&record, &query, &fake.url) })),
    )
}

/// The Business Rule's call to writ: signed, sent once, never retried (`executeAsync`).
async fn fire_business_rule(fake: FakeServiceNow, url: String, body: Vec<u8>) {
    use writ_itsm::webhook::{SERVICENOW_SIGNATURE, SERVICENOW_TIMESTAMP, sign};
    let sent_ms = super::now_ms();
    let answer = super::answer_of(
        reqwest::Client::new()
            .post(url)
            .header("content-type", "application/json")
            .header(SERVICENOW_TIMESTAMP, sent_ms.to_string())
            .header(
                SERVICENOW_SIGNATURE,
                sign(ItsmKind::ServiceNow, WEBHOOK_SECRET, &body, sent_ms),
            )
            .body(body),
    )
    .await;
    fake.lock().rule_answers.push(answer);
}

/// `POST /oauth_token.do` (form): `grant_type=client_credentials` with the client's id
/// and secret, in the form or as basic auth; a standard OAuth token response.
async fn issue_token(
    State(fake): State<FakeServiceNow>,
    headers: HeaderMap,
    Form(form): Form<BTreeMap<String, String>>,
) -> (StatusCode, Json<Value>) {
    use base64::Engine as _;
    let mut inner = fake.lock();
    inner.calls.push("POST oauth_token.do".to_string());
    let from_header = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|pair| {
            pair.split_once(':')
                .map(|(id, secret)| (id.to_string(), secret.to_string()))
        });
    let credentials = from_header.or_else(|| {
        Some((
            form.get("client_id")?.clone(),
            form.get("client_secret")?.clone(),
        ))
    });
    let bad_client = (
        StatusCode::UNAUTHORIZED,
        Json(json!({ "error": "invalid_client", "error_description": "access_denied" })),
    );
    if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({ "error": "unsupported_grant_type" })),
        );
    }
    if credentials != Some((CLIENT_ID.to_string(), CLIENT_SECRET.to_string())) {
        return bad_client;
    }
    inner.next_id += 1;
    let token = format!("token-{}", inner.next_id);
    let Some(oauth) = inner.oauth.as_mut() else {
        return bad_client;
    };
    oauth.valid.insert(
        token.clone(),
        Instant::now() + Duration::from_secs(oauth.lifetime_seconds),
    );
    oauth.issued += 1;
    (
        StatusCode::OK,
        Json(json!({
            "access_token": token, "token_type": "Bearer",
            "expires_in": oauth.lifetime_seconds, "scope": "useraccount",
        })),
    )
}
