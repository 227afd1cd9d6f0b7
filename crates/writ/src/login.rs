//! `writ login` and `writ logout`: a person signs in with the organisation's OpenID
//! provider — in a browser that comes back to a loopback listener (authorization code
//! with PKCE, RFC 8252), or on another device (RFC 8628) — and the CLI keeps the
//! tokens (credentials.rs) and refreshes them when they are about to expire.

use std::time::Duration;

use serde_json::Value;
use writ_oidc::signin::{SIGN_IN_TIMEOUT, SignIn, Tokens};

use crate::cli::ClientArgs;
use crate::client::Client;
use crate::credentials::{self, StoredLogin};
use crate::{EXIT_FAILED, EXIT_UNAUTHENTICATED, Failure};

pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// How a person signs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// A browser on this machine, back to a loopback listener.
    Browser { open: bool },
    /// A code to enter on any device.
    Device,
}

fn sign_in_failed(error: impl std::fmt::Display) -> Failure {
    Failure::with_code(EXIT_UNAUTHENTICATED, format!("sign-in failed: {error}"))
}

async fn sign_in_client(login: &StoredLogin) -> Result<SignIn, writ_oidc::OidcError> {
    SignIn::discover(
        &login.issuer,
        &login.client_id,
        None,
        &login.audience,
        &login.scopes,
    )
    .await
}

/// A stored sign-in with a fresh access token (and the refresh token the provider
/// hands back, which may be a new one).
pub async fn refresh(login: &StoredLogin, refresh_token: &str) -> Result<StoredLogin, String> {
    let client = sign_in_client(login).await.map_err(|e| e.to_string())?;
    let tokens = client
        .refresh(refresh_token)
        .await
        .map_err(|e| e.to_string())?;
    Ok(stored(login.clone(), tokens))
}

fn stored(template: StoredLogin, tokens: Tokens) -> StoredLogin {
    StoredLogin {
        access_token: tokens.access_token,
        refresh_token: tokens.refresh_token,
        expires_at: tokens
            .expires_in
            .map(|seconds| unix_now().saturating_add(i64::try_from(seconds).unwrap_or(0))),
        ..template
    }
}

