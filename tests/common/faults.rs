//! Misbehaving servers for fault tests: a TCP proxy that cuts replies short,
//! and a server that answers every request with the same (bad) reply.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Forwards to `upstream`; while `cuts` is above zero, each new connection is
/// closed after `after` bytes of reply (mid-body for any sizeable reply).
pub struct CuttingProxy {
    pub url: String,
    pub cuts: Arc<AtomicU64>,
    pub cut_done: Arc<AtomicU64>,
}

impl CuttingProxy {
    pub async fn start(upstream: &str, after: usize) -> CuttingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let upstream = upstream.trim_start_matches("http://").to_string();
        let cuts = Arc::new(AtomicU64::new(0));
        let cut_done = Arc::new(AtomicU64::new(0));
        let (c, d) = (cuts.clone(), cut_done.clone());
        tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else { return };
                let Ok(server) = TcpStream::connect(&upstream).await else { continue };
                let cut = c.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok();
                let d = d.clone();
                tokio::spawn(async move {
                    let _ = client.set_nodelay(true);
                    let _ = server.set_nodelay(true);
                    let (mut cr, mut cw) = client.into_split();
                    let (mut sr, mut sw) = server.into_split();
                    let up = tokio::spawn(async move {
                        let _ = tokio::io::copy(&mut cr, &mut sw).await;
                        let _ = sw.shutdown().await;
                    });
                    let mut sent = 0usize;
                    let mut buf = vec![0u8; 64 * 1024];
                    loop {
                        let n = match sr.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        let n = if cut { n.min(after.saturating_sub(sent)) } else { n };
                        if cw.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                        sent += n;
                        if cut && sent >= after {
                            d.fetch_add(1, Ordering::SeqCst);
                            break;
                        }
                    }
                    up.abort();
                });
            }
        });
        CuttingProxy { url: format!("http://{addr}"), cuts, cut_done }
    }
}

/// A server that answers every request with `reply` (raw HTTP), then closes.
pub async fn canned_server(reply: &'static str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else { return };
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                // read the request head (bodies of these tests are small)
                let _ = tokio::time::timeout(std::time::Duration::from_millis(200), s.read(&mut buf)).await;
                let _ = s.write_all(reply.as_bytes()).await;
                let _ = s.shutdown().await;
            });
        }
    });
    format!("http://{addr}")
}
