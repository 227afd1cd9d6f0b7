//! The keys writ keeps outside its database (`[keys]`): read from the configuration or
//! from a file, which is created with a fresh random key (mode 0600) the first time.
//! Key material never reaches a message or a log.

use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use hmac::{KeyInit, Mac};
use writ_config::KeySource;

/// Why a key could not be had.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("key file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("key file {path} does not hold 64 hexadecimal digits (32 bytes)")]
    Malformed { path: PathBuf },
    #[error(
        "key file {path} may be read by other users (mode {mode:o}); `chmod 600` it, as writ does for files it creates"
    )]
    Exposed { path: PathBuf, mode: u32 },
    #[error("no randomness for a new key: {0}")]
    Randomness(String),
}

/// The 32 bytes of a key from `source`, creating its file if it does not exist.
pub fn load_or_create(source: &KeySource) -> Result<[u8; 32], KeyError> {
    match source {
        KeySource::Inline(key) => Ok(key.0),
        KeySource::File(path) => match std::fs::read_to_string(path) {
            Ok(text) => {
                check_private(path)?;
                writ_config::SecretKey::from_hex(&text)
                    .map(|key| key.0)
                    .ok_or_else(|| KeyError::Malformed { path: path.clone() })
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => create(path),
            Err(source) => Err(KeyError::Io {
                path: path.clone(),
                source,
            }),
        },
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> KeyError + '_ {
    move |source| KeyError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn create(path: &Path) -> Result<[u8; 32], KeyError> {
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).map_err(|e| KeyError::Randomness(e.to_string()))?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(dir).map_err(io(dir))?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(mut file) => {
            file.write_all(format!("{}\n", hex::encode(key)).as_bytes())
                .and_then(|()| file.sync_all())
                .map_err(io(path))?;
            tracing::info!(path = %path.display(), "created a new key file");
            Ok(key)
        }
        // Another writ process created it first: use theirs.
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
            load_or_create(&KeySource::File(path.to_path_buf()))
        }
        Err(error) => Err(io(path)(error)),
    }
}

#[cfg(unix)]
fn check_private(path: &Path) -> Result<(), KeyError> {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(path)
        .map_err(io(path))?
        .permissions()
        .mode()
        & 0o777;
    if mode & 0o077 != 0 {
        return Err(KeyError::Exposed {
            path: path.to_path_buf(),
            mode,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_: &Path) -> Result<(), KeyError> {
    Ok(())
}

/// The key of bearer-token hashes: a token's stored hash is HMAC-SHA-256 under it, so a
/// row written into the tokens table by someone without the key is no valid token.
#[derive(Clone)]
pub struct TokenKey([u8; 32]);

impl fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenKey(***)")
    }
}

impl TokenKey {
    pub fn new(key: [u8; 32]) -> Self {
        Self(key)
    }

    /// A key nobody else has: tokens hashed with it are valid in this process only.
    pub fn ephemeral() -> Result<Self, KeyError> {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).map_err(|e| KeyError::Randomness(e.to_string()))?;
        Ok(Self(key))
    }

    pub fn load(source: &KeySource) -> Result<Self, KeyError> {
        load_or_create(source).map(Self)
    }

    /// The stored form of `token`, in hexadecimal.
    pub fn hash(&self, token: &str) -> String {
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(token.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_file_is_created_private_and_read_back() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("keys/token.key");
        let source = KeySource::File(path.clone());
        let created = load_or_create(&source).expect("created");
        assert_eq!(load_or_create(&source).expect("read"), created);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
            assert!(matches!(
                load_or_create(&source),
                Err(KeyError::Exposed { .. })
            ));
        }
    }

    #[test]
    fn a_malformed_key_file_is_an_error_that_does_not_show_it() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("bad.key");
        std::fs::write(&path, "not-a-key-secret-text").expect("write");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        }
        let error = load_or_create(&KeySource::File(path)).expect_err("malformed");
        assert!(!error.to_string().contains("secret-text"), "{error}");
    }

    #[test]
    fn token_hashes_depend_on_the_key() {
        let a = TokenKey::new([1; 32]);
        let b = TokenKey::new([2; 32]);
        assert_eq!(a.hash("writ_x"), a.hash("writ_x"));
        assert_ne!(a.hash("writ_x"), b.hash("writ_x"));
        assert_ne!(a.hash("writ_x"), a.hash("writ_y"));
        assert_eq!(a.hash("writ_x").len(), 64);
        assert!(!format!("{a:?}").contains("01"));
    }
}