/// The provider to sign in with: the one named, or the only one the server offers.
fn choose_provider(offered: &Value, wanted: Option<&str>) -> Result<Value, Failure> {
    let providers = offered["providers"].as_array().cloned().unwrap_or_default();
    let issuers = || {
        providers
            .iter()
            .filter_map(|p| p["issuer"].as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    match wanted {
        Some(issuer) => providers
            .iter()
            .find(|p| p["issuer"] == issuer)
            .cloned()
            .ok_or_else(|| {
                Failure::usage(format!(
                    "the server offers no sign-in through {issuer:?} (it offers: {})",
                    issuers()
                ))
            }),
        None => match providers.as_slice() {
            [] => Err(Failure::usage(
                "the server offers no sign-in: its [[oidc]] providers have no cli_client_id (ask for a token from `writ token issue` instead)",
            )),
            [only] => Ok(only.clone()),
            _ => Err(Failure::usage(format!(
                "the server offers several providers; choose one with --provider ({})",
                issuers()
            ))),
        },
    }
}

pub async fn login(
    config_path: &std::path::Path,
    args: &ClientArgs,
    flow: Flow,
    provider: Option<&str>,
) -> Result<(), Failure> {
    let server = Client::anonymous(config_path, args)?;
    let chosen = choose_provider(&server.sign_in_providers().await?, provider)?;
    let text = |field: &str| chosen[field].as_str().unwrap_or_default().to_string();
    let template = StoredLogin {
        issuer: text("issuer"),
        client_id: text("client_id"),
        audience: text("audience"),
        scopes: chosen["scopes"]
            .as_array()
            .map(|scopes| {
                scopes
                    .iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default(),
        access_token: String::new(),
        refresh_token: None,
        expires_at: None,
    };
    let client = sign_in_client(&template).await.map_err(sign_in_failed)?;
    let tokens = match flow {
        Flow::Device => device(&client).await?,
        Flow::Browser { open } => browser(&client, open).await?,
    };
    let login = stored(template, tokens);
    // The server must take the token for someone before it is kept.
    let me = server.with_token(login.access_token.clone()).who().await?;
    let path = credentials::store(server.server(), login)?;
    eprintln!(
        "signed in to {} through {}; kept in {}",
        server.server(),
        text("issuer"),
        path.display()
    );
    server.print_identity(&me);
    Ok(())
}

async fn device(client: &SignIn) -> Result<Tokens, Failure> {
    let started = client.start_device().await.map_err(sign_in_failed)?;
    match &started.verification_uri_complete {
        Some(complete) => eprintln!(
            "To sign in, open {complete}\n(or open {} and enter the code {})",
            started.verification_uri, started.user_code
        ),
        None => eprintln!(
            "To sign in, open {} and enter the code {}",
            started.verification_uri, started.user_code
        ),
    }
    eprintln!("waiting for you to sign in ...");
    client.finish_device(&started).await.map_err(sign_in_failed)
}

/// What the loopback listener heard.
type Callback = Result<String, String>;

async fn browser(client: &SignIn, open: bool) -> Result<Tokens, Failure> {
    // RFC 8252 §7.3: the loopback IP literal, on a port the system picks.
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .map_err(|e| Failure::failed(format!("cannot listen for the sign-in's answer: {e}")))?;
    let port = listener
        .local_addr()
        .map_err(|e| Failure::failed(format!("cannot listen for the sign-in's answer: {e}")))?
        .port();
    let redirect_uri = format!("http://127.0.0.1:{port}/callback");
    let authorization = client.authorize(&redirect_uri).map_err(sign_in_failed)?;
    let (heard, mut answer) = tokio::sync::mpsc::channel::<Callback>(1);
    let expected_state = authorization.state.clone();
    let app = axum::Router::new().route(
        "/callback",
        axum::routing::get(
            move |axum::extract::Query(query): axum::extract::Query<
                std::collections::HashMap<String, String>,
            >| {
                let heard = heard.clone();
                let expected_state = expected_state.clone();
                async move {
                    // Anything but our own state is someone else's redirect: ignored.
                    if query.get("state") != Some(&expected_state) {
                        return axum::response::Html(
                            "This is not the sign-in writ started; close this tab.".to_string(),
                        );
                    }
                    let outcome = match (query.get("code"), query.get("error")) {
                        (Some(code), None) => Ok(code.clone()),
                        (_, Some(error)) => Err(format!(
                            "{error}{}",
                            query
                                .get("error_description")
                                .map(|d| format!(": {d}"))
                                .unwrap_or_default()
                        )),
                        (None, None) => Err("the provider sent no code".to_string()),
                    };
                    let page = match &outcome {
                        Ok(_) => "Signed in to writ. You can close this tab.".to_string(),
                        Err(why) => format!("writ sign-in failed: {}", html_escape(why)),
                    };
                    let _ = heard.send(outcome).await;
                    axum::response::Html(page)
                }
            },
        ),
    );
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    eprintln!(
        "To sign in, open this address in your browser:\n{}",
        authorization.url
    );
    if open {
        open_browser(&authorization.url);
    }
    eprintln!("waiting for you to sign in ...");
    let heard = tokio::time::timeout(SIGN_IN_TIMEOUT, answer.recv()).await;
    // Give the browser its page before the listener goes.
    tokio::time::sleep(Duration::from_millis(100)).await;
    server.abort();
    let code = match heard {
        Ok(Some(Ok(code))) => code,
        Ok(Some(Err(why))) => return Err(sign_in_failed(why)),
        Ok(None) => {
            return Err(Failure::with_code(
                EXIT_FAILED,
                "the sign-in listener stopped",
            ));
        }
        Err(_) => {
            return Err(sign_in_failed(format!(
                "nobody signed in within {} minutes",
                SIGN_IN_TIMEOUT.as_secs() / 60
            )));
        }
    };
    client
        .exchange_code(&code, &authorization.verifier, &redirect_uri)
        .await
        .map_err(sign_in_failed)
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// `$BROWSER`, else the desktop's opener; failing is fine: the address is printed.
fn open_browser(url: &str) {
    let opener = std::env::var("BROWSER")
        .ok()
        .filter(|b| !b.is_empty())
        .unwrap_or_else(|| {
            if cfg!(target_os = "macos") {
                "open".to_string()
            } else {
                "xdg-open".to_string()
            }
        });
    let _ = std::process::Command::new(opener)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
}

pub async fn logout(config_path: &std::path::Path, args: &ClientArgs) -> Result<(), Failure> {
    let server = Client::anonymous(config_path, args)?;
    match credentials::remove(server.server())? {
        Some(login) => {
            eprintln!(
                "signed out of {} (the sign-in through {} is forgotten here)",
                server.server(),
                login.issuer
            );
            Ok(())
        }
        None => {
            eprintln!("not signed in to {}", server.server());
            Ok(())
        }
    }
}
