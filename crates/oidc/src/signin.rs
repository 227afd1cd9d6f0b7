//! Signing a person in with the OpenID provider, as an OAuth 2.0 public client:
//! authorization code with PKCE (RFC 7636) for a browser that comes back to a
//! redirect URI — the CLI's loopback listener (RFC 8252) or writ's own sign-in
//! endpoint — and the device authorization grant (RFC 8628) for a terminal without
//! one. Tokens are asked for writ's audience (RFC 8707 `resource`), so the access
//! token is one writ accepts as a bearer token.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use oauth2::basic::BasicClient;
use oauth2::{
    AsyncHttpClient, AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken,
    DeviceAuthorizationUrl, EndpointMaybeSet, EndpointNotSet, EndpointSet, ErrorResponse,
    HttpRequest, HttpResponse, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RefreshToken,
    RequestTokenError, Scope, StandardDeviceAuthorizationResponse, TokenResponse, TokenUrl,
};
use serde_json::Value;

use crate::{FETCH_TIMEOUT, OidcError};

/// The scopes asked for when none are configured: who the person is, and a refresh
/// token so that the CLI need not sign in again every few minutes.
pub const DEFAULT_SCOPES: &[&str] = &["openid", "profile", "offline_access"];

type SignInClient =
    BasicClient<EndpointSet, EndpointMaybeSet, EndpointNotSet, EndpointNotSet, EndpointSet>;

/// writ's own HTTP client, as the `oauth2` crate calls one.
pub struct OAuthHttp(pub reqwest::Client);

impl<'c> AsyncHttpClient<'c> for OAuthHttp {
    type Error = reqwest::Error;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, reqwest::Error>> + Send + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(async move {
            let response = self.0.execute(reqwest::Request::try_from(request)?).await?;
            let mut answer = HttpResponse::new(Vec::new());
            *answer.status_mut() = response.status();
            *answer.headers_mut() = response.headers().clone();
            *answer.body_mut() = response.bytes().await?.to_vec();
            Ok(answer)
        })
    }
}

/// What a sign-in ends with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tokens {
    /// The bearer token for writ.
    pub access_token: String,
    pub refresh_token: Option<String>,
    /// Seconds the access token lives, as the provider says.
    pub expires_in: Option<u64>,
}

/// A browser sign-in under way: where to send the person, and what must come back.
pub struct Authorization {
    pub url: String,
    /// Must come back unchanged in the redirect (CSRF).
    pub state: String,
    /// Kept by whoever started the sign-in; proves it to the token endpoint (PKCE).
    pub verifier: String,
}

/// A device sign-in under way: what to show the person.
pub struct DeviceSignIn {
    pub verification_uri: String,
    pub verification_uri_complete: Option<String>,
    pub user_code: String,
    details: StandardDeviceAuthorizationResponse,
}

/// One provider's endpoints, for one client.
pub struct SignIn {
    issuer: String,
    audience: String,
    scopes: Vec<String>,
    client: SignInClient,
    http: OAuthHttp,
}

impl std::fmt::Debug for SignIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignIn")
            .field("issuer", &self.issuer)
            .finish()
    }
}

/// A refusal the provider gave (`access_denied`, `expired_token`, `invalid_grant`), or
/// what went wrong asking it.
fn provider_error<RE, T>(issuer: &str, error: &RequestTokenError<RE, T>) -> OidcError
where
    RE: std::error::Error + 'static,
    T: ErrorResponse + std::fmt::Display + 'static,
{
    if let RequestTokenError::ServerResponse(answer) = error {
        return OidcError::Refused(format!("{issuer} refused the sign-in: {answer}"));
    }
    let mut problem = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(inner) = source {
        problem = format!("{problem}: {inner}");
        source = inner.source();
    }
    OidcError::Unavailable {
        issuer: issuer.to_string(),
        problem,
    }
}

fn tokens_of(response: &impl TokenResponse) -> Tokens {
    Tokens {
        access_token: response.access_token().secret().clone(),
        refresh_token: response.refresh_token().map(|t| t.secret().clone()),
        expires_in: response.expires_in().map(|d| d.as_secs()),
    }
}

