//! Who may see what: identities see what concerns them; members of `[access]`'s
//! auditor and admin groups see everything.

use writ_domain::lifecycle::RequestState;
use writ_domain::{Grant, GrantId, Request, RequestId};

use crate::{Caller, Engine, EngineError, ErrorCode};

impl Engine {
    /// Whether the caller is an auditor (or admin): reads everything, verifies the ledger.
    pub fn is_auditor(&self, caller: &Caller) -> bool {
        self.identity(caller.name.as_str())
            .is_some_and(|identity| identity.is_auditor(&self.config.access))
    }

    /// Whether the caller is an admin: as an auditor, and reconciles and manages tokens.
    pub fn is_admin(&self, caller: &Caller) -> bool {
        self.identity(caller.name.as_str())
            .is_some_and(|identity| identity.is_admin(&self.config.access))
    }

    /// Refuses a caller who is not an auditor, naming what they tried.
    pub fn require_auditor(&self, caller: &Caller, what: &str) -> Result<(), EngineError> {
        if self.is_auditor(caller) {
            return Ok(());
        }
        Err(EngineError::new(
            ErrorCode::NotAnAuditor,
            format!("only auditors and admins ([access].auditors, [access].admins) may {what}"),
        ))
    }

    /// Refuses `caller` unless an admin; `what` says what was refused.
    pub fn require_admin(&self, caller: &Caller, what: &str) -> Result<(), EngineError> {
        if self.is_admin(caller) {
            return Ok(());
        }
        Err(EngineError::new(
            ErrorCode::NotAnAdmin,
            format!("only admins ([access].admins) may {what}"),
        ))
    }
}

/// What a caller may read. Auditors and admins read everything; anyone else reads what
/// concerns them: their own requests and grants and those of the services and agents
/// they own, requests they approved or may approve now, and the findings on
/// entitlements they own. What a caller may not read answers as if it did not exist.
impl Engine {
    /// The caller, and the services and agents it owns: whose records it reads.
    pub(crate) fn own_names(&self, caller: &Caller) -> Vec<String> {
        let mut names = vec![caller.name.to_string()];
        if caller.kind == writ_domain::IdentityKind::User {
            names.extend(
                self.config
                    .identities
                    .values()
                    .filter(|identity| identity.owner.as_ref() == Some(&caller.name))
                    .map(|identity| identity.name.to_string()),
            );
        }
        names
    }

    pub(crate) fn may_see_request(&self, caller: &Caller, request: &Request) -> bool {
        if self.is_auditor(caller) {
            return true;
        }
        let own = self.own_names(caller);
        let concerns = |name: &str| own.iter().any(|own| own == name);
        concerns(request.requester.as_str())
            || concerns(request.subject.as_str())
            || request.on_behalf_of.as_ref() == Some(&caller.name)
            || request.has_approved(&caller.name)
            || (request.state == RequestState::PendingApproval
                && self
                    .check_approver(caller, request, self.clock.now())
                    .is_ok())
    }

    /// A request the caller may read (404 otherwise, as for one that does not exist).
    pub async fn visible_request(
        &self,
        caller: &Caller,
        id: RequestId,
    ) -> Result<Request, EngineError> {
        let request = self.request(id).await?;
        if self.may_see_request(caller, &request) {
            Ok(request)
        } else {
            Err(EngineError::not_found("request", id))
        }
    }

    /// A grant the caller may read: its subject is theirs, or they may read its request.
    pub async fn visible_grant(&self, caller: &Caller, id: GrantId) -> Result<Grant, EngineError> {
        let grant = self.grant(id).await?;
        if self.is_auditor(caller)
            || self
                .own_names(caller)
                .iter()
                .any(|own| own == grant.subject.as_str())
        {
            return Ok(grant);
        }
        match self.store.request(grant.request_id).await? {
            Some(request) if self.may_see_request(caller, &request) => Ok(grant),
            _ => Err(EngineError::not_found("grant", id)),
        }
    }

    /// The identities whose records the caller may read, or `None` for everyone's.
    pub fn narrow_to_own(&self, caller: &Caller) -> Option<Vec<String>> {
        (!self.is_auditor(caller)).then(|| self.own_names(caller))
    }

    /// Whether the caller owns the entitlement a finding is about (or audits).
    pub(crate) fn may_see_finding(&self, caller: &Caller, entitlement: &str) -> bool {
        self.is_auditor(caller)
            || (caller.kind == writ_domain::IdentityKind::User
                && self
                    .config
                    .entitlement(entitlement)
                    .and_then(|e| e.owners.as_deref())
                    .is_some_and(|group| {
                        self.identity(caller.name.as_str())
                            .is_some_and(|identity| identity.groups.iter().any(|g| g == group))
                    }))
    }
}
