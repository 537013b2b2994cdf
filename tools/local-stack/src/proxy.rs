//! A TCP proxy in front of moto that can be cut off: while paused it resets every open
//! connection and every new one, so the functions and pollers behind it see moto as gone
//! (connection refused or reset) while moto keeps its state in memory.
//!
//! Depends on tokio only.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::debug;

/// The proxy; dropping it stops accepting.
pub struct FaultProxy {
    addr: SocketAddr,
    paused: Arc<AtomicBool>,
    epoch: watch::Sender<u64>,
    resets: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

impl FaultProxy {
    /// Listens on a free loopback port and forwards to `upstream`.
    ///
    /// Fails when no port can be bound.
    pub async fn start(upstream: SocketAddr) -> std::io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let paused = Arc::new(AtomicBool::new(false));
        let resets = Arc::new(AtomicU64::new(0));
        let (epoch, _) = watch::channel(0u64);
        let task = tokio::spawn(accept(
            listener,
            upstream,
            Arc::clone(&paused),
            epoch.clone(),
            Arc::clone(&resets),
        ));
        Ok(Self { addr, paused, epoch, resets, task })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Cuts moto off: open connections are reset, new ones too, until [`FaultProxy::resume`].
    pub fn pause(&self) {
        self.paused.store(true, Ordering::SeqCst);
        self.epoch.send_modify(|e| *e += 1);
    }

    /// Lets connections through again.
    pub fn resume(&self) {
        self.paused.store(false, Ordering::SeqCst);
    }

    /// Connections reset so far (open ones cut at a pause, plus new ones refused while paused).
    pub fn resets(&self) -> u64 {
        self.resets.load(Ordering::Relaxed)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Drops a socket with an RST instead of a FIN, as a vanished host's stack would answer.
fn reset(stream: TcpStream) {
    #[allow(deprecated)]
    let _ = stream.set_linger(Some(Duration::ZERO));
    drop(stream);
}

async fn accept(
    listener: TcpListener,
    upstream: SocketAddr,
    paused: Arc<AtomicBool>,
    epoch: watch::Sender<u64>,
    resets: Arc<AtomicU64>,
) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        if paused.load(Ordering::SeqCst) {
            resets.fetch_add(1, Ordering::Relaxed);
            reset(client);
            continue;
        }
        let mut cut = epoch.subscribe();
        let resets = Arc::clone(&resets);
        tokio::spawn(async move {
            let Ok(mut server) = TcpStream::connect(upstream).await else {
                reset(client);
                return;
            };
            let mut client = client;
            tokio::select! {
                result = tokio::io::copy_bidirectional(&mut client, &mut server) => {
                    debug!(ok = result.is_ok(), "proxied connection closed");
                }
                _ = cut.changed() => {
                    resets.fetch_add(1, Ordering::Relaxed);
                    reset(client);
                }
            }
        });
    }
}
