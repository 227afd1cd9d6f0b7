//! A fake Jira Cloud for end-to-end tests: just the endpoints writ uses, shaped as
//! Jira's REST v3 answers them (developer.atlassian.com/cloud/jira/platform/rest/v3,
//! "Get issue"), with basic auth checked. Tests edit its issues and see its calls.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use serde_json::{Value, json};

pub const USER: &str = "writ@acme.example";
pub const API_TOKEN: &str = "jira-api-token";
pub const WEBHOOK_SECRET: &str = "a-webhook-secret-of-some-length";

#[derive(Default)]
struct Inner {
    issues: BTreeMap<String, Value>,
    /// Every call as "METHOD path".
    calls: Vec<String>,
    /// Answer every call with this status (an outage).
    failing: Option<u16>,
    /// Answer every write (comments, transitions) with this status; reads still work.
    failing_writes: Option<u16>,
    /// Comments per issue key, as plain text, in the order they were added.
    comments: BTreeMap<String, Vec<String>>,
    /// JSM approvers per issue key: (accountId, approverDecision).
    approvals: BTreeMap<String, Vec<(String, String)>>,
    /// Comments a JSM customer would see (not flagged `sd.public.comment` internal).
    public_comments: BTreeMap<String, Vec<String>>,
    /// The "Done" screen requires `fields.resolution` (as many Jira workflows do).
    resolution_required: bool,
    /// Where the admin webhook posts `jira:issue_updated`, when it is registered.
    webhook: Option<String>,
    /// What writ answered each webhook call: (status, body).
    webhook_answers: Vec<(u16, Value)>,
    deliveries: u64,
    /// Project keys issues may be created in.
    projects: std::collections::BTreeSet<String>,
}

/// Workflow transitions every issue offers, as `GET .../transitions` lists them.
const TRANSITIONS: &[(&str, &str, &str)] = &[
    ("21", "In Progress", "indeterminate"),
    ("31", "Done", "done"),
];

#[derive(Clone, Default)]
pub struct FakeJira {
    inner: Arc<Mutex<Inner>>,
    pub url: String,
}

/// An issue as `GET /rest/api/3/issue/{key}` returns it. `fields` holds the custom fields.
/// The Retry-After this fake sends with a 429, in seconds.
pub const RATE_LIMIT_RETRY_AFTER: &str = "120";

pub fn issue(key: &str, status: &str, reporter: &str, custom: Value) -> Value {
    let id = 10_000 + key.bytes().map(u64::from).sum::<u64>();
    let mut fields = json!({
        "summary": format!("Access for {key}"),
        "status": { "self": "https://acme.atlassian.net/rest/api/3/status/3", "id": "3", "name": status,
                    "statusCategory": { "id": 4, "key": if status == "Done" { "done" } else { "indeterminate" }, "name": "In Progress" } },
        "issuetype": { "id": "10004", "name": "Service Request", "subtask": false },
        "reporter": { "accountId": reporter, "displayName": reporter, "active": true },
        "assignee": null,
    });
    if let (Some(fields), Some(custom)) = (fields.as_object_mut(), custom.as_object()) {
        fields.extend(custom.clone());
    }
    json!({ "expand": "renderedFields,names", "id": id.to_string(), "self": format!("https://acme.atlassian.net/rest/api/3/issue/{id}"), "key": key, "fields": fields })
}

impl FakeJira {
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
            .route("/rest/api/3/search/jql", get(search))
            .route("/rest/api/3/issue", post(create_issue))
            .route("/rest/api/3/issue/{key}", get(get_issue))
            .route("/rest/api/3/issue/{key}/comment", post(add_comment))
            .route(
                "/rest/api/3/issue/{key}/transitions",
                get(list_transitions).post(do_transition),
            )
            .route(
                "/rest/servicedeskapi/request/{key}/approval",
                get(list_approvals),
            )
            // Jira's rate limiting answers 429 with the seconds to wait in Retry-After.
            .layer(axum::middleware::map_response(
                |mut response: axum::response::Response| async move {
                    if response.status() == StatusCode::TOO_MANY_REQUESTS {
                        response.headers_mut().insert(
                            axum::http::header::RETRY_AFTER,
                            axum::http::HeaderValue::from_static(RATE_LIMIT_RETRY_AFTER),
                        );
                    }
                    response
                },
            ))
            .with_state(fake.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        fake
    }

