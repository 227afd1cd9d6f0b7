//! `/scim/v2`: writ as a SCIM 2.0 service provider (RFC 7644) for the identity provider
//! that pushes people and groups (`[[scim]]` clients, each with a bearer secret). SCIM
//! speaks its own error format (`application/scim+json`), so these handlers answer
//! with SCIM bodies, not writ's. The engine keeps the records (`provisioning`); this
//! module reads the SCIM resources in and renders them out.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};
use writ_domain::{DirectoryGroup, DirectoryId, DirectoryUser};
use writ_engine::{EngineError, ErrorCode, GroupChange, UserChange};
use writ_scim::{
    ENTERPRISE_USER_SCHEMA, GROUP_SCHEMA, PatchOp, ScimError, ScimType, USER_SCHEMA,
    WRIT_USER_SCHEMA, discovery, filter::field,
};

use crate::AppState;

/// SCIM bodies may be larger than writ's own (a group with thousands of members).
const SCIM_BODY_SIZE_MAX_BYTES: usize = 4 * 1024 * 1024;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/Users", get(list_users).post(create_user))
        .route(
            "/Users/{id}",
            get(get_user)
                .put(replace_user)
                .patch(patch_user)
                .delete(delete_user),
        )
        .route("/Users/.search", post(search_users))
        .route("/Groups", get(list_groups).post(create_group))
        .route("/Groups/.search", post(search_groups))
        .route("/.search", post(search_all))
        .route(
            "/Groups/{id}",
            get(get_group)
                .put(replace_group)
                .patch(patch_group)
                .delete(delete_group),
        )
        .route("/ServiceProviderConfig", get(service_provider_config))
        .route("/ResourceTypes", get(resource_types))
        .route("/ResourceTypes/{id}", get(resource_type))
        .route("/Schemas", get(schemas))
        .route("/Schemas/{id}", get(schema))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(SCIM_BODY_SIZE_MAX_BYTES))
}

/// A SCIM answer: the body as `application/scim+json`, with the resource's ETag.
struct Scim {
    status: StatusCode,
    body: Value,
}

impl IntoResponse for Scim {
    fn into_response(self) -> Response {
        let etag = self.body["meta"]["version"]
            .as_str()
            .and_then(|v| HeaderValue::from_str(v).ok());
        let mut response = (self.status, axum::Json(self.body)).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(writ_scim::MEDIA_TYPE),
        );
        if let Some(etag) = etag {
            headers.insert(header::ETAG, etag);
        }
        response
    }
}

struct Failure(ScimError);

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.0.status).unwrap_or(StatusCode::BAD_REQUEST);
        if status.is_server_error() {
            tracing::error!(error = %self.0, "SCIM request failed");
        }
        let mut response = (status, axum::Json(self.0.body())).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(writ_scim::MEDIA_TYPE),
        );
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"writ-scim\""),
            );
        }
        response
    }
}

impl From<ScimError> for Failure {
    fn from(error: ScimError) -> Self {
        Self(error)
    }
}

impl From<EngineError> for Failure {
    fn from(error: EngineError) -> Self {
        let (status, scim_type) = match error.code {
            ErrorCode::DirectoryConflict => (409, Some(ScimType::Uniqueness)),
            ErrorCode::DirectoryInvalid => (400, Some(ScimType::InvalidValue)),
            ErrorCode::DirectoryVersionMismatch => (412, None),
            ErrorCode::NotFound => (404, None),
            ErrorCode::StorageUnavailable => (503, None),
            _ => (500, None),
        };
        Self(ScimError::new(status, scim_type, error.message))
    }
}

type Answer = Result<Scim, Failure>;

/// The `[[scim]]` client the bearer secret belongs to; anything else is a 401.
fn client(state: &AppState, headers: &HeaderMap) -> Result<String, Failure> {
    let refused = |detail: &str| Failure(ScimError::new(401, None, detail));
    if !state.engine.scim_enabled() {
        return Err(Failure(ScimError::new(
            404,
            None,
            "SCIM is not enabled: no [[scim]] client is configured",
        )));
    }
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| {
            value
                .strip_prefix("Bearer ")
                .or_else(|| value.strip_prefix("bearer "))
        })
        .ok_or_else(|| refused("a [[scim]] client's secret is needed as a bearer token"))?;
    state
        .engine
        .scim_client(bearer.trim())
        .ok_or_else(|| refused("the bearer token is not a [[scim]] client's secret"))
}

/// Where `/scim/v2` is, as the caller reached it (for `meta.location`).
fn base(state: &AppState, headers: &HeaderMap) -> String {
    format!("{}/scim/v2", crate::handlers::public_base(state, headers))
}

