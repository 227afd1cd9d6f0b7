//! `[[scim]]`: identity providers allowed to push people and groups to writ over SCIM.

use crate::ConfigError;
use crate::oidc::SecretString;
use crate::raw::RawScim;
use crate::validate::Checker;

/// The least length of a client's bearer secret: it lets its holder create people.
pub const SCIM_TOKEN_LENGTH_MIN: usize = 32;

/// A SCIM client: it authenticates with its secret as a bearer token, and is named on
/// every change it makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScimClient {
    pub name: String,
    pub token: SecretString,
}

pub(crate) fn validate_scim(
    check: &Checker<'_>,
    raw: Vec<RawScim>,
) -> Result<Vec<ScimClient>, ConfigError> {
    let mut clients: Vec<ScimClient> = Vec::new();
    for (index, raw) in raw.into_iter().enumerate() {
        let key = |field: &str| format!("scim[{index}].{field}");
        let name = check.system_name(&key("name"), raw.name.0)?;
        if clients.iter().any(|c| c.name == name) {
            return Err(check.invalid(key("name"), format!("scim client {name} is defined twice")));
        }
        let token = raw.token.0;
        if token.chars().count() < SCIM_TOKEN_LENGTH_MIN {
            return Err(check.invalid(
                key("token"),
                format!(
                    "a SCIM secret must be at least {SCIM_TOKEN_LENGTH_MIN} characters (it lets its holder create people); generate one, e.g. openssl rand -hex 32"
                ),
            ));
        }
        if clients.iter().any(|c| c.token.0 == token) {
            return Err(check.invalid(key("token"), "two SCIM clients share a secret"));
        }
        clients.push(ScimClient {
            name,
            token: SecretString(token),
        });
    }
    Ok(clients)
}
