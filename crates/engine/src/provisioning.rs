//! People and groups pushed by an identity provider (the API's SCIM endpoint calls
//! these): each change recorded with its ledger event (the full record), then the view
//! and policy's entities replaced, then its consequences — a person made inactive or
//! deleted is a leaver at once; a person whose manager or groups changed is a mover,
//! whose live grants are decided again.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde_json::{Value, json};
use writ_domain::ledger::{Actor, EventKind, SystemActor};
use writ_domain::{DirectoryGroup, DirectoryId, DirectoryMeta, DirectoryUser, IdentityName};

use crate::directory::DirectoryView;
use crate::redecide::Occasion;
use crate::{Engine, EngineError, ErrorCode};

const SCIM_ACTOR: Actor = Actor::System(SystemActor::Scim);

/// A person as the provider describes it, read out of its SCIM resource.
#[derive(Debug, Clone)]
pub struct UserChange {
    pub user_name: String,
    pub external_id: Option<String>,
    pub active: bool,
    pub manager_id: Option<String>,
    pub valid_until: Option<writ_domain::Timestamp>,
    pub resource: Value,
}

/// A group as the provider describes it.
#[derive(Debug, Clone)]
pub struct GroupChange {
    pub display_name: Option<String>,
    pub external_id: Option<String>,
    /// The `value`s of its members: ids of users here.
    pub members: Vec<String>,
    pub resource: Value,
}

fn invalid(message: impl Into<String>) -> EngineError {
    EngineError::new(ErrorCode::DirectoryInvalid, message)
}

fn conflict(message: impl Into<String>) -> EngineError {
    EngineError::new(ErrorCode::DirectoryConflict, message)
}

fn check_version(id: DirectoryId, held: u64, expected: Option<u64>) -> Result<(), EngineError> {
    match expected {
        Some(expected) if expected != held => Err(EngineError::new(
            ErrorCode::DirectoryVersionMismatch,
            format!("{id} is at version {held}, not {expected}: read it again and retry"),
        )),
        _ => Ok(()),
    }
}

/// Held while one change to the directory is made (`directory_writer`).
struct DirectoryWriter<'e> {
    _local: tokio::sync::MutexGuard<'e, ()>,
    _cluster: Option<crate::cluster::ClusterGuard>,
}

impl Engine {
    /// Reads the directory from the store and puts it in force (at start, and when
    /// another node changed it).
    pub async fn load_directory(&self) -> Result<(), EngineError> {
        // Read first: a change committed while the tables are read is found next time.
        let seen = self.store.head().await?.0;
        let users = self.store.directory_users().await?;
        let groups = self.store.directory_groups().await?;
        let view = DirectoryView::build(
            &self.config,
            users.into_iter().map(|u| (u.id, u)).collect(),
            groups.into_iter().map(|g| (g.id, g)).collect(),
        );
        self.install(view).await?;
        self.directory.seen_up_to(seen);
        Ok(())
    }

    /// With several nodes, puts in force the changes another node made to the
    /// directory (found on the ledger since this node last looked). Then decisions
    /// here follow a joiner, mover or leaver within a scheduler pass (a second).
    pub(crate) async fn follow_directory(&self) -> Result<(), EngineError> {
        if !self.store.locks().shared() {
            return Ok(());
        }
        let _one_writer = self.directory.writing.lock().await;
        self.refresh_directory().await
    }

    /// Reads the directory again if the ledger shows a change since the view was read.
    /// The caller holds `directory.writing`.
    async fn refresh_directory(&self) -> Result<(), EngineError> {
        let seen = self.directory.seen();
        let head = self.store.head().await?.0;
        if head == seen {
            return Ok(());
        }
        if self.store.directory_changed_after(seen).await? {
            self.load_directory().await?;
            tracing::debug!("the directory changed on the ledger; the view in force is read again");
        } else {
            self.directory.seen_up_to(head);
        }
        Ok(())
    }

