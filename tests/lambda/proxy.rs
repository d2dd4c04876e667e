//! A fault-injecting TCP proxy in front of a real `redis-server`, to make
//! exactly the records we choose fail in a *retryable* way while the rest
//! of the store keeps working.
//!
//! It relays the RESP protocol one command at a time: a command with the
//! marker in any argument is answered `-LOADING …` (what a Redis that is
//! still loading its dataset says) without reaching the server; every other
//! command goes to the server and its one reply comes back. The store sees
//! a genuine Redis error reply, which it classifies as retryable
//! (`StoreError::Unavailable`) — nothing in the code under test is mocked.
//! A record carrying the marker fails on its first write (the raw event,
//! whose value holds the whole event).

use crate::redis_support::RedisServer;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The error injected for commands carrying the marker.
const FAULT: &[u8] = b"-LOADING Redis is loading the dataset in memory\r\n";

/// A `redis-server` reachable through a proxy that fails marked commands.
pub struct FaultyRedis {
    /// The proxy's port: point the store here.
    pub port: u16,
    injected: Arc<AtomicUsize>,
    _server: RedisServer,
}

impl FaultyRedis {
    /// Starts a server and the proxy; commands containing `marker` fail.
    pub async fn start(marker: &'static str) -> FaultyRedis {
        let server = tokio::task::spawn_blocking(|| RedisServer::start(&[]))
            .await
            .expect("redis-server");
        let upstream = server.port;
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let port = listener.local_addr().unwrap().port();
        let injected = Arc::new(AtomicUsize::new(0));
        let count = Arc::clone(&injected);
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let count = Arc::clone(&count);
                tokio::spawn(async move {
                    if let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)).await {
                        let _ = relay(client, server, marker.as_bytes(), &count).await;
                    }
                });
            }
        });
        FaultyRedis {
            port,
            injected,
            _server: server,
        }
    }

    /// The store setting, with a key prefix of its own.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/?prefix=lambda%3A", self.port)
    }

    /// How many commands were failed so far.
    pub fn injected(&self) -> usize {
        self.injected.load(Ordering::SeqCst)
    }
}

async fn relay(
    mut client: TcpStream,
    mut server: TcpStream,
    marker: &[u8],
    injected: &AtomicUsize,
) -> std::io::Result<()> {
    let (mut from_client, mut from_server) = (Vec::new(), Vec::new());
    loop {
        let Some(command) = next_frame(&mut client, &mut from_client).await? else {
            return Ok(());
        };
        if command.windows(marker.len()).any(|w| w == marker) {
            injected.fetch_add(1, Ordering::SeqCst);
            client.write_all(FAULT).await?;
            continue;
        }
        server.write_all(&command).await?;
        let Some(reply) = next_frame(&mut server, &mut from_server).await? else {
            return Ok(());
        };
        client.write_all(&reply).await?;
    }
}

/// Reads until `buf` holds a whole RESP frame and takes it out; `None` at
/// end of stream.
async fn next_frame(
    stream: &mut (impl AsyncRead + Unpin),
    buf: &mut Vec<u8>,
) -> std::io::Result<Option<Vec<u8>>> {
    loop {
        if let Some(end) = frame_end(buf, 0) {
            return Ok(Some(buf.drain(..end).collect()));
        }
        let mut chunk = [0u8; 16 * 1024];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// The end of the RESP2/RESP3 frame starting at `at`, if it is complete.
fn frame_end(buf: &[u8], at: usize) -> Option<usize> {
    let kind = *buf.get(at)?;
    let line_end = at + 1 + buf.get(at + 1..)?.windows(2).position(|w| w == b"\r\n")?;
    let line = std::str::from_utf8(&buf[at + 1..line_end]).ok()?;
    let after = line_end + 2;
    let count = || line.parse::<i64>().ok();
    match kind {
        b'+' | b'-' | b':' | b'_' | b',' | b'#' | b'(' => Some(after),
        b'$' | b'!' | b'=' => match usize::try_from(count()?) {
            Ok(len) => {
                let end = after + len + 2;
                (buf.len() >= end).then_some(end)
            }
            Err(_) => Some(after), // null bulk string
        },
        b'*' | b'~' | b'>' | b'%' | b'|' => {
            let Ok(n) = usize::try_from(count()?) else {
                return Some(after); // null array
            };
            let items = if matches!(kind, b'%' | b'|') {
                2 * n
            } else {
                n
            };
            let mut end = after;
            for _ in 0..items {
                end = frame_end(buf, end)?;
            }
            Some(end)
        }
        other => panic!("unexpected RESP type byte {other:#x}"),
    }
}

#[test]
fn frames_are_delimited() {
    let cmd = b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n";
    assert_eq!(frame_end(cmd, 0), Some(cmd.len()));
    assert_eq!(frame_end(&cmd[..cmd.len() - 1], 0), None);
    assert_eq!(frame_end(b"$-1\r\n", 0), Some(5));
    assert_eq!(frame_end(b"*2\r\n:1\r\n*-1\r\n+x", 0), Some(13));
    assert_eq!(frame_end(b"%1\r\n+a\r\n:2\r\n", 0), Some(12));
}
