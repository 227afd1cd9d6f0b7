//! `[server]` TLS: the certificate writ serves, the CA its clients' certificates must
//! chain to, and the rule that bearer tokens never cross a network in clear text.

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::ConfigError;
use crate::raw::RawServer;
use crate::validate::Checker;

/// TLS for the API listener. The files are read when `writ serve` starts and again
/// whenever they change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tls {
    /// PEM: the server certificate, then any intermediates.
    pub cert: PathBuf,
    /// PEM: its private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// Mutual TLS: client certificates are verified against these CAs.
    pub client_ca: Option<ClientCa>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCa {
    /// PEM: one or more CA certificates.
    pub file: PathBuf,
    /// `true` (the default): a client without a certificate is refused in the
    /// handshake. `false`: a certificate is verified when one is presented, and a
    /// client without one must bring a bearer token.
    pub required: bool,
}

pub(crate) fn validate_tls(
    check: &Checker<'_>,
    raw: &RawServer,
    listen: SocketAddr,
) -> Result<(Option<Tls>, bool), ConfigError> {
    let allow_plaintext = raw.allow_plaintext.unwrap_or(false);
    let tls = match (&raw.tls_cert, &raw.tls_key) {
        (None, None) => None,
        (Some(_), None) => {
            return Err(check.invalid(
                "server.tls_key",
                "is missing: server.tls_cert needs the certificate's private key",
            ));
        }
        (None, Some(_)) => {
            return Err(check.invalid(
                "server.tls_cert",
                "is missing: server.tls_key needs the certificate it belongs to",
            ));
        }
        (Some(cert), Some(key)) => Some(Tls {
            cert: check.relative(&cert.0),
            key: check.relative(&key.0),
            client_ca: None,
        }),
    };
    let client_ca = match (
        &raw.client_ca,
        raw.client_cert.as_ref().map(|t| t.0.as_str()),
    ) {
        (None, None) => None,
        (None, Some(_)) => {
            return Err(check.invalid(
                "server.client_cert",
                "needs server.client_ca (the CA client certificates must chain to)",
            ));
        }
        (Some(file), mode) => Some(ClientCa {
            file: check.relative(&file.0),
            required: match mode {
                None | Some("required") => true,
                Some("optional") => false,
                Some(other) => {
                    return Err(check.invalid(
                        "server.client_cert",
                        format!("{other:?} is not \"required\" or \"optional\""),
                    ));
                }
            },
        }),
    };
    let tls = match (tls, client_ca) {
        (None, Some(_)) => {
            return Err(check.invalid(
                "server.client_ca",
                "needs server.tls_cert and server.tls_key (mutual TLS is TLS)",
            ));
        }
        (Some(tls), client_ca) => Some(Tls { client_ca, ..tls }),
        (None, None) => None,
    };
    if tls.is_none() && !listen.ip().is_loopback() && !allow_plaintext {
        return Err(check.invalid(
            "server.listen",
            format!(
                "{listen} is reachable from other machines, and without TLS bearer tokens \
                 would cross the network in clear text: set server.tls_cert and \
                 server.tls_key, or allow_plaintext = true if a proxy in front of writ \
                 terminates TLS"
            ),
        ));
    }
    Ok((tls, allow_plaintext))
}
