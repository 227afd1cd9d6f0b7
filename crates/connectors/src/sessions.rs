//! Waiting for the sessions a database connector ended to be gone: "revoked" on a
//! database means no session of the account keeps acting with the role.

use std::future::Future;
use std::time::Duration;

use crate::ConnectorError;

/// How long ended sessions may take to exit before the revocation counts as failed.
pub(crate) const SESSION_EXIT_WAIT: Duration = Duration::from_secs(5);

/// Polls `still_open` (how many of the ended sessions are left) until none is, or
/// fails after `SESSION_EXIT_WAIT` naming `what` (e.g. "session(s) of alice still
/// open … after pg_terminate_backend").
pub(crate) async fn wait_until_gone<F, Fut>(
    mut still_open: F,
    what: impl Fn(i64) -> String,
) -> Result<(), ConnectorError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<i64, ConnectorError>>,
{
    let deadline = tokio::time::Instant::now() + SESSION_EXIT_WAIT;
    loop {
        let alive = still_open().await?;
        if alive == 0 {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(ConnectorError::Failed(what(alive)));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
