//! What the engine needs to change access on targets: their connectors, the guard
//! (limits and circuit breaker) of each, and the per-account locks that keep two
//! changes to one account from interleaving.

use std::collections::HashMap;
use std::sync::{Arc, Mutex as StdMutex};

use tokio::sync::Mutex;
use writ_config::Config;
use writ_connectors::{Connector, Connectors};

use crate::target_guard::TargetGuard;

pub(crate) struct Targets {
    connectors: Connectors,
    /// Per target: concurrency and rate limits and the circuit breaker.
    guards: HashMap<String, Arc<TargetGuard>>,
    /// One target change at a time per (target, role, account), so that revoking one
    /// lease and applying an overlapping one cannot interleave.
    holder_locks: StdMutex<HashMap<String, Arc<Mutex<()>>>>,
}

impl Targets {
    pub(crate) fn new(config: &Config, connectors: Connectors) -> Self {
        let guards = config
            .targets
            .values()
            .map(|target| (target.name.clone(), Arc::new(TargetGuard::new(target))))
            .collect();
        Self {
            connectors,
            guards,
            holder_locks: StdMutex::new(HashMap::new()),
        }
    }

    pub(crate) fn connector(&self, target: &str) -> Option<&Arc<dyn Connector>> {
        self.connectors.get(target)
    }

    /// The limits and breaker of a target (a default one for a target not configured,
    /// which only tests build).
    pub(crate) fn guard(&self, target: &str) -> Arc<TargetGuard> {
        self.guards
            .get(target)
            .cloned()
            .unwrap_or_else(|| Arc::new(TargetGuard::unconfigured()))
    }

    pub(crate) fn holder_lock(&self, key: String) -> Arc<Mutex<()>> {
        let mut locks = self
            .holder_locks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Bounded: drop locks nobody holds once the map grows.
        if locks.len() > 10_000 {
            locks.retain(|_, lock| Arc::strong_count(lock) > 1);
        }
        locks.entry(key).or_default().clone()
    }
}
