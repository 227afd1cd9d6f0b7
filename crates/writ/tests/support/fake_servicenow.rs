//! A fake ServiceNow for end-to-end tests: the Table API on `sc_req_item` as ServiceNow
//! documents it (docs.servicenow.com "Table API"): `{"result": ...}` envelopes, every
//! value a string, empty fields `""`, plain sys_ids with
//! `sysparm_exclude_reference_link=true`, journal fields (`work_notes`) write-only.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use serde_json::{Map, Value, json};

pub const USER: &str = "writ.integration";
pub const PASSWORD: &str = "servicenow-password";
pub const WEBHOOK_SECRET: &str = "servicenow-webhook-secret";

#[derive(Default)]
struct Inner {
    /// Records by sys_id.
    items: BTreeMap<String, Map<String, Value>>,
    /// Work notes by sys_id, in order.
    work_notes: BTreeMap<String, Vec<String>>,
    calls: Vec<String>,
    /// `sysapproval_approver` records: (sysapproval = item sys_id, approver sys_id, state).
    approvals: Vec<(String, String, String)>,
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
) -> Map<String, Value> {
    let mut record = Map::new();
    for (name, value) in [
        ("sys_id", sys_id),
        ("number", number),
        ("state", state),
        ("active", if state == "3" { "false" } else { "true" }),
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
            .route("/api/now/table/sc_req_item", get(list_items))
            .route(
                "/api/now/table/sc_req_item/{sys_id}",
                get(get_item).patch(patch_item),
            )
            .route("/api/now/table/sysapproval_approver", get(list_approvals))
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

    pub fn put_item(&self, record: Map<String, Value>) {
        let sys_id = record["sys_id"].as_str().unwrap_or_default().to_string();
        self.lock().items.insert(sys_id, record);
    }

    pub fn field(&self, sys_id: &str, name: &str) -> String {
        self.lock()
            .items
            .get(sys_id)
            .and_then(|r| r.get(name))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    }

    pub fn work_notes(&self, sys_id: &str) -> Vec<String> {
        self.lock()
            .work_notes
            .get(sys_id)
            .cloned()
            .unwrap_or_default()
    }

    /// Adds an approval record for the item `sys_id`.
    pub fn add_approval(&self, sys_id: &str, approver: &str, state: &str) {
        self.lock()
            .approvals
            .push((sys_id.to_string(), approver.to_string(), state.to_string()));
    }

    pub fn calls(&self) -> Vec<String> {
        self.lock().calls.clone()
    }

    /// The body the Business Rule in docs/itsm.md sends for `sys_id`.
    pub fn webhook_body(&self, sys_id: &str) -> Vec<u8> {
        let inner = self.lock();
        let record = inner.items.get(sys_id).cloned().unwrap_or_default();
        serde_json::to_vec(&json!({
            "number": record.get("number"), "sys_id": sys_id, "operation": "update",
            "state": record.get("state"), "sys_mod_count": record.get("sys_mod_count"),
        }))
        .unwrap_or_default()
    }
}

fn authorised(headers: &HeaderMap) -> bool {
    use base64::Engine as _;
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"))
    );
    headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(expected.as_str())
}

fn unauthorised() -> (StatusCode, Json<Value>) {
    (
        StatusCode::UNAUTHORIZED,
        Json(
            json!({ "error": { "message": "User Not Authenticated", "detail": "Required to provide Auth information" }, "status": "failure" }),
        ),
    )
}

/// Only the fields asked for in `sysparm_fields`, as ServiceNow answers.
fn project(record: &Map<String, Value>, query: &BTreeMap<String, String>) -> Value {
    match query.get("sysparm_fields") {
        Some(fields) => Value::Object(
            fields
                .split(',')
                .map(|f| (f.to_string(), record.get(f).cloned().unwrap_or(json!(""))))
                .collect(),
        ),
        None => Value::Object(record.clone()),
    }
}