fn body_json(body: &Bytes) -> Result<Value, Failure> {
    let value: Value = serde_json::from_slice(body).map_err(|error| {
        ScimError::bad(
            ScimType::InvalidSyntax,
            format!("the body is not JSON: {error}"),
        )
    })?;
    if !value.is_object() {
        return Err(
            ScimError::bad(ScimType::InvalidSyntax, "the body is not a JSON object").into(),
        );
    }
    Ok(value)
}

fn parse_id(id: &str, what: &str) -> Result<DirectoryId, Failure> {
    id.parse()
        .map_err(|_| Failure(ScimError::not_found(what, id)))
}

/// `If-Match: W/"3"` → 3.
fn if_match(headers: &HeaderMap) -> Result<Option<u64>, Failure> {
    let Some(value) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    let text = value.to_str().unwrap_or_default().trim();
    if text == "*" {
        return Ok(None);
    }
    text.trim_start_matches("W/")
        .trim_matches('"')
        .parse()
        .map(Some)
        .map_err(|_| {
            Failure(ScimError::new(
                412,
                None,
                format!("If-Match {text:?} is not a version this server gave"),
            ))
        })
}

fn version(meta: &writ_domain::DirectoryMeta) -> String {
    format!("W/\"{}\"", meta.version)
}

fn meta(resource_type: &str, location: String, record: &writ_domain::DirectoryMeta) -> Value {
    json!({
        "resourceType": resource_type,
        "created": record.created.to_rfc3339(),
        "lastModified": record.last_modified.to_rfc3339(),
        "location": location,
        "version": version(record),
    })
}

/// What a client may not set: writ sets `id`, `meta` and a user's `groups`; a
/// password is never kept (writ signs nobody in with one).
fn strip_read_only(resource: &mut Value, extra: &[&str]) {
    if let Some(object) = resource.as_object_mut() {
        object.retain(|key, _| {
            let key = key.to_ascii_lowercase();
            !["id", "meta", "password"].contains(&key.as_str())
                && !extra.iter().any(|e| e.eq_ignore_ascii_case(&key))
        });
    }
}

fn user_change(mut resource: Value) -> Result<UserChange, Failure> {
    strip_read_only(&mut resource, &["groups"]);
    let user_name = field(&resource, "userName")
        .and_then(Value::as_str)
        .filter(|name| !name.trim().is_empty())
        .ok_or_else(|| ScimError::bad(ScimType::InvalidValue, "a user needs a userName"))?
        .to_string();
    let active = match field(&resource, "active") {
        None | Some(Value::Null) => true,
        Some(Value::Bool(active)) => *active,
        Some(other) => {
            return Err(ScimError::bad(
                ScimType::InvalidValue,
                format!("active must be true or false, not {other}"),
            )
            .into());
        }
    };
    let external_id = field(&resource, "externalId")
        .and_then(Value::as_str)
        .map(str::to_string);
    let manager_id = field(&resource, ENTERPRISE_USER_SCHEMA)
        .and_then(|extension| field(extension, "manager"))
        .and_then(|manager| match manager {
            Value::String(id) => Some(id.clone()),
            other => field(other, "value")
                .and_then(Value::as_str)
                .map(str::to_string),
        })
        .filter(|id| !id.is_empty());
    let valid_until = match field(&resource, WRIT_USER_SCHEMA)
        .and_then(|extension| field(extension, "validUntil"))
    {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) => {
            Some(writ_domain::Timestamp::parse_rfc3339(text).map_err(|_| {
                ScimError::bad(
                    ScimType::InvalidValue,
                    format!("validUntil {text:?} is not an RFC 3339 time"),
                )
            })?)
        }
        Some(other) => {
            return Err(ScimError::bad(
                ScimType::InvalidValue,
                format!("validUntil must be a dateTime, not {other}"),
            )
            .into());
        }
    };
    Ok(UserChange {
        user_name,
        external_id,
        active,
        manager_id,
        valid_until,
        resource,
    })
}

fn group_change(mut resource: Value) -> Result<GroupChange, Failure> {
    strip_read_only(&mut resource, &[]);
    let display_name = field(&resource, "displayName")
        .and_then(Value::as_str)
        .filter(|name| !name.trim().is_empty())
        .map(str::to_string);
    let external_id = field(&resource, "externalId")
        .and_then(Value::as_str)
        .map(str::to_string);
    let members = match field(&resource, "members") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(members)) => members
            .iter()
            .map(|member| {
                field(member, "value")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .ok_or_else(|| {
                        Failure(ScimError::bad(
                            ScimType::InvalidValue,
                            "a member needs a value (a user's id)",
                        ))
                    })
            })
            .collect::<Result<_, _>>()?,
        Some(_) => {
            return Err(ScimError::bad(ScimType::InvalidValue, "members must be a list").into());
        }
    };
    // Members are kept as ids and rendered from the users they name.
    if let Some(object) = resource.as_object_mut() {
        object.retain(|key, _| !key.eq_ignore_ascii_case("members"));
    }
    Ok(GroupChange {
        display_name,
        external_id,
        members,
        resource,
    })
}

