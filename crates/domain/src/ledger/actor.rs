//! Who made a change on the ledger: an identity, or writ itself.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::IdentityName;

/// writ acting on its own: on its schedule, or for a system that is not an identity.
/// Its ledger text is `writ:<name>`, which no identity's name can be (names hold no `:`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SystemActor {
    /// Expiries, revocations and their retries, exceptions running out.
    Scheduler,
    /// A ticketing system: a closed or cancelled ticket ends what it backs.
    Itsm,
    /// A reconciliation pass.
    Reconciler,
    /// A webhook delivery that was refused.
    Webhook,
    /// A ledger checkpoint.
    Checkpoint,
    /// An offline command run by whoever holds the database and the key (`writ token
    /// issue`).
    Cli,
    /// A signal from whoever may signal the process (SIGHUP: reload the policies).
    Signal,
    /// The policy in force, deciding live grants again (after a reload, at start, or
    /// when an identity's groups or manager change).
    Policy,
    /// An identity provider pushing people and groups over SCIM (the `[[scim]]`
    /// client is named in the event).
    Scim,
}

impl SystemActor {
    pub const ALL: [Self; 9] = [
        Self::Scheduler,
        Self::Itsm,
        Self::Reconciler,
        Self::Webhook,
        Self::Checkpoint,
        Self::Cli,
        Self::Signal,
        Self::Policy,
        Self::Scim,
    ];

    /// The ledger's text for it (hashed: it never changes).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Scheduler => "writ:scheduler",
            Self::Itsm => "writ:itsm",
            Self::Reconciler => "writ:reconcile",
            Self::Webhook => "writ:webhook",
            Self::Checkpoint => "writ:checkpoint",
            Self::Cli => "writ:cli",
            Self::Signal => "writ:signal",
            Self::Policy => "writ:policy",
            Self::Scim => "writ:scim",
        }
    }
}

/// The actor of a ledger event.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Actor {
    Identity(IdentityName),
    System(SystemActor),
}

impl Actor {
    pub fn as_str(&self) -> &str {
        match self {
            Self::Identity(name) => name.as_str(),
            Self::System(system) => system.as_str(),
        }
    }

    /// The identity that acted, if it was one (and not writ itself).
    pub fn identity(&self) -> Option<&IdentityName> {
        match self {
            Self::Identity(name) => Some(name),
            Self::System(_) => None,
        }
    }
}

impl From<IdentityName> for Actor {
    fn from(name: IdentityName) -> Self {
        Self::Identity(name)
    }
}

impl From<SystemActor> for Actor {
    fn from(system: SystemActor) -> Self {
        Self::System(system)
    }
}

/// Ledger text that names neither an identity nor one of writ's system actors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is neither an identity's name nor one of writ's system actors")]
pub struct InvalidActor(pub String);

impl FromStr for Actor {
    type Err = InvalidActor;
    fn from_str(text: &str) -> Result<Self, InvalidActor> {
        if let Some(system) = SystemActor::ALL.into_iter().find(|s| s.as_str() == text) {
            return Ok(Self::System(system));
        }
        text.parse()
            .map(Self::Identity)
            .map_err(|_| InvalidActor(text.to_string()))
    }
}

impl TryFrom<String> for Actor {
    type Error = InvalidActor;
    fn try_from(text: String) -> Result<Self, InvalidActor> {
        text.parse()
    }
}

impl From<Actor> for String {
    fn from(actor: Actor) -> String {
        actor.as_str().to_string()
    }
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn system_actors_read_back_as_themselves_and_never_as_identities() {
        for system in SystemActor::ALL {
            assert_eq!(system.as_str().parse(), Ok(Actor::System(system)));
            assert!(system.as_str().parse::<IdentityName>().is_err());
        }
        assert!("writ:somebody".parse::<Actor>().is_err());
        assert!("".parse::<Actor>().is_err());
    }

    proptest! {
        #[test]
        fn an_identity_actor_reads_back_as_that_identity(name in "[a-z][a-z0-9_.@-]{0,30}") {
            let identity: IdentityName = name.parse().expect("a valid name");
            let actor = Actor::from(identity.clone());
            prop_assert_eq!(actor.to_string().parse::<Actor>(), Ok(Actor::Identity(identity)));
        }
    }
}
