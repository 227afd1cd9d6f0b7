//! Sign-ins `writ login` keeps, one per server, in the user's config folder
//! (`$XDG_CONFIG_HOME/writ/credentials.json`, or `WRIT_CREDENTIALS`): a file only its
//! owner may read or write (0600, in a 0700 folder), replaced whole on every change so
//! a crash never leaves half of it.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::Failure;

/// One server's sign-in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredLogin {
    pub issuer: String,
    pub client_id: String,
    pub audience: String,
    #[serde(default)]
    pub scopes: Vec<String>,
    pub access_token: String,
    pub refresh_token: Option<String>,
    /// Unix seconds; `None`: the provider did not say.
    pub expires_at: Option<i64>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct CredentialsFile {
    #[serde(default)]
    servers: BTreeMap<String, StoredLogin>,
}

pub fn path() -> Result<PathBuf, Failure> {
    if let Some(path) = std::env::var_os("WRIT_CREDENTIALS").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(path));
    }
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".config")))
        .ok_or_else(|| {
            Failure::usage(
                "cannot tell where to keep sign-ins: set HOME, XDG_CONFIG_HOME or WRIT_CREDENTIALS",
            )
        })?;
    Ok(base.join("writ").join("credentials.json"))
}

fn read() -> Result<(PathBuf, CredentialsFile), Failure> {
    let path = path()?;
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Ok((path, CredentialsFile::default()));
        }
        Err(error) => {
            return Err(Failure::failed(format!(
                "{}: cannot read: {error}",
                path.display()
            )));
        }
    };
    refuse_if_shared(&path)?;
    let file = serde_json::from_str(&text).map_err(|e| {
        Failure::failed(format!(
            "{}: not a credentials file ({e}); delete it and run `writ login` again",
            path.display()
        ))
    })?;
    Ok((path, file))
}

/// Tokens in a file others can read are everyone's tokens.
#[cfg(unix)]
fn refuse_if_shared(path: &std::path::Path) -> Result<(), Failure> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .map_err(|e| Failure::failed(format!("{}: {e}", path.display())))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(Failure::failed(format!(
            "{}: others may read or write it (mode {:o}); run `chmod 600 {}` (and consider the sign-ins in it exposed: `writ logout`)",
            path.display(),
            mode & 0o777,
            path.display()
        )));
    }
    Ok(())
}

#[cfg(not(unix))]
fn refuse_if_shared(_: &std::path::Path) -> Result<(), Failure> {
    Ok(())
}

fn write(path: &std::path::Path, file: &CredentialsFile) -> Result<(), Failure> {
    let failed = |what: &str, error: std::io::Error| {
        Failure::failed(format!("{}: cannot {what}: {error}", path.display()))
    };
    let dir = path
        .parent()
        .ok_or_else(|| Failure::usage(format!("{} has no folder", path.display())))?;
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(dir)
        .map_err(|e| failed("create its folder", e))?;
    let text = serde_json::to_string_pretty(file)
        .map_err(|e| Failure::failed(format!("cannot encode sign-ins: {e}")))?;
    let temporary = path.with_extension(format!("json.{}.tmp", std::process::id()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut out = options.open(&temporary).map_err(|e| failed("write", e))?;
    let written = out
        .write_all(text.as_bytes())
        .and_then(|()| out.sync_all())
        .and_then(|()| std::fs::rename(&temporary, path));
    if let Err(error) = written {
        let _ = std::fs::remove_file(&temporary);
        return Err(failed("write", error));
    }
    Ok(())
}

/// The sign-in kept for `server`, if any.
pub fn load(server: &str) -> Result<Option<StoredLogin>, Failure> {
    Ok(read()?.1.servers.remove(server))
}

/// Keeps `login` as `server`'s sign-in (replacing any before it).
pub fn store(server: &str, login: StoredLogin) -> Result<PathBuf, Failure> {
    let (path, mut file) = read()?;
    file.servers.insert(server.to_string(), login);
    write(&path, &file)?;
    Ok(path)
}

/// Forgets `server`'s sign-in; what it was, if there was one.
pub fn remove(server: &str) -> Result<Option<StoredLogin>, Failure> {
    let (path, mut file) = read()?;
    let removed = file.servers.remove(server);
    if removed.is_some() {
        write(&path, &file)?;
    }
    Ok(removed)
}
