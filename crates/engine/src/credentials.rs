//! Short-lived credentials for services and agents: a grant on an entitlement with
//! `credential = true` is a login of its own, named after the grant, created on the
//! target with a random password and an expiry, and dropped (sessions ended) when the
//! lease ends. The password is generated here, handed to the caller once, and kept
//! nowhere: not in the database, the ledger or the logs (the PostgreSQL connector even
//! sends only its SCRAM verifier).
//!
//! A credential is issued only to a caller who is there to receive it: inline when a
//! request is granted at once, otherwise when the requester collects it
//! (`POST /v1/grants/{id}/credential`). One never collected expires like any lease.

use base64::Engine as _;
use serde::Serialize;
use writ_connectors::Credential;
use writ_domain::lifecycle::GrantState;
use writ_domain::{Grant, GrantId, IdentityKind, Timestamp};

use crate::{Caller, Engine, EngineError, ErrorCode};

/// A credential as handed over, once.
#[derive(Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IssuedCredential {
    pub username: String,
    /// Shown this once; writ keeps no copy.
    pub password: String,
    /// The login stops working then (`VALID UNTIL`) and writ drops it.
    pub expires_at: Timestamp,
}

impl std::fmt::Debug for IssuedCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedCredential")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// The login name of a credential grant: traceable to the grant by its id.
pub(crate) fn credential_username(grant: GrantId) -> String {
    format!("writ_{}", grant.to_string().replace('-', ""))
}

fn new_password() -> Result<String, EngineError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| {
        EngineError::new(
            ErrorCode::NoRandomness,
            format!("cannot generate a password: {e}"),
        )
    })?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

impl Engine {
    /// Refuses credential entitlements for users: a credential is for a workload.
    pub(crate) fn check_credential_subject(
        &self,
        entitlement: &writ_config::Entitlement,
        subject: &str,
    ) -> Result<(), EngineError> {
        let is_workload = self
            .identity(subject)
            .is_some_and(|i| matches!(i.kind, IdentityKind::Service | IdentityKind::Agent));
        if entitlement.credential && !is_workload {
            return Err(EngineError::new(
                ErrorCode::CredentialForServicesOnly,
                format!(
                    "{} issues short-lived credentials, which are for services and agents; {subject} is neither",
                    entitlement.id
                ),
            ));
        }
        Ok(())
    }

    /// Collects the credential of a pending credential grant: creates the login now and
    /// returns its password, once. The requester, the subject and the subject's owner may.
    pub async fn issue_credential(
        &self,
        caller: &Caller,
        id: GrantId,
    ) -> Result<(Grant, IssuedCredential), EngineError> {
        let grant = self
            .store
            .grant(id)
            .await?
            .ok_or_else(|| EngineError::not_found("grant", id))?;
        if !grant.credential {
            return Err(EngineError::new(
                ErrorCode::NotACredential,
                format!("grant {id} gives a role, not a credential"),
            ));
        }
        let request = self
            .store
            .request(grant.request_id)
            .await?
            .ok_or_else(|| EngineError::not_found("request", grant.request_id))?;
        let owner = self
            .identity(grant.subject.as_str())
            .and_then(|s| s.owner.clone());
        if caller.name != request.requester
            && caller.name != grant.subject
            && owner.as_ref() != Some(&caller.name)
        {
            return Err(EngineError::new(
                ErrorCode::NotTheRequester,
                format!(
                    "only the requester, {}, or the owner may collect this credential",
                    request.requester
                ),
            ));
        }
        self.issue_now(&grant).await
    }

    /// Creates the login for a pending credential grant and records it `active`.
    pub(crate) async fn issue_now(
        &self,
        grant: &Grant,
    ) -> Result<(Grant, IssuedCredential), EngineError> {
        let (role, connector) = self.target_of(grant)?;
        let _held = self.lock_account(Self::holder_key(grant)).await?;
        let grant = self
            .store
            .grant(grant.id)
            .await?
            .unwrap_or_else(|| grant.clone());
        match grant.state {
            GrantState::Pending => {}
            GrantState::Active => {
                return Err(EngineError::new(
                    ErrorCode::CredentialAlreadyIssued,
                    format!(
                        "the credential of grant {} was issued already; its password is shown only once",
                        grant.id
                    ),
                ));
            }
            other => {
                return Err(EngineError::new(
                    ErrorCode::NotPending,
                    format!("grant {} is {other}", grant.id),
                ));
            }
        }
        if grant.expires_at <= self.clock.now() {
            return Err(EngineError::new(
                ErrorCode::Expired,
                format!("grant {} has expired", grant.id),
            ));
        }
        let password = new_password()?;
        let ticket = self
            .store
            .request(grant.request_id)
            .await?
            .and_then(|request| request.ticket)
            .map(|ticket| format!(", ticket {}:{}", ticket.system, ticket.key))
            .unwrap_or_default();
        let comment = format!(
            "writ grant {} (request {}{ticket}) for {}, until {}",
            grant.id, grant.request_id, grant.subject, grant.expires_at
        );
        let credential = Credential {
            role: &role,
            username: &grant.account,
            password: &password,
            valid_until: grant.expires_at,
            comment: &comment,
        };
        let unavailable = |error: String| {
            EngineError::new(
                ErrorCode::TargetUnavailable,
                format!("the credential could not be issued (try again): {error}"),
            )
        };
        // Only a call that surely ran with this password may hand this password out.
        let guard = self.targets.guard(grant.entitlement.target());
        let now = self.clock.now();
        if let Err(error) = guard
            .call(now, connector.issue_credential(credential))
            .await
        {
            if let Err(cleanup) = guard
                .call(now, connector.drop_credential(&grant.account))
                .await
            {
                tracing::warn!(grant = %grant.id, error = %cleanup, "could not remove a half-issued login; its expiry still ends it");
            }
            return Err(unavailable(error.to_string()));
        }
        match guard
            .call(now, connector.credential_exists(&grant.account))
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                return Err(unavailable(
                    "the login is not on the target after creating it".into(),
                ));
            }
            Err(error) => return Err(unavailable(error.to_string())),
        }
        let now = self.clock.now();
        let active = self.record_activated(grant.id, now).await?.ok_or_else(|| {
            EngineError::new(
                ErrorCode::NotPending,
                format!("grant {} changed meanwhile", grant.id),
            )
        })?;
        tracing::info!(grant = %grant.id, username = %grant.account, "credential issued");
        let issued = IssuedCredential {
            username: grant.account.clone(),
            password,
            expires_at: grant.expires_at,
        };
        Ok((active, issued))
    }
}
