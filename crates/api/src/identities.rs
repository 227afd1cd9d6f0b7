//! `/v1/identities`: who is configured, and whose owner is gone.

use axum::Json;
use axum::extract::{Query, State};
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::auth::Authenticated;
use crate::error::ApiError;

use crate::handlers::query;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct IdentityQuery {
    /// Only services and agents whose owner is disabled.
    #[serde(default)]
    pub orphaned: bool,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct IdentityView {
    pub name: String,
    /// `user`, `service` or `agent`.
    pub kind: String,
    pub groups: Vec<String>,
    pub owner: Option<String>,
    pub manager: Option<String>,
    pub disabled: bool,
    /// A service or agent whose owner is disabled: nobody is accountable for it.
    pub orphaned: bool,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct IdentityList {
    pub identities: Vec<IdentityView>,
}

#[utoipa::path(get, path = "/v1/identities", params(IdentityQuery),
    responses((status = 200, body = IdentityList), (status = 401)))]
pub async fn list_identities(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    params: Result<Query<IdentityQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<IdentityList>, ApiError> {
    let params = query(params)?;
    let config = state.engine.config();
    let orphaned: std::collections::BTreeSet<&str> =
        config.orphaned().map(|i| i.name.as_str()).collect();
    let readable = state.engine.narrow_to_own(&caller);
    let identities = config
        .identities
        .values()
        .filter(|i| {
            readable
                .as_ref()
                .is_none_or(|own| own.iter().any(|name| name == i.name.as_str()))
        })
        .filter(|i| !params.orphaned || orphaned.contains(i.name.as_str()))
        .map(|i| IdentityView {
            name: i.name.to_string(),
            kind: i.kind.as_str().to_string(),
            groups: i.groups.clone(),
            owner: i.owner.as_ref().map(ToString::to_string),
            manager: i.manager.as_ref().map(ToString::to_string),
            disabled: i.disabled,
            orphaned: orphaned.contains(i.name.as_str()),
        })
        .collect();
    Ok(Json(IdentityList { identities }))
}