fn render_user(state: &AppState, base: &str, user: &DirectoryUser) -> Value {
    let mut resource = user.resource.clone();
    if !resource.is_object() {
        resource = json!({});
    }
    let mut schemas = vec![json!(USER_SCHEMA)];
    for extension in [ENTERPRISE_USER_SCHEMA, WRIT_USER_SCHEMA] {
        if field(&resource, extension).is_some() {
            schemas.push(json!(extension));
        }
    }
    let groups: Vec<Value> = state
        .engine
        .directory_groups()
        .iter()
        .filter(|group| group.members.contains(&user.id))
        .map(|group| {
            json!({
                "value": group.id.to_string(),
                "display": group.display_name.clone(),
                "$ref": format!("{base}/Groups/{}", group.id),
                "type": "direct",
            })
        })
        .collect();
    if let Some(object) = resource.as_object_mut() {
        object.insert("schemas".into(), Value::Array(schemas));
        object.insert("id".into(), json!(user.id.to_string()));
        object.insert("userName".into(), json!(user.user_name.as_str()));
        if !groups.is_empty() {
            object.insert("groups".into(), Value::Array(groups));
        }
        object.insert(
            "meta".into(),
            meta("User", format!("{base}/Users/{}", user.id), &user.meta),
        );
    }
    resource
}

