//! TLS on the API listener, with real handshakes: the CLI trusts writ's certificate
//! through `--ca-file`, refuses one from another CA or an expired one, mutual TLS asks
//! for a client certificate, a renewed certificate is served without a restart or a
//! dropped connection, and plaintext on a non-loopback address needs saying so.

mod support;

use std::sync::Arc;
use std::time::Duration;

use support::{NOOP_CONFIG, Writ, eventually, stderr, stdout};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use writ_testkit::certs::{Ca, Validity};

const EXIT_UNAVAILABLE: i32 = 7;

/// A writ with `tls_cert`/`tls_key` (and `extra` server settings) from a certificate
/// `ca` signed, and the CA's certificate in `ca.pem` for the CLI.
fn writ_with_tls(ca: &Ca, validity: Validity, extra: &str) -> Writ {
    let writ = Writ::new(NOOP_CONFIG, &[]);
    install_server_certificate(&writ, ca, validity);
    std::fs::write(writ.path("ca.pem"), ca.pem()).expect("ca.pem");
    writ.set_server(&format!(
        "tls_cert = \"tls/cert.pem\"\ntls_key = \"tls/key.pem\"\n{extra}"
    ));
    writ
}

fn install_server_certificate(writ: &Writ, ca: &Ca, validity: Validity) {
    let (certificate, key) = ca.server(validity);
    std::fs::create_dir_all(writ.path("tls")).expect("tls dir");
    // The key first: the pair is inconsistent until both are written, as in real renewals.
    std::fs::write(writ.path("tls/key.pem"), key).expect("key");
    std::fs::write(writ.path("tls/cert.pem"), certificate).expect("cert");
}

/// `writ whoami` with the admin's token and `args`: (exit code, stdout, stderr).
fn whoami(writ: &Writ, args: &[&str]) -> (i32, String, String) {
    let token = writ.admin_token();
    let mut all = vec!["whoami", "--token", &token];
    all.extend_from_slice(args);
    let output = writ.run(&all);
    (
        output.status.code().unwrap_or(-1),
        stdout(&output),
        stderr(&output),
    )
}

#[tokio::test]
async fn the_cli_talks_to_writ_over_tls_when_it_trusts_the_ca() {
    let ca = Ca::new("writ test CA");
    let mut writ = writ_with_tls(&ca, Validity::Current, "");
    writ.use_tls(&ca.pem(), None);
    writ.start().await;
    let ca_file = writ.path("ca.pem");
    let ca_file = ca_file.to_str().expect("utf-8");

    // The address comes from the config, and the config says TLS: https.
    let (code, out, err) = whoami(&writ, &["--ca-file", ca_file]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(support::ADMIN), "{out}");
    let server = writ.base();
    let (code, _, err) = whoami(&writ, &["--server", &server, "--ca-file", ca_file]);
    assert_eq!(code, 0, "{err}");

    // The system's CAs alone do not know the test CA: refused, and told what to do.
    let (code, _, err) = whoami(&writ, &["--server", &server]);
    assert_eq!(code, EXIT_UNAVAILABLE, "{err}");
    assert!(
        err.contains("certificate") && err.contains("--ca-file"),
        "{err}"
    );

    // No plaintext fallback on the TLS port.
    let plain = format!("http://127.0.0.1:{}/healthz", writ.port);
    assert!(
        reqwest::get(&plain).await.is_err(),
        "plaintext HTTP was answered on the TLS listener"
    );
}