async fn list_items(
    State(fake): State<FakeServiceNow>,
    Query(query): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
) -> (StatusCode, Json<Value>) {
    let mut inner = fake.lock();
    inner.calls.push(format!(
        "GET sc_req_item?{}",
        query.get("sysparm_query").cloned().unwrap_or_default()
    ));
    if !authorised(&headers) {
        return unauthorised();
    }
    // The encoded queries writ sends: number=<RITM>, or the poller's
    // stateIN<a,b>^sys_updated_on>=...^ORDERBYsys_updated_on (every item counts as
    // recently updated). Table API v2 answers 200 with [] on no match.
    let encoded = query.get("sysparm_query").cloned().unwrap_or_default();
    let text = |record: &Map<String, Value>, name: &str| {
        record.get(name).and_then(Value::as_str).map(str::to_string)
    };
    let matches = |record: &Map<String, Value>| match encoded.strip_prefix("stateIN") {
        Some(rest) => {
            let states = rest.split('^').next().unwrap_or_default();
            let state = text(record, "state");
            states.split(',').any(|s| state.as_deref() == Some(s))
        }
        None => encoded.strip_prefix("number=").map(str::to_string) == text(record, "number"),
    };
    let result: Vec<Value> = inner
        .items
        .values()
        .filter(|r| matches(r))
        .map(|r| project(r, &query))
        .collect();
    (StatusCode::OK, Json(json!({ "result": result })))
}

async fn get_item(
    State(fake): State<FakeServiceNow>,
    Path(sys_id): Path<String>,
    Query(query): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
) -> (StatusCode, Json<Value>) {
    let mut inner = fake.lock();
    inner.calls.push(format!("GET sc_req_item/{sys_id}"));
    if !authorised(&headers) {
        return unauthorised();
    }
    match inner.items.get(&sys_id) {
        Some(record) => (
            StatusCode::OK,
            Json(json!({ "result": project(record, &query) })),
        ),
        None => (
            StatusCode::NOT_FOUND,
            Json(
                json!({ "error": { "message": "No Record found", "detail": "Record doesn't exist or ACL restricts the record retrieval" }, "status": "failure" }),
            ),
        ),
    }
}

async fn patch_item(
    State(fake): State<FakeServiceNow>,
    Path(sys_id): Path<String>,
    headers: HeaderMap,
    Json(body): Json<Map<String, Value>>,
) -> (StatusCode, Json<Value>) {
    let mut inner = fake.lock();
    inner.calls.push(format!("PATCH sc_req_item/{sys_id}"));
    if !authorised(&headers) {
        return unauthorised();
    }
    let Some(mut record) = inner.items.get(&sys_id).cloned() else {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({ "error": { "message": "No Record found" }, "status": "failure" })),
        );
    };
    for (name, value) in body {
        let Some(text) = value.as_str() else {
            return (
                StatusCode::BAD_REQUEST,
                Json(
                    json!({ "error": { "message": format!("{name} must be a string") }, "status": "failure" }),
                ),
            );
        };
        if name == "work_notes" {
            // A journal field: each write appends an entry; reads show "".
            inner
                .work_notes
                .entry(sys_id.clone())
                .or_default()
                .push(text.to_string());
            continue;
        }
        if name == "state" && ["3", "4", "7"].contains(&text) {
            record.insert("active".into(), json!("false"));
        }
        record.insert(name, json!(text));
    }
    inner.items.insert(sys_id, record.clone());
    (StatusCode::OK, Json(json!({ "result": record })))
}

/// `GET /api/now/table/sysapproval_approver?sysparm_query=sysapproval=<sys_id>^state=approved`.
async fn list_approvals(
    State(fake): State<FakeServiceNow>,
    Query(query): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
) -> (StatusCode, Json<Value>) {
    let mut inner = fake.lock();
    let encoded = query.get("sysparm_query").cloned().unwrap_or_default();
    inner
        .calls
        .push(format!("GET sysapproval_approver?{encoded}"));
    if !authorised(&headers) {
        return unauthorised();
    }
    // Encoded query: conditions joined by ^, each name=value.
    let conditions: Vec<(&str, &str)> = encoded
        .split('^')
        .filter_map(|c| c.split_once('='))
        .collect();
    let result: Vec<Value> = inner
        .approvals
        .iter()
        .filter(|(item, _, state)| {
            conditions.iter().all(|(name, value)| match *name {
                "sysapproval" => item == value,
                "state" => state == value,
                _ => true,
            })
        })
        .map(|(item, approver, state)| {
            let mut record = Map::new();
            record.insert("sysapproval".into(), json!(item));
            record.insert("approver".into(), json!(approver));
            record.insert("state".into(), json!(state));
            record.insert("source_table".into(), json!("sc_req_item"));
            project(&record, &query)
        })
        .collect();
    (StatusCode::OK, Json(json!({ "result": result })))
}
