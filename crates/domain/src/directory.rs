//! People and groups an identity provider pushes over SCIM 2.0 (RFC 7643): the records
//! writ keeps of them. A record keeps the SCIM resource as the provider last wrote it
//! (`resource`, without the `id` and `meta` writ sets), so what was sent reads back,
//! and the few fields writ acts on, read out of it once.

use serde::{Deserialize, Serialize};

use crate::{DirectoryId, IdentityName, Timestamp};

/// A person from the identity provider: a writ user named by its `userName`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DirectoryUser {
    pub id: DirectoryId,
    pub user_name: IdentityName,
    pub external_id: Option<String>,
    /// `active: false` makes the person a leaver.
    pub active: bool,
    /// The manager's `id` (the enterprise extension's `manager.value`).
    pub manager_id: Option<String>,
    /// When the person ends (writ's extension's `validUntil`): a leaver from then on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_until: Option<Timestamp>,
    pub resource: serde_json::Value,
    pub meta: DirectoryMeta,
}

/// A group from the identity provider: what policy sees as `Group::"<displayName>"`
/// (a group without a displayName is kept, but policy cannot name it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DirectoryGroup {
    pub id: DirectoryId,
    pub display_name: Option<String>,
    pub external_id: Option<String>,
    /// The `id`s of the users in it.
    pub members: Vec<DirectoryId>,
    pub resource: serde_json::Value,
    pub meta: DirectoryMeta,
}

/// When a record was made and last changed, by which `[[scim]]` client, and its
/// version (the SCIM `meta.version` ETag counts it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectoryMeta {
    pub created: Timestamp,
    pub last_modified: Timestamp,
    pub version: u64,
    pub client: String,
}

impl DirectoryMeta {
    /// A record made at `at` by `client`: version 1.
    pub fn new(at: Timestamp, client: &str) -> Self {
        Self {
            created: at,
            last_modified: at,
            version: 1,
            client: client.to_string(),
        }
    }

    /// The same record changed at `at` by `client`: the next version.
    pub fn changed(&self, at: Timestamp, client: &str) -> Self {
        Self {
            created: self.created,
            last_modified: at,
            version: self.version + 1,
            client: client.to_string(),
        }
    }
}
