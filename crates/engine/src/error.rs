use writ_store::StoreError;

/// What kind of failure, which the API maps to a status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The call itself is malformed (bad JSON, a query that does not parse, an id that
    /// names several records).
    Malformed,
    Unauthenticated,
    Forbidden,
    NotFound,
    /// The route does not take the method.
    MethodNotAllowed,
    Conflict,
    /// What the call refers to was valid once and is not any more (an AuthZEN denial
    /// past its request window).
    Gone,
    /// The body is larger than the server takes.
    TooLarge,
    /// The body is not sent as JSON.
    UnsupportedMediaType,
    Unprocessable,
    /// The caller sends more than its share; it may come back later.
    RateLimited,
    /// A system writ depends on (a ticketing system, a target, the server's own capacity)
    /// did not answer: nothing was changed.
    Unavailable,
    /// Storage failed: nothing was changed (fail closed).
    Internal,
    /// What is stored is not what writ wrote (an altered row, an event whose data is not
    /// JSON): nothing was changed, and retrying will not help.
    Corrupt,
}

/// Declares [`ErrorCode`]: each code once, with its snake_case text and its kind, so a
/// code can never be given two statuses.
macro_rules! error_codes {
    ($($(#[$doc:meta])* $variant:ident = $text:literal => $kind:ident,)*) => {
        /// Every code writ answers with: closed, so a caller can match on them and
        /// docs/api.md's table is checked against [`ErrorCode::ALL`].
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $($(#[$doc])* $variant,)*
        }

        impl ErrorCode {
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)*];

            /// The stable snake_case text callers see.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $text,)*
                }
            }

            pub fn kind(self) -> ErrorKind {
                match self {
                    $(ErrorCode::$variant => ErrorKind::$kind,)*
                }
            }
        }
    };
}