    /// A project issues may be created in (`POST /rest/api/3/issue`).
    pub fn put_project(&self, key: &str) {
        self.lock().projects.insert(key.to_string());
    }

    /// The issue as the fake holds it now.
    pub fn issue_as_held(&self, key: &str) -> Option<Value> {
        self.lock().issues.get(key).cloned()
    }

    pub fn put_issue(&self, issue: Value) {
        let key = issue["key"].as_str().unwrap_or_default().to_string();
        self.lock().issues.insert(key, issue);
    }

    /// Writes fail with `status` (e.g. 429) while reading tickets still works.
    pub fn set_failing_writes(&self, status: Option<u16>) {
        self.lock().failing_writes = status;
    }

    /// Registers the admin webhook of docs/itsm.md at `url`: every update — writ's own
    /// comments and transitions included — is delivered, signed, once.
    pub fn register_webhook(&self, url: &str) {
        self.lock().webhook = Some(url.to_string());
    }

    /// What writ answered each webhook call, in order.
    pub fn webhook_answers(&self) -> Vec<(u16, Value)> {
        self.lock().webhook_answers.clone()
    }

    /// Delivers `jira:issue_updated` for `key` if the webhook is registered.
    fn updated(&self, inner: &mut Inner, key: &str) {
        let Some(url) = inner.webhook.clone() else {
            return;
        };
        inner.deliveries += 1;
        let delivery = format!("fake-jira-delivery-{}", inner.deliveries);
        let body = body_about(inner, key, super::now_ms());
        tokio::spawn(fire_webhook(self.clone(), url, delivery, body));
    }

    pub fn set_failing(&self, status: Option<u16>) {
        self.lock().failing = status;
    }

    /// Sets the JSM approval's approvers and their decisions (`approved`, `declined`, `pending`).
    pub fn set_approvers(&self, key: &str, approvers: &[(&str, &str)]) {
        let approvers = approvers
            .iter()
            .map(|(a, d)| ((*a).to_string(), (*d).to_string()))
            .collect();
        self.lock().approvals.insert(key.to_string(), approvers);
    }

    pub fn comments(&self, key: &str) -> Vec<String> {
        self.lock().comments.get(key).cloned().unwrap_or_default()
    }

    /// The comments a JSM portal customer would see.
    pub fn public_comments(&self, key: &str) -> Vec<String> {
        self.lock()
            .public_comments
            .get(key)
            .cloned()
            .unwrap_or_default()
    }

    pub fn set_resolution_required(&self, required: bool) {
        self.lock().resolution_required = required;
    }

    pub fn resolution(&self, key: &str) -> Option<String> {
        self.lock().issues.get(key).and_then(|i| {
            i["fields"]["resolution"]["name"]
                .as_str()
                .map(str::to_string)
        })
    }

    pub fn status(&self, key: &str) -> String {
        self.lock()
            .issues
            .get(key)
            .and_then(|i| i["fields"]["status"]["name"].as_str().map(str::to_string))
            .unwrap_or_default()
    }

    pub fn calls(&self) -> Vec<String> {
        self.lock().calls.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A `jira:issue_updated` webhook body for `key`, sent at `timestamp_ms`.
    pub fn webhook_body(&self, key: &str, timestamp_ms: i64) -> Vec<u8> {
        body_about(&self.lock(), key, timestamp_ms)
    }
}

fn body_about(inner: &Inner, key: &str, timestamp_ms: i64) -> Vec<u8> {
    let issue = inner
        .issues
        .get(key)
        .cloned()
        .unwrap_or_else(|| json!({ "key": key }));
    serde_json::to_vec(&json!({
        "timestamp": timestamp_ms, "webhookEvent": "jira:issue_updated", "issue_event_type_name": "issue_generic",
        "user": { "accountId": "557058:f00", "displayName": "Jira Automation" },
        "issue": issue,
        "changelog": { "id": "10500", "items": [{ "field": "status", "fieldtype": "jira", "fieldId": "status", "from": "10005", "fromString": "Open", "to": "10006", "toString": "Approved" }] },
    }))
    .unwrap_or_default()
}

/// One admin-webhook delivery, signed as Jira signs it (`X-Hub-Signature`, hex).
async fn fire_webhook(fake: FakeJira, url: String, delivery: String, body: Vec<u8>) {
    use writ_config::ItsmKind;
    use writ_itsm::webhook::{JIRA_DELIVERY, JIRA_SIGNATURE, sign};
    let answer = super::answer_of(
        reqwest::Client::new()
            .post(url)
            .header("content-type", "application/json")
            .header(JIRA_DELIVERY, delivery)
            .header(
                JIRA_SIGNATURE,
                sign(ItsmKind::Jira, WEBHOOK_SECRET, &body, 0),
            )
            .body(body),
    )
    .await;
    fake.lock().webhook_answers.push(answer);
}

fn authorised(headers: &HeaderMap) -> bool {
    use base64::Engine as _;
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{API_TOKEN}"))
    );
    headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(expected.as_str())
}