fn render_group(base: &str, group: &DirectoryGroup) -> Value {
    let mut resource = group.resource.clone();
    if !resource.is_object() {
        resource = json!({});
    }
    let members: Vec<Value> = group
        .members
        .iter()
        // RFC 7643 §8.7.1: a member is a value, a $ref and a type (no display).
        .map(|id| {
            json!({
                "value": id.to_string(),
                "$ref": format!("{base}/Users/{id}"),
                "type": "User",
            })
        })
        .collect();
    if let Some(object) = resource.as_object_mut() {
        object.insert("schemas".into(), json!([GROUP_SCHEMA]));
        object.insert("id".into(), json!(group.id.to_string()));
        if let Some(name) = &group.display_name {
            object.insert("displayName".into(), json!(name));
        }
        object.insert("members".into(), Value::Array(members));
        object.insert(
            "meta".into(),
            meta("Group", format!("{base}/Groups/{}", group.id), &group.meta),
        );
    }
    resource
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    filter: Option<String>,
    #[serde(rename = "startIndex")]
    start_index: Option<i64>,
    count: Option<i64>,
    attributes: Option<String>,
    #[serde(rename = "excludedAttributes")]
    excluded_attributes: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct ReadQuery {
    attributes: Option<String>,
    #[serde(rename = "excludedAttributes")]
    excluded_attributes: Option<String>,
}

fn list(resources: Vec<Value>, query: &ListQuery) -> Answer {
    let filter = query
        .filter
        .as_deref()
        .filter(|f| !f.trim().is_empty())
        .map(writ_scim::parse_filter)
        .transpose()?;
    let matching: Vec<Value> = resources
        .into_iter()
        .filter(|resource| {
            filter
                .as_ref()
                .is_none_or(|f| writ_scim::filter::matches(f, resource))
        })
        .map(|resource| {
            writ_scim::project(
                resource,
                query.attributes.as_deref(),
                query.excluded_attributes.as_deref(),
            )
        })
        .collect();
    Ok(Scim {
        status: StatusCode::OK,
        body: writ_scim::list_response(&matching, query.start_index, query.count),
    })
}

fn one(resource: Value, query: &ReadQuery, status: StatusCode) -> Answer {
    Ok(Scim {
        status,
        body: writ_scim::project(
            resource,
            query.attributes.as_deref(),
            query.excluded_attributes.as_deref(),
        ),
    })
}

fn query<T>(
    query: Result<Query<T>, axum::extract::rejection::QueryRejection>,
) -> Result<T, Failure> {
    query
        .map(|Query(q)| q)
        .map_err(|e| Failure(ScimError::bad(ScimType::InvalidValue, e.body_text())))
}

type ListParams = Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>;
type ReadParams = Result<Query<ReadQuery>, axum::extract::rejection::QueryRejection>;

async fn list_users(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: ListParams,
) -> Answer {
    client(&state, &headers)?;
    let params = query(params)?;
    let base = base(&state, &headers);
    let users = state
        .engine
        .directory_users()
        .iter()
        .map(|user| render_user(&state, &base, user))
        .collect();
    list(users, &params)
}

async fn get_user(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    params: ReadParams,
) -> Answer {
    client(&state, &headers)?;
    let params = query(params)?;
    let user = state
        .engine
        .directory_user(parse_id(&id, "user")?)
        .ok_or_else(|| Failure(ScimError::not_found("user", &id)))?;
    one(
        render_user(&state, &base(&state, &headers), &user),
        &params,
        StatusCode::OK,
    )
}

async fn create_user(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Answer {
    let client = client(&state, &headers)?;
    let change = user_change(body_json(&body)?)?;
    let user = state.engine.create_directory_user(&client, change).await?;
    Ok(Scim {
        status: StatusCode::CREATED,
        body: render_user(&state, &base(&state, &headers), &user),
    })
}

async fn replace_user(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Answer {
    let client = client(&state, &headers)?;
    let id = parse_id(&id, "user")?;
    let change = user_change(body_json(&body)?)?;
    let user = state
        .engine
        .replace_directory_user(&client, id, change, if_match(&headers)?)
        .await?;
    Ok(Scim {
        status: StatusCode::OK,
        body: render_user(&state, &base(&state, &headers), &user),
    })
}

fn patch_op(body: &Bytes) -> Result<PatchOp, Failure> {
    let op: PatchOp = serde_json::from_slice(body).map_err(|error| {
        let text = error.to_string();
        let scim_type = if text.contains("path") {
            ScimType::InvalidPath
        } else {
            ScimType::InvalidSyntax
        };
        ScimError::bad(scim_type, format!("not a PatchOp: {text}"))
    })?;
    if !op.schemas.iter().any(|s| s == writ_scim::PATCH_OP_SCHEMA) {
        return Err(ScimError::bad(
            ScimType::InvalidSyntax,
            format!("a PatchOp names the schema {}", writ_scim::PATCH_OP_SCHEMA),
        )
        .into());
    }
    Ok(op)
}

async fn patch_user(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Answer {
    let client = client(&state, &headers)?;
    let id = parse_id(&id, "user")?;
    let op = patch_op(&body)?;
    let base = base(&state, &headers);
    let user = state
        .engine
        .directory_user(id)
        .ok_or_else(|| Failure(ScimError::not_found("user", &id.to_string())))?;
    let expected = if_match(&headers)?.unwrap_or(user.meta.version);
    let current = render_user(&state, &base, &user);
    let patched = writ_scim::patch::apply(&current, &op.operations)?;
    let change = user_change(patched)?;
    // Applied to the version read: a change made meanwhile is a 412, not lost.
    let user = state
        .engine
        .replace_directory_user(&client, id, change, Some(expected))
        .await?;
    Ok(Scim {
        status: StatusCode::OK,
        body: render_user(&state, &base, &user),
    })
}

async fn delete_user(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<StatusCode, Failure> {
    let client = client(&state, &headers)?;
    let id = parse_id(&id, "user")?;
    state.engine.delete_directory_user(&client, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A `POST …/.search` body (RFC 7644 §3.4.3).
fn search_query(body: &Bytes) -> Result<ListQuery, Failure> {
    let body = body_json(body)?;
    let names = |key: &str| -> Result<Option<String>, Failure> {
        match field(&body, key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Array(items)) => Ok(Some(
                items
                    .iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(","),
            )),
            Some(_) => {
                Err(ScimError::bad(ScimType::InvalidValue, format!("{key} must be a list")).into())
            }
        }
    };
    let number = |key: &str| field(&body, key).and_then(Value::as_i64);
    Ok(ListQuery {
        filter: field(&body, "filter")
            .and_then(Value::as_str)
            .map(str::to_string),
        start_index: number("startIndex"),
        count: number("count"),
        attributes: names("attributes")?,
        excluded_attributes: names("excludedAttributes")?,
    })
}

async fn search_users(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Answer {
    client(&state, &headers)?;
    let params = search_query(&body)?;
    let base = base(&state, &headers);
    let users = state
        .engine
        .directory_users()
        .iter()
        .map(|user| render_user(&state, &base, user))
        .collect();
    list(users, &params)
}

async fn search_groups(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Answer {
    client(&state, &headers)?;
    let params = search_query(&body)?;
    let base = base(&state, &headers);
    let groups = state
        .engine
        .directory_groups()
        .iter()
        .map(|group| render_group(&base, group))
        .collect();
    list(groups, &params)
}

/// Both kinds at once (`POST /.search`).
async fn search_all(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Answer {
    client(&state, &headers)?;
    let params = search_query(&body)?;
    let base = base(&state, &headers);
    let mut all: Vec<Value> = state
        .engine
        .directory_users()
        .iter()
        .map(|user| render_user(&state, &base, user))
        .collect();
    all.extend(
        state
            .engine
            .directory_groups()
            .iter()
            .map(|group| render_group(&base, group)),
    );
    list(all, &params)
}

async fn list_groups(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: ListParams,
) -> Answer {
    client(&state, &headers)?;
    let params = query(params)?;
    let base = base(&state, &headers);
    let groups = state
        .engine
        .directory_groups()
        .iter()
        .map(|group| render_group(&base, group))
        .collect();
    list(groups, &params)
}

async fn get_group(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    params: ReadParams,
) -> Answer {
    client(&state, &headers)?;
    let params = query(params)?;
    let group = state
        .engine
        .directory_group(parse_id(&id, "group")?)
        .ok_or_else(|| Failure(ScimError::not_found("group", &id)))?;
    one(
        render_group(&base(&state, &headers), &group),
        &params,
        StatusCode::OK,
    )
}

async fn create_group(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Answer {
    let client = client(&state, &headers)?;
    let change = group_change(body_json(&body)?)?;
    let group = state.engine.create_directory_group(&client, change).await?;
    Ok(Scim {
        status: StatusCode::CREATED,
        body: render_group(&base(&state, &headers), &group),
    })
}

async fn replace_group(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Answer {
    let client = client(&state, &headers)?;
    let id = parse_id(&id, "group")?;
    let change = group_change(body_json(&body)?)?;
    let group = state
        .engine
        .replace_directory_group(&client, id, change, if_match(&headers)?)
        .await?;
    Ok(Scim {
        status: StatusCode::OK,
        body: render_group(&base(&state, &headers), &group),
    })
}

async fn patch_group(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Answer {
    let client = client(&state, &headers)?;
    let id = parse_id(&id, "group")?;
    let op = patch_op(&body)?;
    let base = base(&state, &headers);
    let group = state
        .engine
        .directory_group(id)
        .ok_or_else(|| Failure(ScimError::not_found("group", &id.to_string())))?;
    let expected = if_match(&headers)?.unwrap_or(group.meta.version);
    let current = render_group(&base, &group);
    let patched = writ_scim::patch::apply(&current, &op.operations)?;
    let change = group_change(patched)?;
    let group = state
        .engine
        .replace_directory_group(&client, id, change, Some(expected))
        .await?;
    Ok(Scim {
        status: StatusCode::OK,
        body: render_group(&base, &group),
    })
}

async fn delete_group(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<StatusCode, Failure> {
    let client = client(&state, &headers)?;
    let id = parse_id(&id, "group")?;
    state.engine.delete_directory_group(&client, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn service_provider_config(State(state): State<AppState>, headers: HeaderMap) -> Answer {
    client(&state, &headers)?;
    Ok(Scim {
        status: StatusCode::OK,
        body: discovery::service_provider_config(&base(&state, &headers)),
    })
}

async fn resource_types(State(state): State<AppState>, headers: HeaderMap) -> Answer {
    client(&state, &headers)?;
    let types = discovery::resource_types(&base(&state, &headers));
    Ok(Scim {
        status: StatusCode::OK,
        body: writ_scim::list_response(&types, None, None),
    })
}

async fn resource_type(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Answer {
    client(&state, &headers)?;
    discovery::resource_types(&base(&state, &headers))
        .into_iter()
        .find(|t| t["id"] == id.as_str())
        .map(|body| Scim {
            status: StatusCode::OK,
            body,
        })
        .ok_or_else(|| Failure(ScimError::not_found("resource type", &id)))
}

async fn schemas(State(state): State<AppState>, headers: HeaderMap) -> Answer {
    client(&state, &headers)?;
    let schemas = discovery::schemas(&base(&state, &headers))?;
    Ok(Scim {
        status: StatusCode::OK,
        body: writ_scim::list_response(&schemas, None, None),
    })
}

async fn schema(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Answer {
    client(&state, &headers)?;
    discovery::schemas(&base(&state, &headers))?
        .into_iter()
        .find(|s| s["id"] == id.as_str())
        .map(|body| Scim {
            status: StatusCode::OK,
            body,
        })
        .ok_or_else(|| Failure(ScimError::not_found("schema", &id)))
}

async fn not_found() -> Failure {
    Failure(ScimError::new(404, None, "no such SCIM endpoint"))
}