error_codes! {
    MalformedRequest = "malformed_request" => Malformed,
    /// An abbreviated id that names more than one record.
    AmbiguousId = "ambiguous_id" => Malformed,
    /// A SCIM resource writ cannot keep (a userName that is not an identity name, a
    /// member that is not a user here, a change of userName).
    DirectoryInvalid = "directory_invalid" => Malformed,
    /// An AuthZEN access request for a denial that was not requestable (docs/authzen.md).
    NotRequestable = "not_requestable" => Malformed,
    /// An AuthZEN access request whose binding token is missing, forged, for another
    /// subject, resource or action, or already submitted.
    InvalidDenialBinding = "invalid_denial_binding" => Malformed,

    Unauthenticated = "unauthenticated" => Unauthenticated,
    BadWebhook = "bad_webhook" => Unauthenticated,
    /// A valid token whose identity is not configured (or no longer).
    TokenIdentityUnknown = "token_identity_unknown" => Unauthenticated,
    /// A valid token whose RFC 8693 `act` chain proves no agent acting for a user.
    DelegationRefused = "delegation_refused" => Unauthenticated,
    /// A valid token of a disabled identity.
    TokenIdentityDisabled = "token_identity_disabled" => Unauthenticated,
    /// writ's own token for an identity kind `[access] static_tokens` leaves out.
    StaticTokensDisabled = "static_tokens_disabled" => Unauthenticated,
    /// A browser sign-in that cannot be finished (another browser's, altered, too
    /// late, refused by the provider).
    SignInFailed = "sign_in_failed" => Unauthenticated,

    /// A change made with a session cookie without the session's CSRF token.
    CsrfTokenInvalid = "csrf_token_invalid" => Forbidden,
    NotAnAuditor = "not_an_auditor" => Forbidden,
    NotAnAdmin = "not_an_admin" => Forbidden,
    NotAPdpClient = "not_a_pdp_client" => Forbidden,
    SelfApproval = "self_approval" => Forbidden,
    NotAnApprover = "not_an_approver" => Forbidden,
    ApproverKind = "approver_kind" => Forbidden,
    /// The acting identity (or the user an agent acts for) is disabled: a disabled
    /// identity gets nothing, a token included.
    IdentityDisabled = "identity_disabled" => Forbidden,
    NotADelegate = "not_a_delegate" => Forbidden,
    NotSubjectOwner = "not_subject_owner" => Forbidden,
    NotTheRequester = "not_the_requester" => Forbidden,
    NotARevoker = "not_a_revoker" => Forbidden,
    NotAnOwner = "not_an_owner" => Forbidden,
    OwnAccount = "own_account" => Forbidden,
    /// No `break_glass` policy permits this activation (each entitlement is decided).
    BreakGlassDenied = "break_glass_denied" => Forbidden,
    /// An earlier activation's review is overdue: sign it off before breaking the glass
    /// again (unless the profile sets `allow_with_overdue_review`).
    BreakGlassReviewOverdue = "break_glass_review_overdue" => Forbidden,
    /// The activator (or the user an agent acted for) reviewing their own activation.
    SelfReview = "self_review" => Forbidden,
    /// A subordinate of the activator (by the manager chain) reviewing their activation.
    SubordinateReview = "subordinate_review" => Forbidden,
    /// Deciding a review item one is not a reviewer of (not named by the campaign's
    /// rule, or not permitted by an `approve` policy under the `approvers` rule).
    NotAReviewer = "not_a_reviewer" => Forbidden,

    NotFound = "not_found" => NotFound,
    /// An AuthZEN task handle that is unknown, or not the caller's to see.
    UnknownTask = "unknown_task" => NotFound,
    UnknownTarget = "unknown_target" => NotFound,
    /// Browser sign-in is not configured (no `[[oidc]]` `web_client_id`, or no
    /// `server.public_url`).
    SignInUnavailable = "sign_in_unavailable" => NotFound,

    MethodNotAllowed = "method_not_allowed" => MethodNotAllowed,

    VerifyRunning = "verify_running" => Conflict,
    /// An AuthZEN Idempotency-Key used again with another body.
    DuplicateRequest = "duplicate_request" => Conflict,
    /// An AuthZEN task that cannot be cancelled: it has finished.
    InvalidTaskState = "invalid_task_state" => Conflict,
    /// An AuthZEN access request submitted after its denial's request window.
    ExpiredDenial = "expired_denial" => Gone,
    TicketTaken = "ticket_taken" => Conflict,
    /// A userName or displayName taken (in the directory, or in writ.toml).
    DirectoryConflict = "directory_conflict" => Conflict,
    /// A SCIM change made against a version that is no longer the latest (`If-Match`).
    DirectoryVersionMismatch = "directory_version_mismatch" => Conflict,
    NotPending = "not_pending" => Conflict,
    AlreadySignedOff = "already_signed_off" => Conflict,
    /// A review item decided already (by a reviewer, or by the default).
    AlreadyDecided = "already_decided" => Conflict,
    /// A review campaign past its deadline: what nobody decided takes the default.
    CampaignClosed = "campaign_closed" => Conflict,
    /// A grant that cannot be extended: not active, a credential, break-glass, or
    /// already at the latest end it may have.
    NotExtendable = "not_extendable" => Conflict,
    AlreadyApproved = "already_approved" => Conflict,
    NotActive = "not_active" => Conflict,
    FindingNotOpen = "finding_not_open" => Conflict,
    CredentialAlreadyIssued = "credential_already_issued" => Conflict,
    NotACredential = "not_a_credential" => Conflict,
    Expired = "expired" => Conflict,
    IllegalTransition = "illegal_transition" => Conflict,
    WrongState = "wrong_state" => Conflict,
    /// A record's entitlement is no longer configured: nothing can be done with it until
    /// the configuration names it again. A conflict with the configuration, whoever asks.
    EntitlementRemoved = "entitlement_removed" => Conflict,
    TargetRemoved = "target_removed" => Conflict,

    BodyTooLarge = "body_too_large" => TooLarge,
    UnsupportedMediaType = "unsupported_media_type" => UnsupportedMediaType,

    UnknownEntitlement = "unknown_entitlement" => Unprocessable,
    /// A policy set that does not load: not put in force.
    InvalidPolicy = "invalid_policy" => Unprocessable,
    /// A named identity that is not configured. (A caller who is not configured cannot
    /// authenticate at all.)
    UnknownIdentity = "unknown_identity" => Unprocessable,
    SubjectDisabled = "subject_disabled" => Unprocessable,
    SubjectOrphaned = "subject_orphaned" => Unprocessable,
    InvalidDuration = "invalid_duration" => Unprocessable,
    MissingJustification = "missing_justification" => Unprocessable,
    InvalidTicket = "invalid_ticket" => Unprocessable,
    JustificationTooLong = "justification_too_long" => Unprocessable,
    CommentTooLong = "comment_too_long" => Unprocessable,
    /// A sign-off without a comment: a review says what was looked at.
    MissingComment = "missing_comment" => Unprocessable,
    ReasonTooLong = "reason_too_long" => Unprocessable,
    OnBehalfOfRequired = "on_behalf_of_required" => Unprocessable,
    OnBehalfOfNotAgent = "on_behalf_of_not_agent" => Unprocessable,
    CredentialForServicesOnly = "credential_for_services_only" => Unprocessable,
    BadTokenId = "bad_token_id" => Unprocessable,
    InvalidTtl = "invalid_ttl" => Unprocessable,
    InvalidExpiry = "invalid_expiry" => Unprocessable,
    InvalidOwner = "invalid_owner" => Unprocessable,
    InvalidReason = "invalid_reason" => Unprocessable,
    TicketRequired = "ticket_required" => Unprocessable,
    UnknownTicket = "unknown_ticket" => Unprocessable,
    BadTicketKey = "bad_ticket_key" => Unprocessable,
    TicketState = "ticket_state" => Unprocessable,
    TicketNotApproved = "ticket_not_approved" => Unprocessable,
    TicketMismatch = "ticket_mismatch" => Unprocessable,
    ChangeWindowEnded = "change_window_ended" => Unprocessable,
    BadChangeWindow = "bad_change_window" => Unprocessable,
    UnknownRequester = "unknown_requester" => Unprocessable,
    UnknownSubject = "unknown_subject" => Unprocessable,
    MissingEntitlement = "missing_entitlement" => Unprocessable,
    BadTicketDuration = "bad_ticket_duration" => Unprocessable,
    /// A review campaign that cannot start: no name, a deadline out of bounds, an
    /// unknown target or entitlement, nothing to review.
    InvalidCampaign = "invalid_campaign" => Unprocessable,
    /// A grant with more events than one evidence document holds.
    EvidenceTooLarge = "evidence_too_large" => Unprocessable,

    RateLimited = "rate_limited" => RateLimited,

    Overloaded = "overloaded" => Unavailable,
    ItsmUnavailable = "itsm_unavailable" => Unavailable,
    /// An OpenID provider's keys could not be fetched: its tokens cannot be checked.
    IdentityProviderUnavailable = "identity_provider_unavailable" => Unavailable,
    TargetUnavailable = "target_unavailable" => Unavailable,
    CheckpointFile = "checkpoint_file" => Unavailable,

    StorageUnavailable = "storage_unavailable" => Internal,
    Checkpoint = "checkpoint" => Internal,
    /// An evidence document that could not be made: the ledger does not tell the
    /// grant's story, or no tree head could be signed.
    Evidence = "evidence" => Internal,
    NoRandomness = "no_randomness" => Internal,
    /// A binding token could not be signed (a key that does not load as Ed25519).
    SigningFailed = "signing_failed" => Internal,
    IntakeOutcome = "intake_outcome" => Internal,
    /// A web UI page that could not be rendered (a template's own failure).
    PageRendering = "page_rendering" => Internal,
    /// Identities that do not make Cedar entities (should not happen: names are
    /// checked before they are kept).
    PolicyEntities = "policy_entities" => Internal,

    DataCorrupt = "data_corrupt" => Corrupt,
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error a caller can act on: a stable code (which gives its kind) and a human message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct EngineError {
    pub code: ErrorCode,
    pub message: String,
}

impl EngineError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    pub fn kind(&self) -> ErrorKind {
        self.code.kind()
    }

    pub fn not_found(what: &str, id: impl std::fmt::Display) -> Self {
        Self::new(ErrorCode::NotFound, format!("no {what} {id}"))
    }

    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unauthenticated, message)
    }
}

impl From<StoreError> for EngineError {
    fn from(error: StoreError) -> Self {
        // The detail goes to the log where the error is handled, not to the caller.
        match error {
            StoreError::Corrupt { .. } => Self::new(ErrorCode::DataCorrupt, error.to_string()),
            other => Self::new(ErrorCode::StorageUnavailable, other.to_string()),
        }
    }
}

impl From<writ_domain::ledger::LedgerError> for EngineError {
    fn from(error: writ_domain::ledger::LedgerError) -> Self {
        Self::new(ErrorCode::DataCorrupt, error.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_one_distinct_snake_case_text() {
        let mut seen = std::collections::HashSet::new();
        for code in ErrorCode::ALL {
            let text = code.as_str();
            assert!(seen.insert(text), "{text} twice");
            assert!(
                !text.is_empty()
                    && text.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
                    && !text.starts_with('_')
                    && !text.ends_with('_'),
                "{text} is not snake_case"
            );
        }
    }
}
