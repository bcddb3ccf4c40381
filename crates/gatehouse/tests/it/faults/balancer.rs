//! A round-robin TCP balancer, as small as the tests need: each connection goes to the next
//! backend in turn; a backend that refuses the connection is skipped for the next one (what
//! HAProxy's `redispatch` does), and when none accepts the client's connection is closed at
//! once. No health checks: a node that hangs keeps getting its turn, which is what the fault
//! tests want to see handled by the nodes' own timeouts.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};

pub struct Balancer {
    pub addr: SocketAddr,
    backends: Arc<RwLock<Vec<u16>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Balancer {
    /// Listens now (its address is the nodes' public URL); backends come with
    /// [`set_backends`](Self::set_backends).
    pub async fn start() -> Balancer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let backends = Arc::new(RwLock::new(Vec::new()));
        let next = Arc::new(AtomicUsize::new(0));
        let shared = backends.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else { continue };
                let first = next.fetch_add(1, Ordering::Relaxed);
                let backends: Vec<u16> = shared.read().unwrap().clone();
                tokio::spawn(async move {
                    for i in 0..backends.len() {
                        let port = backends[(first + i) % backends.len()];
                        let connect = TcpStream::connect(("127.0.0.1", port));
                        if let Ok(Ok(mut upstream)) = tokio::time::timeout(Duration::from_secs(1), connect).await {
                            let mut client = client;
                            let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                            return;
                        }
                    }
                    // No backend: dropping the client's connection closes it.
                });
            }
        });
        Balancer { addr, backends, task }
    }

    pub fn set_backends(&self, ports: &[u16]) {
        *self.backends.write().unwrap() = ports.to_vec();
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        self.task.abort();
    }
}
