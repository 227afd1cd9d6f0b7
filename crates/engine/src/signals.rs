//! Wake-ups from the request path to the background tasks: the scheduler when a job
//! may be due earlier than it planned to look, the courier when evidence was queued.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use tokio::sync::Notify;
use writ_domain::Timestamp;

pub(crate) struct Signals {
    /// Wakes the scheduler when a new deadline may be earlier than the one it sleeps for.
    pub(crate) wake: Arc<Notify>,
    /// When the scheduler will next look at its jobs (µs since the epoch; `i64::MAX`
    /// while it is working). Only a job due earlier needs to wake it.
    pub(crate) next_wake_at_us: AtomicI64,
    /// Wakes the evidence courier when notes for tickets were committed.
    pub(crate) evidence_queued: Arc<Notify>,
}

impl Default for Signals {
    fn default() -> Self {
        Self {
            wake: Arc::new(Notify::new()),
            next_wake_at_us: AtomicI64::new(i64::MAX),
            evidence_queued: Arc::new(Notify::new()),
        }
    }
}

impl Signals {
    /// Tells the scheduler about a job due at `due`, waking it only if that is earlier
    /// than it planned to look.
    pub(crate) fn hint_due(&self, due: Timestamp) {
        if due.unix_micros() < self.next_wake_at_us.load(Ordering::SeqCst) {
            self.wake.notify_one();
        }
    }
}
