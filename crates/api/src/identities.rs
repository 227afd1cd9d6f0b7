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
    /// Past its `valid_until`: a leaver, as if disabled.
    pub ended: bool,
    /// When it ends, if it has an end date.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub valid_until: Option<writ_domain::Timestamp>,
    /// A service or agent whose owner is disabled: nobody is accountable for it.
    pub orphaned: bool,
    /// Where writ knows it from: `config` (writ.toml).
    pub source: String,
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
    let now = state.engine.now();
    let readable = state.engine.narrow_to_own(&caller);
    let identities = state
        .engine
        .identities()
        .iter()
        .filter(|i| {
            readable
                .as_ref()
                .is_none_or(|own| own.iter().any(|name| name == i.name.as_str()))
        })
        .filter(|i| !params.orphaned || state.engine.is_orphaned(i, now))
        .map(|i| IdentityView::of(&state.engine, i, now))
        .collect();
    Ok(Json(IdentityList { identities }))
}

impl IdentityView {
    fn of(
        engine: &writ_engine::Engine,
        identity: &writ_config::Identity,
        now: writ_domain::Timestamp,
    ) -> Self {
        let orphaned = engine.is_orphaned(identity, now);
        Self {
            name: identity.name.to_string(),
            kind: identity.kind.as_str().to_string(),
            groups: identity.groups.clone(),
            owner: identity.owner.as_ref().map(ToString::to_string),
            manager: identity.manager.as_ref().map(ToString::to_string),
            disabled: identity.disabled || engine.is_disabled_orphan(identity),
            ended: !identity.disabled && identity.has_left(now),
            valid_until: identity.valid_until,
            orphaned,
            source: if engine.config().identity(identity.name.as_str()).is_some() {
                "config"
            } else {
                "scim"
            }
            .to_string(),
        }
    }
}

/// The caller as writ sees it: whoever the token (writ's or an identity provider's)
/// names, and what it may see.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WhoAmI {
    #[serde(flatten)]
    pub identity: IdentityView,
    /// Reads everything, the audit log included (`[access]`).
    pub auditor: bool,
    /// As an auditor, and manages tokens and reconciles.
    pub admin: bool,
    /// Under a token's RFC 8693 `act` chain: the user the caller (an agent) acts for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acting_for: Option<String>,
    /// Under such a chain: its agents, the caller first, then each prior actor.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub actors: Vec<String>,
}

#[utoipa::path(get, path = "/v1/whoami",
    responses((status = 200, body = WhoAmI), (status = 401)))]
pub async fn whoami(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
) -> Result<Json<WhoAmI>, ApiError> {
    let identity = state.engine.identity(caller.name.as_str()).ok_or_else(|| {
        writ_engine::EngineError::new(
            writ_engine::ErrorCode::TokenIdentityUnknown,
            format!("{} is no longer a configured identity", caller.name),
        )
    })?;
    Ok(Json(WhoAmI {
        identity: IdentityView::of(&state.engine, &identity, state.engine.now()),
        auditor: state.engine.is_auditor(&caller),
        admin: state.engine.is_admin(&caller),
        acting_for: caller.delegation.as_ref().map(|d| d.principal.to_string()),
        actors: caller
            .actor_chain()
            .iter()
            .map(ToString::to_string)
            .collect(),
    }))
}
