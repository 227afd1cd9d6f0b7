use writ_store::StoreError;

/// What kind of failure, which the API maps to a status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    Malformed,
    Unauthenticated,
    Forbidden,
    NotFound,
    Conflict,
    Unprocessable,
    /// A system writ depends on (a ticketing system) did not answer: nothing was changed.
    Unavailable,
    /// Storage failed: nothing was changed (fail closed).
    Internal,
    /// What is stored is not what writ wrote (an altered row, an event whose data is not
    /// JSON): nothing was changed, and retrying will not help.
    Corrupt,
}

/// An error a caller can act on: a kind, a stable snake_case code and a human message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct EngineError {
    pub kind: ErrorKind,
    pub code: &'static str,
    pub message: String,
}

impl EngineError {
    pub fn new(kind: ErrorKind, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            kind,
            code,
            message: message.into(),
        }
    }

    pub fn not_found(what: &str, id: impl std::fmt::Display) -> Self {
        Self::new(ErrorKind::NotFound, "not_found", format!("no {what} {id}"))
    }

    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unauthenticated, "unauthenticated", message)
    }
}

impl From<StoreError> for EngineError {
    fn from(error: StoreError) -> Self {
        // The detail goes to the log where the error is handled, not to the caller.
        match error {
            StoreError::Corrupt { .. } => {
                Self::new(ErrorKind::Corrupt, "data_corrupt", error.to_string())
            }
            other => Self::new(
                ErrorKind::Internal,
                "storage_unavailable",
                other.to_string(),
            ),
        }
    }
}

impl From<writ_domain::ledger::LedgerError> for EngineError {
    fn from(error: writ_domain::ledger::LedgerError) -> Self {
        Self::new(ErrorKind::Corrupt, "data_corrupt", error.to_string())
    }
}