/// `GET /rest/api/3/search/jql`: the JQL writ's poller sends, `status in ("A", "B") AND
/// updated >= "-Nm" ...`; every issue counts as recently updated.
async fn search(
    State(fake): State<FakeJira>,
    Query(query): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
) -> (StatusCode, Json<Value>) {
    let mut inner = fake.lock();
    let jql = query.get("jql").cloned().unwrap_or_default();
    inner
        .calls
        .push(format!("GET /rest/api/3/search/jql {jql}"));
    if !authorised(&headers) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({ "errorMessages": ["unauthorized"] })),
        );
    }
    let statuses: Vec<String> = jql
        .split_once("status in (")
        .and_then(|(_, rest)| rest.split_once(')'))
        .map(|(list, _)| {
            list.split(',')
                .map(|s| s.trim().trim_matches('"').to_string())
                .collect()
        })
        .unwrap_or_default();
    let issues: Vec<Value> = inner
        .issues
        .values()
        .filter(|issue| {
            issue["fields"]["status"]["name"]
                .as_str()
                .is_some_and(|name| statuses.iter().any(|s| s == name))
        })
        .map(|issue| {
            json!({ "id": issue["id"], "key": issue["key"],
                    "fields": { "updated": issue["fields"]["updated"].as_str().unwrap_or("2026-12-01T10:00:00.000+0000") } })
        })
        .collect();
    (
        StatusCode::OK,
        Json(json!({ "issues": issues, "isLast": true })),
    )
}

async fn get_issue(
    State(fake): State<FakeJira>,
    Path(key): Path<String>,
    Query(query): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
) -> (StatusCode, Json<Value>) {
    let mut inner = fake.lock();
    inner.calls.push(format!("GET /rest/api/3/issue/{key}"));
    if let Some(status) = inner.failing {
        return (
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            Json(json!({ "errorMessages": ["Internal server error"], "errors": {} })),
        );
    }
    if !authorised(&headers) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(
                json!({ "errorMessages": ["You are not authenticated. Authentication required to perform this operation."], "errors": {} }),
            ),
        );
    }
    let Some(mut issue) = inner.issues.get(&key).cloned() else {
        return (
            StatusCode::NOT_FOUND,
            Json(
                json!({ "errorMessages": ["Issue does not exist or you do not have permission to see it."], "errors": {} }),
            ),
        );
    };
    // Jira returns only the fields asked for.
    if let Some(wanted) = query.get("fields") {
        let wanted: Vec<&str> = wanted.split(',').collect();
        if let Some(fields) = issue["fields"].as_object_mut() {
            fields.retain(|name, _| wanted.contains(&name.as_str()));
        }
    }
    (StatusCode::OK, Json(issue))
}

