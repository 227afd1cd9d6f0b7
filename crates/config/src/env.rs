//! `${VAR}` interpolation, applied to every string in the config while it is parsed,
//! so an unset variable is reported with the line and key that use it.

use std::fmt;

use serde::{Deserialize, Deserializer};

/// A string from writ.toml with `${VAR}` replaced from the environment.
#[derive(Clone, PartialEq, Eq)]
pub struct EnvString(pub String);

impl fmt::Debug for EnvString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl<'de> Deserialize<'de> for EnvString {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        interpolate(&text, |name| std::env::var(name).ok())
            .map(EnvString)
            .map_err(serde::de::Error::custom)
    }
}

/// Replaces each `${NAME}` in `text` using `lookup`; `$${` writes a literal `${`.
pub fn interpolate(text: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find('$') {
        out.push_str(&rest[..start]);
        let after = &rest[start..];
        if let Some(escaped) = after.strip_prefix("$${") {
            out.push_str("${");
            rest = escaped;
        } else if let Some(open) = after.strip_prefix("${") {
            let end = open
                .find('}')
                .ok_or_else(|| format!("unclosed \"${{\" in {text:?}"))?;
            let name = &open[..end];
            let valid =
                !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                return Err(format!("invalid environment variable name {name:?}"));
            }
            let value =
                lookup(name).ok_or_else(|| format!("environment variable {name} is not set"))?;
            out.push_str(&value);
            rest = &open[end + 1..];
        } else {
            out.push('$');
            rest = &after[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(name: &str) -> Option<String> {
        (name == "HOST").then(|| "db.internal".to_string())
    }

    #[test]
    fn replaces_set_variables_and_names_unset_ones() {
        assert_eq!(
            interpolate("postgres://${HOST}:5432", lookup).as_deref(),
            Ok("postgres://db.internal:5432")
        );
        assert_eq!(
            interpolate("cost $5 $${HOST}", lookup).as_deref(),
            Ok("cost $5 ${HOST}")
        );
        assert_eq!(
            interpolate("${MISSING}", lookup),
            Err("environment variable MISSING is not set".to_string())
        );
        assert!(interpolate("${HOST", lookup).is_err());
        assert!(interpolate("${A-B}", lookup).is_err());
    }
}
