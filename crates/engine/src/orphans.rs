//! Orphans: services and agents whose owner left. Nobody answers for them, so they are
//! given nothing new at once; writ records when it noticed (`identity.orphaned`, naming
//! whom to tell: the owner's manager and the owners of the entitlements the orphan
//! holds, for `[[notify]]` sinks to deliver), and if no new owner is configured within
//! `identities.orphan_grace` it disables them (`identity.orphan_disabled`): from then on
//! they are leavers. A new owner ends it (`identity.adopted`).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::RwLock;

use serde_json::json;
use writ_config::Identity;
use writ_domain::ledger::EventKind;
use writ_domain::lifecycle::GrantState;
use writ_domain::{IdentityName, Timestamp};
use writ_store::{GrantFilter, Orphan};

use crate::{Engine, EngineError};

use crate::SCHEDULER;

/// The orphans writ has disabled, at hand for every authentication.
#[derive(Debug, Default)]
pub(crate) struct DisabledOrphans(RwLock<HashSet<IdentityName>>);

impl DisabledOrphans {
    pub(crate) fn contains(&self, name: &IdentityName) -> bool {
        match self.0.read() {
            Ok(set) => set.contains(name),
            Err(poisoned) => poisoned.into_inner().contains(name),
        }
    }

    fn replace(&self, names: HashSet<IdentityName>) {
        match self.0.write() {
            Ok(mut set) => *set = names,
            Err(poisoned) => *poisoned.into_inner() = names,
        }
    }
}

impl Engine {
    /// Whether `identity` has left: disabled or ended in the configuration, or an orphan
    /// writ disabled.
    pub(crate) fn has_left(&self, identity: &Identity, now: Timestamp) -> bool {
        identity.has_left(now) || self.disabled_orphans.contains(&identity.name)
    }

    /// Whether `identity` is an orphan writ disabled.
    pub fn is_disabled_orphan(&self, identity: &Identity) -> bool {
        self.disabled_orphans.contains(&identity.name)
    }

    /// Whether `identity` is a service or agent whose owner has left.
    pub fn is_orphaned(&self, identity: &Identity, now: Timestamp) -> bool {
        identity.owner.as_ref().is_some_and(|owner| {
            self.identity(owner.as_str())
                .is_none_or(|owner| self.has_left(&owner, now))
        })
    }

    /// Reads which orphans writ disabled (at start, before serving).
    pub async fn load_orphans(&self) -> Result<(), EngineError> {
        let disabled = self
            .store
            .orphans()
            .await?
            .into_iter()
            .filter(|orphan| orphan.disabled_at.is_some())
            .filter_map(|orphan| orphan.identity.parse().ok())
            .collect();
        self.disabled_orphans.replace(disabled);
        Ok(())
    }

    /// Records new orphans, adoptions, and the orphans whose grace ran out; returns the
    /// disabled ones (leavers) and when the next grace runs out.
    pub(crate) async fn sweep_orphans(
        &self,
    ) -> Result<(Vec<String>, Option<Timestamp>), EngineError> {
        let now = self.clock.now();
        let mut recorded: HashMap<String, Orphan> = self
            .store
            .orphans()
            .await?
            .into_iter()
            .map(|orphan| (orphan.identity.clone(), orphan))
            .collect();
        let orphaned: Vec<&Identity> = self
            .config
            .identities
            .values()
            .filter(|identity| !identity.has_left(now))
            .filter(|identity| {
                identity.owner.as_ref().is_some_and(|owner| {
                    self.identity(owner.as_str())
                        .is_none_or(|owner| owner.has_left(now))
                })
            })
            .collect();
        let grace_ms = self.config.orphan_grace_seconds * 1000;
        let mut disabled = Vec::new();
        let mut next_due: Option<Timestamp> = None;
        let mut due_at = |at: Timestamp| next_due = Some(next_due.map_or(at, |due| due.min(at)));
        for identity in orphaned {
            let name = identity.name.to_string();
            match recorded.remove(&name) {
                None => {
                    self.record_orphan(identity, now).await?;
                    due_at(now.plus_millis(grace_ms));
                }
                Some(orphan) if orphan.disabled_at.is_some() => disabled.push(name),
                Some(orphan) if now.millis_since(orphan.orphaned_at) >= grace_ms => {
                    self.disable_orphan(&orphan, now).await?;
                    disabled.push(name);
                }
                Some(orphan) => due_at(orphan.orphaned_at.plus_millis(grace_ms)),
            }
        }
        // Recorded, but with an owner again (or gone from the configuration).
        for orphan in recorded.into_values() {
            let mut tx = self.store.begin().await?;
            tx.delete_orphan(&orphan.identity).await?;
            let owner = self
                .identity(&orphan.identity)
                .and_then(|identity| identity.owner.as_ref().map(ToString::to_string));
            let data = json!({ "identity": orphan.identity, "owner": owner, "previous_owner": orphan.owner });
            tx.append(now, &SCHEDULER, EventKind::IdentityAdopted, &data)
                .await?;
            tx.commit().await?;
            tracing::info!(identity = %orphan.identity, "orphan has an owner again");
        }
        self.disabled_orphans.replace(
            disabled
                .iter()
                .filter_map(|name| name.parse().ok())
                .collect(),
        );
        Ok((disabled, next_due))
    }

    async fn record_orphan(&self, identity: &Identity, now: Timestamp) -> Result<(), EngineError> {
        let owner = identity
            .owner
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default();
        let manager = self
            .identity(&owner)
            .and_then(|owner| owner.manager.as_ref().map(ToString::to_string));
        let mut entitlement_owners = BTreeSet::new();
        for state in [GrantState::Pending, GrantState::Active] {
            let filter = GrantFilter {
                state: Some(state),
                subject: Some(identity.name.to_string()),
                entitlement: None,
                involving: None,
                limit: None,
                after: None,
            };
            for grant in self.store.grants(&filter).await?.items {
                if let Some(group) = self
                    .config
                    .entitlement(grant.entitlement.as_str())
                    .and_then(|e| e.owners.clone())
                {
                    entitlement_owners.insert(group);
                }
            }
        }
        let orphan = Orphan {
            identity: identity.name.to_string(),
            owner: owner.clone(),
            orphaned_at: now,
            disabled_at: None,
        };
        let mut tx = self.store.begin().await?;
        tx.insert_orphan(&orphan).await?;
        let data = json!({
            "identity": orphan.identity,
            "kind": identity.kind.as_str(),
            "owner": owner,
            "disabled_at": now.plus_seconds(self.config.orphan_grace_seconds),
            "notify": { "manager": manager, "entitlement_owners": entitlement_owners },
        });
        tx.append(now, &SCHEDULER, EventKind::IdentityOrphaned, &data)
            .await?;
        tx.commit().await?;
        self.evidence_committed();
        tracing::warn!(identity = %orphan.identity, %owner, "orphaned: its owner left");
        Ok(())
    }

    async fn disable_orphan(&self, orphan: &Orphan, now: Timestamp) -> Result<(), EngineError> {
        let mut tx = self.store.begin().await?;
        tx.disable_orphan(&orphan.identity, now).await?;
        let data = json!({
            "identity": orphan.identity,
            "owner": orphan.owner,
            "orphaned_at": orphan.orphaned_at,
        });
        tx.append(now, &SCHEDULER, EventKind::IdentityOrphanDisabled, &data)
            .await?;
        tx.commit().await?;
        self.evidence_committed();
        tracing::warn!(identity = %orphan.identity, "orphan disabled: no new owner within the grace period");
        Ok(())
    }
}