    /// The right to change the directory: one writer across every node, working on
    /// the directory as the database has it (another node may have changed it).
    async fn directory_writer(&self) -> Result<DirectoryWriter<'_>, EngineError> {
        let local = self.directory.writing.lock().await;
        let cluster = if self.store.locks().shared() {
            let cluster = self
                .lock_named(writ_store::LockSpace::Task, "directory".to_string())
                .await?;
            self.refresh_directory().await?;
            Some(cluster)
        } else {
            None
        };
        Ok(DirectoryWriter {
            _local: local,
            _cluster: cluster,
        })
    }

    pub fn directory_users(&self) -> Vec<DirectoryUser> {
        self.directory.view().users.values().cloned().collect()
    }

    pub fn directory_user(&self, id: DirectoryId) -> Option<DirectoryUser> {
        self.directory.view().users.get(&id).cloned()
    }

    pub fn directory_groups(&self) -> Vec<DirectoryGroup> {
        self.directory.view().groups.values().cloned().collect()
    }

    pub fn directory_group(&self, id: DirectoryId) -> Option<DirectoryGroup> {
        self.directory.view().groups.get(&id).cloned()
    }

    /// Puts `view` in force, with policy deciding for its identities.
    async fn install(&self, view: DirectoryView) -> Result<(), EngineError> {
        let _one_policy_change_at_a_time = self.policy.reloading.lock().await;
        let policy = self
            .policy()
            .with_identities(&self.config, view.identities.values().map(Arc::as_ref))
            .map_err(|problem| {
                EngineError::new(
                    ErrorCode::PolicyEntities,
                    format!("the directory's identities do not make Cedar entities: {problem}"),
                )
            })?;
        self.directory.replace(view);
        self.policy.replace(Arc::new(policy));
        Ok(())
    }

    fn check_user_name(
        &self,
        view: &DirectoryView,
        name: &str,
        except: Option<DirectoryId>,
    ) -> Result<IdentityName, EngineError> {
        let parsed: IdentityName = name.parse().map_err(|e: writ_domain::InvalidId| {
            invalid(format!(
                "userName {name:?} cannot name a writ identity: {}",
                e.problem
            ))
        })?;
        if self.config.identity(name).is_some() {
            return Err(conflict(format!(
                "{name} is defined in writ.toml; the identity provider cannot take it over"
            )));
        }
        if let Some(other) = view.user_named(name).filter(|u| Some(u.id) != except) {
            return Err(conflict(format!(
                "userName {name} is taken by {}",
                other.id
            )));
        }
        Ok(parsed)
    }

    pub async fn create_directory_user(
        &self,
        client: &str,
        change: UserChange,
    ) -> Result<DirectoryUser, EngineError> {
        let _one_writer = self.directory_writer().await?;
        let view = self.directory.view();
        let user_name = self.check_user_name(&view, &change.user_name, None)?;
        let now = self.clock.now();
        let user = DirectoryUser {
            id: DirectoryId::generate_at(now),
            user_name,
            external_id: change.external_id,
            active: change.active,
            manager_id: change.manager_id,
            valid_until: change.valid_until,
            resource: change.resource,
            meta: DirectoryMeta::new(now, client),
        };
        let mut tx = self.store.begin().await?;
        tx.insert_directory_user(&user).await?;
        tx.append(
            now,
            &SCIM_ACTOR,
            EventKind::DirectoryUserCreated,
            &json!({ "directory_user": user }),
        )
        .await?;
        tx.commit().await?;
        let mut users = view.users.clone();
        users.insert(user.id, user.clone());
        self.install(DirectoryView::build(
            &self.config,
            users,
            view.groups.clone(),
        ))
        .await?;
        tracing::info!(user = %user.user_name, id = %user.id, client, "directory: person created");
        Ok(user)
    }

    pub async fn replace_directory_user(
        &self,
        client: &str,
        id: DirectoryId,
        change: UserChange,
        expected_version: Option<u64>,
    ) -> Result<DirectoryUser, EngineError> {
        let _one_writer = self.directory_writer().await?;
        let view = self.directory.view();
        let before = view
            .users
            .get(&id)
            .ok_or_else(|| EngineError::not_found("user", id))?;
        check_version(id, before.meta.version, expected_version)?;
        let user_name = if change.user_name == before.user_name.as_str() {
            before.user_name.clone()
        } else {
            // Grants and requests name people by it: a person holding any may not be
            // renamed (their access would answer to nobody). Tokens issued to the old
            // name authenticate nobody afterwards.
            let renamed = self.check_user_name(&view, &change.user_name, Some(id))?;
            if self.holds_anything(before.user_name.as_str()).await? {
                return Err(invalid(format!(
                    "userName {} cannot change to {} while the person holds a grant or a pending request; revoke or wait them out first",
                    before.user_name, change.user_name
                )));
            }
            renamed
        };
        let now = self.clock.now();
        let user = DirectoryUser {
            id,
            user_name,
            external_id: change.external_id,
            active: change.active,
            manager_id: change.manager_id,
            valid_until: change.valid_until,
            resource: change.resource,
            meta: before.meta.changed(now, client),
        };
        let mut tx = self.store.begin().await?;
        tx.update_directory_user(&user).await?;
        tx.append(
            now,
            &SCIM_ACTOR,
            EventKind::DirectoryUserUpdated,
            &json!({ "directory_user": user }),
        )
        .await?;
        tx.commit().await?;
        let mut users = view.users.clone();
        users.insert(id, user.clone());
        self.install(DirectoryView::build(
            &self.config,
            users,
            view.groups.clone(),
        ))
        .await?;
        let name = user.user_name.to_string();
        if before.active && !user.active {
            tracing::info!(user = %name, client, "directory: person made inactive; a leaver");
            self.depart(&name).await?;
        } else if before.manager_id != user.manager_id {
            self.redecide_grants(Occasion::IdentityChanged, Some(&name))
                .await?;
        }
        Ok(user)
    }

    /// Whether `name` holds a live grant or has a request waiting for approval.
    async fn holds_anything(&self, name: &str) -> Result<bool, EngineError> {
        if self
            .store
            .live_grant_subjects()
            .await?
            .iter()
            .any(|s| s == name)
        {
            return Ok(true);
        }
        let pending = writ_store::RequestFilter {
            state: Some(writ_domain::lifecycle::RequestState::PendingApproval),
            requester: None,
            subject: None,
            involving: Some(vec![name.to_string()]),
            limit: Some(1),
            after: None,
        };
        Ok(!self.store.requests(&pending).await?.items.is_empty())
    }

    pub async fn delete_directory_user(
        &self,
        client: &str,
        id: DirectoryId,
    ) -> Result<(), EngineError> {
        let _one_writer = self.directory_writer().await?;
        let view = self.directory.view();
        let before = view
            .users
            .get(&id)
            .ok_or_else(|| EngineError::not_found("user", id))?;
        let now = self.clock.now();
        let mut gone = before.clone();
        gone.meta.version += 1;
        gone.meta.last_modified = now;
        gone.meta.client = client.to_string();
        let mut groups = view.groups.clone();
        let mut tx = self.store.begin().await?;
        // Out of every group first: a deleted person is a member of nothing.
        for group in groups.values_mut().filter(|g| g.members.contains(&id)) {
            group.members.retain(|member| *member != id);
            group.meta.version += 1;
            group.meta.last_modified = now;
            group.meta.client = client.to_string();
            tx.update_directory_group(group).await?;
            tx.append(
                now,
                &SCIM_ACTOR,
                EventKind::DirectoryGroupUpdated,
                &json!({ "directory_group": group }),
            )
            .await?;
        }
        tx.delete_directory_user(id).await?;
        tx.append(
            now,
            &SCIM_ACTOR,
            EventKind::DirectoryUserDeleted,
            &json!({ "directory_user": gone }),
        )
        .await?;
        tx.commit().await?;
        let mut users = view.users.clone();
        users.remove(&id);
        self.install(DirectoryView::build(&self.config, users, groups))
            .await?;
        tracing::info!(user = %gone.user_name, client, "directory: person deleted; a leaver");
        self.depart(gone.user_name.as_str()).await
    }

    fn check_group(
        &self,
        view: &DirectoryView,
        change: &GroupChange,
        except: Option<DirectoryId>,
    ) -> Result<Vec<DirectoryId>, EngineError> {
        if let Some(name) = &change.display_name
            && let Some(other) = view.group_named(name).filter(|g| Some(g.id) != except)
        {
            return Err(conflict(format!(
                "displayName {name} is taken by {}",
                other.id
            )));
        }
        let mut members = Vec::new();
        for value in &change.members {
            let id = value
                .parse::<DirectoryId>()
                .ok()
                .filter(|id| view.users.contains_key(id))
                .ok_or_else(|| {
                    invalid(format!(
                        "member {value:?} is not a user here (groups hold users, by id)"
                    ))
                })?;
            if !members.contains(&id) {
                members.push(id);
            }
        }
        Ok(members)
    }

    pub async fn create_directory_group(
        &self,
        client: &str,
        change: GroupChange,
    ) -> Result<DirectoryGroup, EngineError> {
        let _one_writer = self.directory_writer().await?;
        let view = self.directory.view();
        let members = self.check_group(&view, &change, None)?;
        let now = self.clock.now();
        let group = DirectoryGroup {
            id: DirectoryId::generate_at(now),
            display_name: change.display_name,
            external_id: change.external_id,
            members,
            resource: change.resource,
            meta: DirectoryMeta::new(now, client),
        };
        let mut tx = self.store.begin().await?;
        tx.insert_directory_group(&group).await?;
        tx.append(
            now,
            &SCIM_ACTOR,
            EventKind::DirectoryGroupCreated,
            &json!({ "directory_group": group }),
        )
        .await?;
        tx.commit().await?;
        let mut groups = view.groups.clone();
        groups.insert(group.id, group.clone());
        self.install(DirectoryView::build(
            &self.config,
            view.users.clone(),
            groups,
        ))
        .await?;
        self.moved(&view, group.members.iter()).await?;
        Ok(group)
    }

    pub async fn replace_directory_group(
        &self,
        client: &str,
        id: DirectoryId,
        change: GroupChange,
        expected_version: Option<u64>,
    ) -> Result<DirectoryGroup, EngineError> {
        let _one_writer = self.directory_writer().await?;
        let view = self.directory.view();
        let before = view
            .groups
            .get(&id)
            .ok_or_else(|| EngineError::not_found("group", id))?;
        check_version(id, before.meta.version, expected_version)?;
        let members = self.check_group(&view, &change, Some(id))?;
        let now = self.clock.now();
        let group = DirectoryGroup {
            id,
            display_name: change.display_name,
            external_id: change.external_id,
            members,
            resource: change.resource,
            meta: before.meta.changed(now, client),
        };
        let mut tx = self.store.begin().await?;
        tx.update_directory_group(&group).await?;
        tx.append(
            now,
            &SCIM_ACTOR,
            EventKind::DirectoryGroupUpdated,
            &json!({ "directory_group": group }),
        )
        .await?;
        tx.commit().await?;
        let mut groups = view.groups.clone();
        groups.insert(id, group.clone());
        self.install(DirectoryView::build(
            &self.config,
            view.users.clone(),
            groups,
        ))
        .await?;
        // Renamed: every member moved; otherwise those who joined or left.
        let old: BTreeSet<&DirectoryId> = before.members.iter().collect();
        let new: BTreeSet<&DirectoryId> = group.members.iter().collect();
        if before.display_name != group.display_name {
            self.moved(&view, old.union(&new).copied()).await?;
        } else {
            self.moved(&view, old.symmetric_difference(&new).copied())
                .await?;
        }
        Ok(group)
    }

    pub async fn delete_directory_group(
        &self,
        client: &str,
        id: DirectoryId,
    ) -> Result<(), EngineError> {
        let _one_writer = self.directory_writer().await?;
        let view = self.directory.view();
        let before = view
            .groups
            .get(&id)
            .ok_or_else(|| EngineError::not_found("group", id))?;
        let now = self.clock.now();
        let mut gone = before.clone();
        gone.meta.version += 1;
        gone.meta.last_modified = now;
        gone.meta.client = client.to_string();
        let mut tx = self.store.begin().await?;
        tx.delete_directory_group(id).await?;
        tx.append(
            now,
            &SCIM_ACTOR,
            EventKind::DirectoryGroupDeleted,
            &json!({ "directory_group": gone }),
        )
        .await?;
        tx.commit().await?;
        let mut groups = view.groups.clone();
        groups.remove(&id);
        self.install(DirectoryView::build(
            &self.config,
            view.users.clone(),
            groups,
        ))
        .await?;
        self.moved(&view, gone.members.iter()).await
    }

    /// The people whose groups changed are decided again.
    async fn moved<'a>(
        &self,
        view: &DirectoryView,
        members: impl Iterator<Item = &'a DirectoryId>,
    ) -> Result<(), EngineError> {
        let names: BTreeMap<String, ()> = members
            .filter_map(|id| view.users.get(id))
            .map(|user| (user.user_name.to_string(), ()))
            .collect();
        for name in names.keys() {
            self.redecide_grants(Occasion::IdentityChanged, Some(name))
                .await?;
        }
        Ok(())
    }
}

impl Engine {
    /// The `[[scim]]` client whose secret `bearer` is, if any (compared in constant
    /// time, as digests, so neither content nor length shows in the timing).
    pub fn scim_client(&self, bearer: &str) -> Option<String> {
        use sha2::{Digest, Sha256};
        use subtle::ConstantTimeEq;
        let given = Sha256::digest(bearer.as_bytes());
        self.config
            .scim_clients
            .iter()
            .find(|client| bool::from(Sha256::digest(client.token.0.as_bytes()).ct_eq(&given)))
            .map(|client| client.name.clone())
    }

    /// Whether any `[[scim]]` client is configured (else the endpoint is not served).
    pub fn scim_enabled(&self) -> bool {
        !self.config.scim_clients.is_empty()
    }
}