#[tokio::test]
async fn a_certificate_from_another_ca_or_an_expired_one_is_refused() {
    let trusted = Ca::new("trusted CA");
    let other = Ca::new("someone else's CA");
    for (signer, validity, why) in [
        (&other, Validity::Current, "UnknownIssuer"),
        (&trusted, Validity::Expired, "certificate expired"),
    ] {
        let mut writ = writ_with_tls(signer, validity, "");
        std::fs::write(writ.path("ca.pem"), trusted.pem()).expect("ca.pem");
        writ.use_tls(&signer.pem(), None);
        if matches!(validity, Validity::Current) {
            writ.start().await;
        } else {
            // The harness's own client would refuse the expired certificate too: wait
            // for the port instead.
            writ.spawn(&[]);
            assert!(
                eventually(Duration::from_secs(30), || {
                    std::net::TcpStream::connect(("127.0.0.1", writ.port)).is_ok()
                })
                .await,
                "writ did not listen: {}",
                writ.log()
            );
        }
        let ca_file = writ.path("ca.pem");
        let (code, _, err) = whoami(&writ, &["--ca-file", ca_file.to_str().expect("utf-8")]);
        assert_eq!(code, EXIT_UNAVAILABLE, "{why}: {err}");
        assert!(err.contains(why), "{why}: {err}");
    }
}

#[tokio::test]
async fn mutual_tls_refuses_a_client_without_a_certificate_from_its_ca() {
    let server_ca = Ca::new("server CA");
    let client_ca = Ca::new("client CA");
    let stranger_ca = Ca::new("stranger CA");
    let mut writ = writ_with_tls(&server_ca, Validity::Current, "client_ca = \"clients.pem\"");
    append_to_config(
        &writ,
        "[[service]]\nname = \"deployer\"\nowner = \"alice\"\n\
         workload = [{ client_certificate = \"spiffe://example.org/ns/ci/sa/deployer\" }]\n",
    );
    std::fs::write(writ.path("clients.pem"), client_ca.pem()).expect("clients.pem");
    let client = client_ca.client("spiffe://example.org/ns/ci/sa/deployer");
    let unbound = client_ca.client("spiffe://example.org/ns/ci/sa/builder");
    let stranger = stranger_ca.client("spiffe://example.org/ns/ci/sa/deployer");
    std::fs::write(writ.path("client.pem"), &client).expect("client.pem");
    std::fs::write(writ.path("unbound.pem"), &unbound).expect("unbound.pem");
    std::fs::write(writ.path("stranger.pem"), &stranger).expect("stranger.pem");
    writ.use_tls(&server_ca.pem(), Some(&client));
    writ.start().await;
    let ca_file = writ.path("ca.pem");
    let ca_file = ca_file.to_str().expect("utf-8");

    let client_file = writ.path("client.pem");
    let client_file = client_file.to_str().expect("utf-8");
    let (code, out, err) = whoami(&writ, &["--ca-file", ca_file, "--client-cert", client_file]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(support::ADMIN),
        "a bearer token speaks for the caller: {out}"
    );

    // Without a token, the certificate's SPIFFE ID proves the service bound to it ...
    let output = writ.run(&["whoami", "--ca-file", ca_file, "--client-cert", client_file]);
    assert!(
        stdout(&output).starts_with("deployer (service)"),
        "{}{}",
        stdout(&output),
        stderr(&output)
    );
    // ... and a certificate from the right CA for an unbound SPIFFE ID proves nobody.
    let unbound_file = writ.path("unbound.pem");
    let output = writ.run(&[
        "whoami",
        "--ca-file",
        ca_file,
        "--client-cert",
        unbound_file.to_str().expect("utf-8"),
    ]);
    assert_eq!(output.status.code(), Some(5), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("token_identity_unknown"),
        "{}",
        stderr(&output)
    );

    let (code, _, err) = whoami(&writ, &["--ca-file", ca_file]);
    assert_eq!(
        code, EXIT_UNAVAILABLE,
        "without a client certificate: {err}"
    );
    let stranger_file = writ.path("stranger.pem");
    let as_stranger = [
        "--ca-file",
        ca_file,
        "--client-cert",
        stranger_file.to_str().expect("utf-8"),
    ];
    let (code, _, err) = whoami(&writ, &as_stranger);
    assert_eq!(
        code, EXIT_UNAVAILABLE,
        "a certificate from another CA: {err}"
    );

    // "optional": a client without a certificate gets in with its bearer token, one
    // with a certificate from another CA still does not.
    writ.stop();
    writ.set_server("client_cert = \"optional\"");
    writ.start().await;
    let (code, _, err) = whoami(&writ, &["--ca-file", ca_file]);
    assert_eq!(code, 0, "optional, without a certificate: {err}");
    let (code, _, err) = whoami(&writ, &as_stranger);
    assert_eq!(
        code, EXIT_UNAVAILABLE,
        "optional, a stranger's certificate: {err}"
    );
}

