//! What a client needs to sign a person in: the OpenID providers writ accepts tokens
//! from, and the client each offers for `writ login`. Public: client ids are not
//! secrets, and a caller must be able to ask before it has a token.

use axum::Json;
use axum::extract::State;
use serde::Serialize;

use crate::AppState;

/// A provider the CLI can sign in with.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SignInProvider {
    /// The provider's issuer (discovery: `<issuer>/.well-known/openid-configuration`).
    pub issuer: String,
    /// Ask for tokens for this audience (RFC 8707 `resource`).
    pub audience: String,
    /// The public client `writ login` signs in with.
    pub client_id: String,
    /// The scopes to ask for (empty: `openid profile offline_access`).
    pub scopes: Vec<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SignInProviders {
    pub providers: Vec<SignInProvider>,
}

#[utoipa::path(get, path = "/v1/auth/providers", security(()),
    responses((status = 200, body = SignInProviders)))]
pub async fn providers(State(state): State<AppState>) -> Json<SignInProviders> {
    let providers = state
        .engine
        .config()
        .oidc
        .iter()
        .filter_map(|provider| {
            Some(SignInProvider {
                issuer: provider.issuer.clone(),
                audience: provider.audience.clone(),
                client_id: provider.cli_client_id.clone()?,
                scopes: provider.scopes.clone(),
            })
        })
        .collect();
    Json(SignInProviders { providers })
}