/// The text of an ADF document, one line per paragraph.
fn adf_text(doc: &Value) -> String {
    doc["content"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|paragraph| {
            paragraph["content"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|t| t["text"].as_str())
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Checks auth, outage and existence shared by every endpoint; records the call.
fn guard(
    inner: &mut Inner,
    call: String,
    headers: &HeaderMap,
    key: &str,
) -> Result<(), (StatusCode, Json<Value>)> {
    inner.calls.push(call);
    if let Some(status) = inner.failing.or(inner.failing_writes) {
        return Err((
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            Json(json!({ "errorMessages": ["Internal server error"], "errors": {} })),
        ));
    }
    if !authorised(headers) {
        return Err((
            StatusCode::UNAUTHORIZED,
            Json(json!({ "errorMessages": ["You are not authenticated."], "errors": {} })),
        ));
    }
    if !inner.issues.contains_key(key) {
        return Err((
            StatusCode::NOT_FOUND,
            Json(
                json!({ "errorMessages": ["Issue does not exist or you do not have permission to see it."], "errors": {} }),
            ),
        ));
    }
    Ok(())
}

/// `POST /rest/api/3/issue`: 201 with `{"id", "key", "self"}`. The project must be one
/// the fake knows (`put_project`), the issue type named, the description ADF.
async fn create_issue(
    State(fake): State<FakeJira>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    let mut inner = fake.lock();
    inner.calls.push("POST /rest/api/3/issue".to_string());
    if let Some(status) = inner.failing.or(inner.failing_writes) {
        return (
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            Json(json!({ "errorMessages": ["Internal server error"], "errors": {} })),
        );
    }
    if !authorised(&headers) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({ "errorMessages": ["You are not authenticated."], "errors": {} })),
        );
    }
    let fields = &body["fields"];
    let project = fields["project"]["key"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let mut errors = serde_json::Map::new();
    if !inner.projects.contains(&project) {
        errors.insert("project".into(), json!("valid project is required"));
    }
    if fields["issuetype"]["name"]
        .as_str()
        .is_none_or(str::is_empty)
    {
        errors.insert("issuetype".into(), json!("Specify an issue type"));
    }
    if fields["summary"].as_str().is_none_or(str::is_empty) {
        errors.insert(
            "summary".into(),
            json!("You must specify a summary of the issue."),
        );
    }
    if fields["description"]["type"] != "doc" {
        errors.insert(
            "description".into(),
            json!("Operation value must be an Atlassian Document"),
        );
    }
    if !errors.is_empty() {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({ "errorMessages": [], "errors": errors })),
        );
    }
    let number = 1 + inner
        .issues
        .keys()
        .filter(|k| k.starts_with(&format!("{project}-")))
        .count();
    let key = format!("{project}-{number}");
    let mut created = issue(&key, "Open", "writ", json!({}));
    created["fields"]["summary"] = fields["summary"].clone();
    created["fields"]["issuetype"] =
        json!({ "id": "10010", "name": fields["issuetype"]["name"], "subtask": false });
    created["fields"]["description"] = fields["description"].clone();
    created["fields"]["labels"] = fields["labels"].clone();
    let id = created["id"].clone();
    inner.issues.insert(key.clone(), created);
    (
        StatusCode::CREATED,
        Json(
            json!({ "id": id, "key": key, "self": format!("https://acme.atlassian.net/rest/api/3/issue/{}", id.as_str().unwrap_or_default()) }),
        ),
    )
}

/// `POST /rest/api/3/issue/{key}/comment`: 201 with the comment. The body must be ADF.
async fn add_comment(
    State(fake): State<FakeJira>,
    Path(key): Path<String>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    let mut inner = fake.lock();
    if let Err(error) = guard(
        &mut inner,
        format!("POST /rest/api/3/issue/{key}/comment"),
        &headers,
        &key,
    ) {
        return error;
    }
    if body["body"]["type"] != "doc" || body["body"]["version"] != 1 {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({ "errorMessages": ["Comment body is not valid!"], "errors": {} })),
        );
    }
    let text = adf_text(&body["body"]);
    let internal = body["properties"].as_array().is_some_and(|properties| {
        properties
            .iter()
            .any(|p| p["key"] == "sd.public.comment" && p["value"]["internal"] == true)
    });
    if !internal {
        inner
            .public_comments
            .entry(key.clone())
            .or_default()
            .push(text.clone());
    }
    let comments = inner.comments.entry(key.clone()).or_default();
    comments.push(text);
    let id = 10_000 + comments.len();
    fake.updated(&mut inner, &key);
    (
        StatusCode::CREATED,
        Json(json!({ "id": id.to_string(), "body": body["body"], "jsdPublic": false })),
    )
}

async fn list_transitions(
    State(fake): State<FakeJira>,
    Path(key): Path<String>,
    headers: HeaderMap,
) -> (StatusCode, Json<Value>) {
    let mut inner = fake.lock();
    if let Err(error) = guard(
        &mut inner,
        format!("GET /rest/api/3/issue/{key}/transitions"),
        &headers,
        &key,
    ) {
        return error;
    }
    let transitions: Vec<Value> = TRANSITIONS
        .iter()
        .map(|(id, name, category)| json!({ "id": id, "name": name, "to": { "id": format!("100{id}"), "name": name,
            "statusCategory": { "id": 3, "key": category, "name": name } }, "hasScreen": false, "isGlobal": true,
            "isInitial": false, "isAvailable": true, "isConditional": false, "looped": false }))
        .collect();
    (
        StatusCode::OK,
        Json(json!({ "expand": "transitions", "transitions": transitions })),
    )
}