fn append_to_config(writ: &Writ, text: &str) {
    let mut config = std::fs::read_to_string(&writ.config).expect("config");
    config.push_str(text);
    std::fs::write(&writ.config, config).expect("config");
}

/// A TLS connection of our own, kept open across the renewal.
async fn open_connection(
    ca: &Ca,
    port: u16,
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    let der = rustls::pki_types::CertificateDer::from_pem_slice_ca(&ca.pem());
    roots.add(der).expect("root");
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect("127.0.0.1".try_into().expect("name"), stream)
        .await
        .expect("handshake")
}

/// `GET /healthz` on an open HTTP/1.1 connection: the status line.
async fn health_on(stream: &mut tokio_rustls::client::TlsStream<tokio::net::TcpStream>) -> String {
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .expect("write");
    let mut buffer = vec![0u8; 4096];
    let read = stream.read(&mut buffer).await.expect("read");
    String::from_utf8_lossy(&buffer[..read])
        .lines()
        .next()
        .unwrap_or_default()
        .to_string()
}

trait CaPem {
    fn from_pem_slice_ca(pem: &str) -> Self;
}

impl CaPem for rustls::pki_types::CertificateDer<'static> {
    fn from_pem_slice_ca(pem: &str) -> Self {
        use rustls::pki_types::pem::PemObject;
        Self::from_pem_slice(pem.as_bytes()).expect("PEM certificate")
    }
}

#[tokio::test]
async fn a_renewed_certificate_is_served_without_a_restart_or_a_dropped_connection() {
    let old_ca = Ca::new("old CA");
    let new_ca = Ca::new("new CA");
    let mut writ = writ_with_tls(&old_ca, Validity::Current, "");
    writ.use_tls(&old_ca.pem(), None);
    writ.start().await;
    let mut open = open_connection(&old_ca, writ.port).await;
    assert_eq!(health_on(&mut open).await, "HTTP/1.1 200 OK");

    // A file that is not a certificate is reported and the current one kept.
    std::fs::write(writ.path("tls/cert.pem"), "not a certificate").expect("garbage");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let old_client = support::tls_client(&old_ca.pem(), None);
    let health = format!("{}/healthz", writ.base());
    assert!(old_client.get(&health).send().await.is_ok());
    assert!(writ.log().contains("cannot be used"), "{}", writ.log());

    install_server_certificate(&writ, &new_ca, Validity::Current);
    let new_client = support::tls_client(&new_ca.pem(), None);
    let mut renewed = false;
    for _ in 0..100 {
        if new_client.get(&health).send().await.is_ok() {
            renewed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        renewed,
        "the new certificate was not served: {}",
        writ.log()
    );
    assert!(
        support::tls_client(&old_ca.pem(), None)
            .get(&health)
            .send()
            .await
            .is_err(),
        "the old certificate is still served to new connections"
    );
    // The connection opened before the renewal still works.
    assert_eq!(health_on(&mut open).await, "HTTP/1.1 200 OK");
}

#[tokio::test]
async fn plaintext_on_an_address_other_machines_reach_needs_allow_plaintext() {
    let mut writ = Writ::new(NOOP_CONFIG, &[]);
    let loopback = format!("127.0.0.1:{}", writ.port);
    let everywhere = format!("0.0.0.0:{}", writ.port);
    writ.replace_in_config(&loopback, &everywhere);
    let output = writ.run(&["serve"]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    let err = stderr(&output);
    assert!(
        err.contains("server.listen") && err.contains("allow_plaintext"),
        "{err}"
    );

    writ.set_server("allow_plaintext = true");
    writ.start().await;
    assert!(
        writ.log().contains("serving plaintext HTTP"),
        "{}",
        writ.log()
    );
}
