//! TLS for the API listener: the server certificate (and, for mutual TLS, the CAs
//! client certificates must chain to) read from PEM files, and read again whenever
//! they change. Each connection takes the configuration current when it arrives, so a
//! renewed certificate is served to new connections while open ones carry on.

use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rustls::RootCertStore;
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use sha2::{Digest, Sha256};
use tokio::sync::watch;
use writ_config::Tls;

/// How often the files are checked for changes.
const RELOAD_CHECK: Duration = Duration::from_secs(1);

/// What is wrong with the TLS files, naming the file.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: cannot read: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {problem}")]
    Content { path: String, problem: String },
    #[error("{0}")]
    Rustls(String),
}

/// The files' contents, to notice a change (and only a change).
type Fingerprint = [u8; 32];

/// The current server configuration, swapped whole when the files change.
pub struct ReloadingTls {
    source: Tls,
    current: RwLock<(Fingerprint, Arc<ServerConfig>)>,
}

impl ReloadingTls {
    pub fn load(source: Tls) -> Result<Self, TlsError> {
        let (fingerprint, config) = load(&source)?;
        Ok(Self {
            source,
            current: RwLock::new((fingerprint, Arc::new(config))),
        })
    }

    /// The configuration a new connection is served with.
    pub fn config(&self) -> Arc<ServerConfig> {
        match self.current.read() {
            Ok(current) => current.1.clone(),
            Err(poisoned) => poisoned.into_inner().1.clone(),
        }
    }

    /// Checks the files until `stopped`; a changed, valid set replaces the current one,
    /// an invalid one is reported and the current one kept.
    pub async fn watch(self: Arc<Self>, mut stopped: watch::Receiver<bool>) {
        loop {
            tokio::select! {
                () = tokio::time::sleep(RELOAD_CHECK) => {}
                _ = stopped.wait_for(|stop| *stop) => return,
            }
            self.reload_if_changed();
        }
    }

    fn reload_if_changed(&self) {
        let unchanged = fingerprint(&self.source).ok() == Some(self.fingerprint());
        if unchanged {
            return;
        }
        match load(&self.source) {
            Ok((fingerprint, config)) => {
                let mut current = match self.current.write() {
                    Ok(current) => current,
                    Err(poisoned) => poisoned.into_inner(),
                };
                *current = (fingerprint, Arc::new(config));
                tracing::info!(cert = %self.source.cert.display(), "TLS certificate reloaded");
            }
            // Files are often replaced one at a time: the next check sees the pair.
            Err(error) => {
                tracing::warn!(%error, "TLS files changed but cannot be used; still serving the previous certificate");
            }
        }
    }

    fn fingerprint(&self) -> Fingerprint {
        match self.current.read() {
            Ok(current) => current.0,
            Err(poisoned) => poisoned.into_inner().0,
        }
    }
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.display().to_string(),
        source,
    })
}

fn fingerprint(source: &Tls) -> Result<Fingerprint, TlsError> {
    let mut hash = Sha256::new();
    for path in files(source) {
        let bytes = read(path)?;
        hash.update((bytes.len() as u64).to_be_bytes());
        hash.update(bytes);
    }
    Ok(hash.finalize().into())
}

fn files(source: &Tls) -> impl Iterator<Item = &Path> {
    [source.cert.as_path(), source.key.as_path()]
        .into_iter()
        .chain(source.client_ca.as_ref().map(|ca| ca.file.as_path()))
}

fn certificates(path: &Path, what: &str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let content = |problem: String| TlsError::Content {
        path: path.display().to_string(),
        problem,
    };
    let certificates = CertificateDer::pem_slice_iter(&read(path)?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| content(format!("not PEM: {e}")))?;
    if certificates.is_empty() {
        return Err(content(format!("holds no {what} (no CERTIFICATE block)")));
    }
    Ok(certificates)
}

fn load(source: &Tls) -> Result<(Fingerprint, ServerConfig), TlsError> {
    // Read the fingerprint first: a file replaced while loading is loaded again later.
    let fingerprint = fingerprint(source)?;
    let chain = certificates(&source.cert, "certificate")?;
    let key =
        PrivateKeyDer::from_pem_slice(&read(&source.key)?).map_err(|e| TlsError::Content {
            path: source.key.display().to_string(),
            problem: format!("holds no usable private key: {e}"),
        })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Rustls(e.to_string()))?;
    let builder = match &source.client_ca {
        None => builder.with_no_client_auth(),
        Some(client_ca) => {
            let mut roots = RootCertStore::empty();
            for certificate in certificates(&client_ca.file, "CA certificate")? {
                roots.add(certificate).map_err(|e| TlsError::Content {
                    path: client_ca.file.display().to_string(),
                    problem: format!("not a usable CA certificate: {e}"),
                })?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = if client_ca.required {
                verifier.build()
            } else {
                verifier.allow_unauthenticated().build()
            }
            .map_err(|e| TlsError::Rustls(format!("client_ca: {e}")))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder
        .with_single_cert(chain, key)
        .map_err(|e| TlsError::Content {
            path: source.key.display().to_string(),
            problem: format!(
                "does not fit the certificate in {}: {e}",
                source.cert.display()
            ),
        })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok((fingerprint, config))
}