/// `POST /rest/api/3/issue/{key}/transitions`: 204; moves the issue and adds the comment.
async fn do_transition(
    State(fake): State<FakeJira>,
    Path(key): Path<String>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    let mut inner = fake.lock();
    if let Err(error) = guard(
        &mut inner,
        format!("POST /rest/api/3/issue/{key}/transitions"),
        &headers,
        &key,
    ) {
        return error;
    }
    let Some((_, name, category)) = TRANSITIONS
        .iter()
        .find(|(id, _, _)| body["transition"]["id"] == *id)
    else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({ "errorMessages": ["Transition id is not valid"], "errors": {} })),
        );
    };
    if *category == "done"
        && inner.resolution_required
        && !body["fields"]["resolution"]["name"].is_string()
    {
        return (
            StatusCode::BAD_REQUEST,
            Json(
                json!({ "errorMessages": [], "errors": { "resolution": "Resolution is required." } }),
            ),
        );
    }
    if let Some(issue) = inner.issues.get_mut(&key) {
        issue["fields"]["status"]["name"] = json!(name);
        issue["fields"]["status"]["statusCategory"]["key"] = json!(category);
        if let Some(resolution) = body["fields"]["resolution"].as_object() {
            issue["fields"]["resolution"] = json!(resolution);
        }
    }
    // A comment added with a transition carries no internal flag: customers see it.
    if let Some(comments) = body["update"]["comment"].as_array() {
        for comment in comments {
            let text = adf_text(&comment["add"]["body"]);
            inner
                .comments
                .entry(key.clone())
                .or_default()
                .push(text.clone());
            inner
                .public_comments
                .entry(key.clone())
                .or_default()
                .push(text);
        }
    }
    fake.updated(&mut inner, &key);
    (StatusCode::NO_CONTENT, Json(Value::Null))
}

/// `GET /rest/servicedeskapi/request/{key}/approval`: a `PagedApproval` with one approval.
async fn list_approvals(
    State(fake): State<FakeJira>,
    Path(key): Path<String>,
    headers: HeaderMap,
) -> (StatusCode, Json<Value>) {
    let mut inner = fake.lock();
    if let Err(error) = guard(
        &mut inner,
        format!("GET /rest/servicedeskapi/request/{key}/approval"),
        &headers,
        &key,
    ) {
        return error;
    }
    if headers
        .get("x-experimentalapi")
        .and_then(|v| v.to_str().ok())
        != Some("opt-in")
    {
        return (
            StatusCode::PRECONDITION_FAILED,
            Json(
                json!({ "errorMessage": "This API is experimental. Experimental APIs are not guaranteed to be stable within the preview period. You must set the header 'X-ExperimentalApi: opt-in' to opt into using this API." }),
            ),
        );
    }
    let approvers: Vec<Value> = inner
        .approvals
        .get(&key)
        .into_iter()
        .flatten()
        .map(|(account, decision)| json!({ "approver": { "accountId": account, "displayName": account, "active": true }, "approverDecision": decision }))
        .collect();
    let final_decision = if approvers
        .iter()
        .any(|a| a["approverDecision"] == "approved")
    {
        "approved"
    } else {
        "pending"
    };
    let values = if approvers.is_empty() {
        vec![]
    } else {
        vec![
            json!({ "id": "1", "name": "Please approve this request", "finalDecision": final_decision, "canAnswerApproval": false,
            "approvers": approvers, "createdDate": { "iso8601": "2026-11-20T09:15:02+0000", "epochMillis": 1_763_630_102_097_i64 },
            "completedDate": null, "_links": { "self": format!("https://acme.atlassian.net/rest/servicedeskapi/request/{key}/approval/1") } }),
        ]
    };
    let size = values.len();
    (
        StatusCode::OK,
        Json(
            json!({ "size": size, "start": 0, "limit": 50, "isLastPage": true, "values": values,
        "_links": { "self": "x", "base": "https://acme.atlassian.net", "context": "" } }),
        ),
    )
}
