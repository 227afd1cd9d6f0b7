//! `POST /v1/policy/reload`: admins put the policy folder's current set in force.

use axum::Json;
use axum::extract::State;
use writ_engine::PolicyReloaded;

use crate::AppState;
use crate::auth::Authenticated;
use crate::error::ApiError;

#[utoipa::path(post, path = "/v1/policy/reload",
    responses((status = 200, body = PolicyReloaded), (status = 403, description = "not_an_admin"),
        (status = 422, description = "invalid_policy: the set does not load; the one in force stays")))]
pub async fn reload(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
) -> Result<Json<PolicyReloaded>, ApiError> {
    state.engine.require_admin(&caller, "reload the policies")?;
    Ok(Json(state.engine.reload_policy(&caller.actor()).await?))
}
