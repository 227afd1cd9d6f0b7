//! OAuth 2.0 client credentials (RFC 6749 §4.4) for a ticketing system's API: one access
//! token at a time, fetched on first use, fetched again shortly before it expires, and
//! once more when the system answers 401 (the token was revoked, or clocks disagree).

use std::time::{Duration, Instant};

use oauth2::basic::BasicClient;
use oauth2::{
    AuthType, ClientId, ClientSecret, EndpointNotSet, EndpointSet, Scope, TokenResponse, TokenUrl,
};
use tokio::sync::Mutex;
use writ_oidc::signin::OAuthHttp;

use crate::ItsmError;

type TokenClient =
    BasicClient<EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointSet>;

/// A token is fetched again when this share of its lifetime is left (at most a minute).
const RENEW_WHEN_LEFT: u32 = 5;
const RENEW_WHEN_LEFT_MAX: Duration = Duration::from_secs(60);

pub(crate) struct TokenSource {
    system: String,
    client: TokenClient,
    scope: Option<String>,
    http: OAuthHttp,
    current: Mutex<Option<Token>>,
}

struct Token {
    secret: String,
    /// When to fetch a new one; `None`: only when the system refuses this one.
    renew_at: Option<Instant>,
}

impl TokenSource {
    pub(crate) fn new(
        system: &str,
        token_url: &str,
        client_id: &str,
        client_secret: &str,
        scope: Option<&str>,
        timeout: Duration,
    ) -> Result<Self, ItsmError> {
        let unusable = |problem: String| ItsmError::Unreachable {
            system: system.to_string(),
            problem,
        };
        let client = BasicClient::new(ClientId::new(client_id.to_string()))
            .set_client_secret(ClientSecret::new(client_secret.to_string()))
            // In the form body: what ServiceNow's oauth_token.do and Atlassian's token
            // endpoint both take.
            .set_auth_type(AuthType::RequestBody)
            .set_token_uri(
                TokenUrl::new(token_url.to_string())
                    .map_err(|e| unusable(format!("token_url: {e}")))?,
            );
        // Never follow redirects from a token endpoint (the credentials would follow).
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .build()
            .map_err(|e| unusable(e.to_string()))?;
        Ok(Self {
            system: system.to_string(),
            client,
            scope: scope.map(str::to_string),
            http: OAuthHttp(http),
            current: Mutex::new(None),
        })
    }

    /// A token to call the system with: the current one while it is fresh.
    pub(crate) async fn token(&self) -> Result<String, ItsmError> {
        let mut current = self.current.lock().await;
        if let Some(token) = current.as_ref()
            && token.renew_at.is_none_or(|at| Instant::now() < at)
        {
            return Ok(token.secret.clone());
        }
        let token = self.fetch().await?;
        let secret = token.secret.clone();
        *current = Some(token);
        Ok(secret)
    }

    /// The system refused `refused`: a new token, unless another call already got one.
    pub(crate) async fn renew(&self, refused: &str) -> Result<String, ItsmError> {
        let mut current = self.current.lock().await;
        if let Some(token) = current.as_ref()
            && token.secret != refused
        {
            return Ok(token.secret.clone());
        }
        let token = self.fetch().await?;
        let secret = token.secret.clone();
        *current = Some(token);
        Ok(secret)
    }

    async fn fetch(&self) -> Result<Token, ItsmError> {
        let mut request = self.client.exchange_client_credentials();
        if let Some(scope) = &self.scope {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        let asked_at = Instant::now();
        let answer = request.request_async(&self.http).await.map_err(|e| {
            let problem = match &e {
                oauth2::RequestTokenError::ServerResponse(refusal) => {
                    format!("the token endpoint refused writ's client credentials: {refusal}")
                }
                oauth2::RequestTokenError::Request(error) => {
                    format!("cannot reach the token endpoint: {error}")
                }
                other => format!("the token endpoint answered something writ cannot read: {other}"),
            };
            ItsmError::Unreachable {
                system: self.system.clone(),
                problem,
            }
        })?;
        let renew_at = answer.expires_in().map(|lifetime| {
            let margin = (lifetime / RENEW_WHEN_LEFT).min(RENEW_WHEN_LEFT_MAX);
            asked_at + lifetime.saturating_sub(margin)
        });
        tracing::debug!(system = %self.system, expires_in = ?answer.expires_in(), "new OAuth access token");
        Ok(Token {
            secret: answer.access_token().secret().clone(),
            renew_at,
        })
    }
}