impl SignIn {
    /// Finds the provider's endpoints from its discovery document.
    pub async fn discover(
        issuer: &str,
        client_id: &str,
        client_secret: Option<&str>,
        audience: &str,
        scopes: &[String],
    ) -> Result<Self, OidcError> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let unavailable = |problem: String| OidcError::Unavailable {
            issuer: issuer.to_string(),
            problem,
        };
        // Never follow redirects: a token endpoint's answer is the answer.
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(FETCH_TIMEOUT)
            .build()
            .map_err(|e| OidcError::Client(e.to_string()))?;
        let url = format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        );
        let response = http
            .get(&url)
            .send()
            .await
            .map_err(|e| unavailable(format!("{url}: {e}")))?;
        if !response.status().is_success() {
            return Err(unavailable(format!("{url} answered {}", response.status())));
        }
        let discovery: Value = response
            .json()
            .await
            .map_err(|e| unavailable(format!("{url}: {e}")))?;
        if discovery["issuer"].as_str() != Some(issuer) {
            return Err(unavailable(format!(
                "its discovery document names issuer {}, not {issuer}",
                discovery["issuer"]
            )));
        }
        let endpoint = |name: &str| {
            discovery[name]
                .as_str()
                .map(str::to_string)
                .ok_or_else(|| unavailable(format!("its discovery document has no {name}")))
        };
        let mut client = BasicClient::new(ClientId::new(client_id.to_string()))
            .set_auth_uri(
                AuthUrl::new(endpoint("authorization_endpoint")?)
                    .map_err(|e| unavailable(format!("authorization_endpoint: {e}")))?,
            )
            .set_token_uri(
                TokenUrl::new(endpoint("token_endpoint")?)
                    .map_err(|e| unavailable(format!("token_endpoint: {e}")))?,
            )
            .set_device_authorization_url_option(
                discovery["device_authorization_endpoint"]
                    .as_str()
                    .and_then(|url| DeviceAuthorizationUrl::new(url.to_string()).ok()),
            );
        if let Some(secret) = client_secret {
            client = client
                .set_client_secret(ClientSecret::new(secret.to_string()))
                .set_auth_type(AuthType::RequestBody);
        }
        Ok(Self {
            issuer: issuer.to_string(),
            audience: audience.to_string(),
            scopes: if scopes.is_empty() {
                DEFAULT_SCOPES.iter().map(|s| s.to_string()).collect()
            } else {
                scopes.to_vec()
            },
            client,
            http: OAuthHttp(http),
        })
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Where to send a browser: the authorization endpoint with a fresh `state` and a
    /// PKCE challenge (S256); the answer comes to `redirect_uri`.
    pub fn authorize(&self, redirect_uri: &str) -> Result<Authorization, OidcError> {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let redirect = RedirectUrl::new(redirect_uri.to_string()).map_err(|e| {
            OidcError::Refused(format!("{redirect_uri:?} is not a redirect URI: {e}"))
        })?;
        let (url, state) = self
            .client
            .authorize_url(CsrfToken::new_random)
            .set_redirect_uri(std::borrow::Cow::Owned(redirect))
            .add_scopes(self.scopes.iter().cloned().map(Scope::new))
            .add_extra_param("resource", self.audience.clone())
            // A refresh token is only issued after consent (OpenID Connect Core §11).
            .add_extra_param("prompt", "consent")
            .set_pkce_challenge(challenge)
            .url();
        Ok(Authorization {
            url: url.to_string(),
            state: state.secret().clone(),
            verifier: verifier.secret().clone(),
        })
    }

    /// Exchanges the code the browser brought back for tokens.
    pub async fn exchange_code(
        &self,
        code: &str,
        verifier: &str,
        redirect_uri: &str,
    ) -> Result<Tokens, OidcError> {
        let redirect = RedirectUrl::new(redirect_uri.to_string()).map_err(|e| {
            OidcError::Refused(format!("{redirect_uri:?} is not a redirect URI: {e}"))
        })?;
        let response = self
            .client
            .exchange_code(AuthorizationCode::new(code.to_string()))
            .set_redirect_uri(std::borrow::Cow::Owned(redirect))
            .set_pkce_verifier(PkceCodeVerifier::new(verifier.to_string()))
            .add_extra_param("resource", self.audience.clone())
            .request_async(&self.http)
            .await
            .map_err(|e| provider_error(&self.issuer, &e))?;
        Ok(tokens_of(&response))
    }

    /// Starts a device sign-in (RFC 8628 §3.1).
    pub async fn start_device(&self) -> Result<DeviceSignIn, OidcError> {
        let request = self.client.exchange_device_code().map_err(|_| {
            OidcError::Refused(format!(
                "{} offers no device sign-in (its discovery document has no device_authorization_endpoint); sign in in a browser instead",
                self.issuer
            ))
        })?;
        let details: StandardDeviceAuthorizationResponse = request
            .add_scopes(self.scopes.iter().cloned().map(Scope::new))
            .add_extra_param("resource", self.audience.clone())
            .request_async(&self.http)
            .await
            .map_err(|e| provider_error(&self.issuer, &e))?;
        Ok(DeviceSignIn {
            verification_uri: details.verification_uri().to_string(),
            verification_uri_complete: details
                .verification_uri_complete()
                .map(|uri| uri.secret().clone()),
            user_code: details.user_code().secret().clone(),
            details,
        })
    }

    /// Polls until the person has approved the device sign-in (or refused it, or it
    /// expired), at the interval the provider asks for.
    pub async fn finish_device(&self, device: &DeviceSignIn) -> Result<Tokens, OidcError> {
        let response = self
            .client
            .exchange_device_access_token(&device.details)
            .add_extra_param("resource", self.audience.clone())
            .request_async(&self.http, tokio::time::sleep, None)
            .await
            .map_err(|e| provider_error(&self.issuer, &e))?;
        Ok(tokens_of(&response))
    }

    /// A new access token for a refresh token.
    pub async fn refresh(&self, refresh_token: &str) -> Result<Tokens, OidcError> {
        let refresh = RefreshToken::new(refresh_token.to_string());
        let response = self
            .client
            .exchange_refresh_token(&refresh)
            .add_extra_param("resource", self.audience.clone())
            .request_async(&self.http)
            .await
            .map_err(|e| provider_error(&self.issuer, &e))?;
        let mut tokens = tokens_of(&response);
        // A provider that does not rotate refresh tokens keeps the old one valid.
        if tokens.refresh_token.is_none() {
            tokens.refresh_token = Some(refresh_token.to_string());
        }
        Ok(tokens)
    }
}

/// How long to wait for a person at most.
pub const SIGN_IN_TIMEOUT: Duration = Duration::from_secs(600);
