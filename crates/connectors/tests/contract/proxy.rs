//! A TCP proxy in front of a target, so the suite can take it down or make it stop
//! answering without touching the real server that other tests share.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// How the target looks to the connector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// Every byte goes through.
    Up,
    /// Connections are closed at once, new ones as soon as they arrive.
    Down,
    /// Connections are held open and nothing is forwarded either way; when the
    /// target comes back they are closed, their requests never delivered.
    Stalled,
}

pub struct Proxy {
    address: SocketAddr,
    reach: watch::Sender<Reach>,
    /// HTTP connections still to be answered `429 Too Many Requests`.
    #[allow(dead_code)] // set by scim_target.rs, which shares this file
    throttled: Arc<AtomicUsize>,
}

impl Proxy {
    /// Starts forwarding 127.0.0.1:<free port> to `upstream`.
    pub async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let address = listener.local_addr().expect("proxy address");
        let (reach, _) = watch::channel(Reach::Up);
        let watcher = reach.clone();
        let throttled = Arc::new(AtomicUsize::new(0));
        let counter = throttled.clone();
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let throttle = counter
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_ok();
                if throttle {
                    tokio::spawn(async move { too_many_requests(&mut inbound).await });
                } else {
                    tokio::spawn(serve(inbound, upstream, watcher.subscribe()));
                }
            }
        });
        Self {
            address,
            reach,
            throttled,
        }
    }

    /// Answers the next `connections` HTTP connections `429` with `Retry-After: 1`,
    /// as a rate-limited application would.
    #[allow(dead_code)] // used by scim_target.rs, which shares this file
    pub fn throttle(&self, connections: usize) {
        self.throttled.store(connections, Ordering::SeqCst);
    }

    pub fn port(&self) -> u16 {
        self.address.port()
    }

    pub fn set(&self, reach: Reach) {
        self.reach.send_replace(reach);
    }
}

async fn serve(mut inbound: TcpStream, upstream: SocketAddr, mut reach: watch::Receiver<Reach>) {
    let current = *reach.borrow_and_update();
    match current {
        Reach::Down => return,
        Reach::Stalled => {
            // Held, unread, until the target comes back; then closed.
            let _ = reach.changed().await;
            return;
        }
        Reach::Up => {}
    }
    let Ok(mut outbound) = TcpStream::connect(upstream).await else {
        return;
    };
    let now = tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => return,
        now = reach.wait_for(|reach| *reach != Reach::Up) => now.map(|now| *now),
    };
    if matches!(now, Ok(Reach::Stalled)) {
        let _ = reach.changed().await;
    }
}

/// Reads one request's head and answers 429, closing the connection.
async fn too_many_requests(inbound: &mut TcpStream) {
    let mut head = Vec::new();
    let mut buffer = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match inbound.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buffer[..n]),
        }
    }
    let _ = inbound
        .write_all(
            b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        )
        .await;
}
