use std::collections::HashSet;
use std::sync::Mutex;

use async_trait::async_trait;

use crate::{Access, Connector, ConnectorError};

/// Keeps memberships in memory. For benchmarks (it measures writ, not a target) and trials.
#[derive(Debug, Default)]
pub struct NoopConnector {
    held: Mutex<HashSet<(String, String)>>,
}

impl NoopConnector {
    fn with<T>(
        &self,
        f: impl FnOnce(&mut HashSet<(String, String)>) -> T,
    ) -> Result<T, ConnectorError> {
        let mut held = self
            .held
            .lock()
            .map_err(|_| ConnectorError::Failed("noop connector state poisoned".into()))?;
        Ok(f(&mut held))
    }
}

#[async_trait]
impl Connector for NoopConnector {
    async fn grant(&self, access: Access<'_>) -> Result<(), ConnectorError> {
        self.with(|held| {
            held.insert((access.role.to_string(), access.account.to_string()));
        })
    }

    async fn revoke(&self, access: Access<'_>) -> Result<(), ConnectorError> {
        self.with(|held| {
            held.remove(&(access.role.to_string(), access.account.to_string()));
        })
    }

    async fn holds(&self, access: Access<'_>) -> Result<bool, ConnectorError> {
        self.with(|held| held.contains(&(access.role.to_string(), access.account.to_string())))
    }

    async fn members(&self, role: &str) -> Result<Vec<String>, ConnectorError> {
        self.with(|held| {
            held.iter()
                .filter(|(held_role, _)| held_role == role)
                .map(|(_, account)| account.clone())
                .collect()
        })
    }
}
