//! Bearer tokens: `GET /v1/tokens`, `POST /v1/tokens/{id}/revoke`. Everyone manages
//! their own; admins anyone's.

use axum::Json;
use axum::extract::{Query, State};
use serde::{Deserialize, Serialize};
use writ_store::TokenListing;

use crate::AppState;
use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::handlers::query;
use crate::segment::Segment;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct TokenQuery {
    /// Only this identity's tokens (admins; anyone else may name only themselves).
    pub identity: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TokenList {
    pub tokens: Vec<TokenListing>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TokenRevoked {
    pub id: String,
    pub revoked: bool,
}

#[utoipa::path(get, path = "/v1/tokens", params(TokenQuery),
    responses((status = 200, body = TokenList), (status = 403, description = "not_an_admin")))]
pub async fn list_tokens(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    params: Result<Query<TokenQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<TokenList>, ApiError> {
    let params = query(params)?;
    let tokens = state
        .engine
        .tokens(&caller, params.identity.as_deref())
        .await?;
    Ok(Json(TokenList { tokens }))
}

#[utoipa::path(post, path = "/v1/tokens/{id}/revoke",
    responses((status = 200, body = TokenRevoked), (status = 404, description = "no live token with this id the caller may revoke"), (status = 422, description = "bad_token_id")))]
pub async fn revoke_token(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Segment(id): Segment,
) -> Result<Json<TokenRevoked>, ApiError> {
    state.engine.revoke_token(&caller, &id).await?;
    Ok(Json(TokenRevoked {
        id: id.trim().to_ascii_lowercase(),
        revoked: true,
    }))
}
