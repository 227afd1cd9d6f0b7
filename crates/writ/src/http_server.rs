//! The HTTP server loop: axum's router on hyper connections that writ configures
//! itself, because `axum::serve` sets no timer, and without one hyper applies no
//! header read timeout: a client could hold a connection (and a slot of the
//! concurrency limit) open for ever by never finishing its request head (slowloris).
//! Every connection also records its peer address (`ConnectInfo`), which the webhook
//! rate limit keys on. With TLS, the handshake happens in the connection's own task,
//! bounded by the same timeout, so a slow handshake holds up no one else. On shutdown,
//! accepting stops and open connections are drained.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::tls::ReloadingTls;

/// How long open connections may take to finish once shutdown has begun.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Serves `router` on `listener` (over TLS when `tls` is given) until `shutdown`
/// completes.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    header_read_timeout: Duration,
    tls: Option<Arc<ReloadingTls>>,
    shutdown: impl Future<Output = ()>,
) {
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: wait a little, keep serving.
                    tracing::warn!(%error, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Answers are small; without TCP_NODELAY they can wait on delayed ACKs.
        if let Err(error) = stream.set_nodelay(true) {
            tracing::warn!(%error, "cannot set TCP_NODELAY");
        }
        let router = router
            .clone()
            .layer(axum::Extension(ConnectInfo::<SocketAddr>(peer)));
        let watcher = graceful.watcher();
        match &tls {
            None => {
                tokio::spawn(serve_connection(
                    TokioIo::new(stream),
                    router,
                    header_read_timeout,
                    watcher,
                    peer,
                ));
            }
            Some(tls) => {
                let acceptor = TlsAcceptor::from(tls.config());
                tokio::spawn(async move {
                    let stream =
                        match tokio::time::timeout(header_read_timeout, acceptor.accept(stream))
                            .await
                        {
                            Ok(Ok(stream)) => stream,
                            Ok(Err(error)) => {
                                tracing::debug!(%peer, %error, "TLS handshake failed");
                                return;
                            }
                            Err(_) => {
                                tracing::debug!(%peer, "TLS handshake timed out");
                                return;
                            }
                        };
                    let router = match client_certificate_id(&stream) {
                        Some(id) => router.layer(axum::Extension(id)),
                        None => router,
                    };
                    serve_connection(
                        TokioIo::new(stream),
                        router,
                        header_read_timeout,
                        watcher,
                        peer,
                    )
                    .await;
                });
            }
        }
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(DRAIN_TIMEOUT) => {
            tracing::warn!("connections still open {}s after shutdown began; closing them", DRAIN_TIMEOUT.as_secs());
        }
    }
}

/// The SPIFFE ID of a verified client certificate: its one URI SAN, if that is a
/// `spiffe://` URI (an X.509-SVID has exactly one). Anything else proves no workload.
fn client_certificate_id(
    stream: &tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
) -> Option<writ_api::ClientCertificateId> {
    let certificate = stream.get_ref().1.peer_certificates()?.first()?;
    let (_, parsed) = x509_parser::parse_x509_certificate(certificate.as_ref()).ok()?;
    let names = parsed.subject_alternative_name().ok()??;
    let mut uris = names
        .value
        .general_names
        .iter()
        .filter_map(|name| match name {
            x509_parser::extensions::GeneralName::URI(uri) => Some(*uri),
            _ => None,
        });
    match (uris.next(), uris.next()) {
        (Some(uri), None) if uri.starts_with("spiffe://") => {
            Some(writ_api::ClientCertificateId(uri.to_string()))
        }
        _ => None,
    }
}

async fn serve_connection<I>(
    io: TokioIo<I>,
    router: Router,
    header_read_timeout: Duration,
    watcher: Watcher,
    peer: SocketAddr,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    let connection = builder
        .serve_connection_with_upgrades(io, TowerToHyperService::new(router))
        .into_owned();
    if let Err(error) = watcher.watch(connection).await {
        tracing::debug!(%peer, error = %error, "connection ended with an error");
    }
}
