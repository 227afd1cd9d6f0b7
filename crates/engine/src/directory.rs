//! Who writ knows: the identities in `writ.toml` and the people and groups an identity
//! provider pushes over SCIM, in one view kept in memory and replaced whole on every
//! change. A name in `writ.toml` wins: the provider cannot create a person of that name
//! (SCIM answers 409), so it can never take over a configured admin, service or agent.
//!
//! A directory person is a writ user named by its `userName`, in the groups whose
//! members it is (policy sees `Group::"<displayName>"`), with the manager its
//! enterprise extension names; `active: false` makes it a leaver.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use writ_config::{Config, Identity};
use writ_domain::{DirectoryGroup, DirectoryId, DirectoryUser, IdentityKind, IdentityName};

/// One consistent view of every identity.
#[derive(Debug, Default)]
pub(crate) struct DirectoryView {
    pub users: BTreeMap<DirectoryId, DirectoryUser>,
    pub groups: BTreeMap<DirectoryId, DirectoryGroup>,
    /// Configured and directory identities by name (configured ones win).
    pub identities: HashMap<IdentityName, Arc<Identity>>,
}

impl DirectoryView {
    pub fn build(
        config: &Config,
        users: BTreeMap<DirectoryId, DirectoryUser>,
        groups: BTreeMap<DirectoryId, DirectoryGroup>,
    ) -> Self {
        let mut identities: HashMap<IdentityName, Arc<Identity>> = config
            .identities
            .values()
            .map(|identity| (identity.name.clone(), Arc::new(identity.clone())))
            .collect();
        let mut groups_of: HashMap<DirectoryId, Vec<String>> = HashMap::new();
        for group in groups.values() {
            let Some(name) = &group.display_name else {
                continue;
            };
            for member in &group.members {
                groups_of.entry(*member).or_default().push(name.clone());
            }
        }
        for user in users.values() {
            if identities.contains_key(&user.user_name) {
                continue;
            }
            let mut groups = groups_of.remove(&user.id).unwrap_or_default();
            groups.sort();
            groups.dedup();
            let manager = user
                .manager_id
                .as_deref()
                .and_then(|id| id.parse::<DirectoryId>().ok())
                .and_then(|id| users.get(&id))
                .map(|manager| manager.user_name.clone());
            identities.insert(
                user.user_name.clone(),
                Arc::new(Identity {
                    name: user.user_name.clone(),
                    kind: IdentityKind::User,
                    groups,
                    manager,
                    owner: None,
                    disabled: !user.active,
                    accounts: BTreeMap::new(),
                    delegates: Vec::new(),
                    workloads: Vec::new(),
                    valid_until: user.valid_until,
                }),
            );
        }
        Self {
            users,
            groups,
            identities,
        }
    }

    pub fn user_named(&self, name: &str) -> Option<&DirectoryUser> {
        let key = name.to_lowercase();
        self.users
            .values()
            .find(|user| user.user_name.as_str().to_lowercase() == key)
    }

    pub fn group_named(&self, name: &str) -> Option<&DirectoryGroup> {
        let key = name.to_lowercase();
        self.groups.values().find(|group| {
            group
                .display_name
                .as_ref()
                .is_some_and(|n| n.to_lowercase() == key)
        })
    }
}

/// The view in force, and one writer at a time.
#[derive(Debug, Default)]
pub(crate) struct Directory {
    view: RwLock<Arc<DirectoryView>>,
    pub writing: tokio::sync::Mutex<()>,
    /// The ledger position the view reflects (for following other nodes' changes).
    seen: std::sync::atomic::AtomicI64,
}

impl Directory {
    pub fn new(view: DirectoryView) -> Self {
        Self {
            view: RwLock::new(Arc::new(view)),
            writing: tokio::sync::Mutex::new(()),
            seen: std::sync::atomic::AtomicI64::new(0),
        }
    }

    pub fn seen(&self) -> i64 {
        self.seen.load(std::sync::atomic::Ordering::SeqCst)
    }

    pub fn seen_up_to(&self, seq: i64) {
        self.seen.store(seq, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn view(&self) -> Arc<DirectoryView> {
        match self.view.read() {
            Ok(view) => view.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    pub fn replace(&self, view: DirectoryView) {
        let view = Arc::new(view);
        match self.view.write() {
            Ok(mut current) => *current = view,
            Err(poisoned) => *poisoned.into_inner() = view,
        }
    }
}
