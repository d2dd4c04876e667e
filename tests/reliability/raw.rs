//! HTTP/1.1 by hand over a `TcpStream`, for what a well-behaved client
//! cannot send: chunked bodies over the limit, huge heads, and requests
//! trickled a byte at a time.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// What came back on one connection.
#[derive(Debug)]
pub struct RawAnswer {
    /// The status of the first response, if one arrived.
    pub status: Option<u16>,
    /// Its body (as far as read).
    pub body: String,
    /// From the first byte sent to the response, or to the close.
    pub elapsed: Duration,
    /// The server closed the connection (EOF or reset) before `limit`.
    pub closed: bool,
}

/// Reads one response (or until close or `deadline`).
fn read_response(stream: &mut TcpStream, deadline: Instant) -> (Option<u16>, String, bool) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        if let Some((status, body, true)) = parse(&buf) {
            return (Some(status), body, false);
        }
        let now = Instant::now();
        if now >= deadline {
            let parsed = parse(&buf);
            return (
                parsed.as_ref().map(|p| p.0),
                parsed.map(|p| p.1).unwrap_or_default(),
                false,
            );
        }
        stream
            .set_read_timeout(Some((deadline - now).min(Duration::from_millis(100))))
            .unwrap();
        match stream.read(&mut chunk) {
            Ok(0) => {
                let parsed = parse(&buf);
                return (
                    parsed.as_ref().map(|p| p.0),
                    parsed.map(|p| p.1).unwrap_or_default(),
                    true,
                );
            }
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => {
                let parsed = parse(&buf);
                return (
                    parsed.as_ref().map(|p| p.0),
                    parsed.map(|p| p.1).unwrap_or_default(),
                    true,
                );
            }
        }
    }
}

/// `(status, body, complete)` of a response in `buf`, once its head is in.
fn parse(buf: &[u8]) -> Option<(u16, String, bool)> {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&buf[..end]).to_string();
    let status: u16 = head.split(' ').nth(1)?.parse().ok()?;
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .unwrap_or(0);
    let body = &buf[end + 4..];
    Some((
        status,
        String::from_utf8_lossy(&body[..body.len().min(length)]).to_string(),
        body.len() >= length,
    ))
}

/// Sends `prefix` at once, then `trickled` in pieces of `piece` bytes with
/// `pause` between them (a slow client), while reading; stops writing when
/// an answer or a close arrives. Gives up after `limit`.
pub fn send(
    port: u16,
    prefix: &[u8],
    trickled: &[u8],
    piece: usize,
    pause: Duration,
    limit: Duration,
) -> RawAnswer {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_nodelay(true).unwrap();
    let started = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let mut stream = stream.try_clone().unwrap();
        let stop = Arc::clone(&stop);
        let (prefix, trickled) = (prefix.to_vec(), trickled.to_vec());
        std::thread::spawn(move || {
            if stream.write_all(&prefix).is_err() {
                return;
            }
            for part in trickled.chunks(piece.max(1)) {
                if stop.load(Ordering::SeqCst) {
                    return;
                }
                if !pause.is_zero() {
                    std::thread::sleep(pause);
                }
                if stream.write_all(part).is_err() {
                    return;
                }
            }
        })
    };
    let (status, body, closed) = read_response(&mut stream, started + limit);
    let elapsed = started.elapsed();
    stop.store(true, Ordering::SeqCst);
    let _ = stream.shutdown(std::net::Shutdown::Both);
    let _ = writer.join();
    RawAnswer {
        status,
        body,
        elapsed,
        closed,
    }
}

/// Sends `request` in one go and reads the answer.
pub fn exchange(port: u16, request: &[u8], limit: Duration) -> RawAnswer {
    send(port, request, &[], 1, Duration::ZERO, limit)
}

/// Sends `request` in one go, reads its answer, then keeps the connection
/// open without sending anything more: what came back after the answer
/// (`closed` when the server closed the idle connection before `limit`).
pub fn idle_after(port: u16, request: &[u8], limit: Duration) -> (RawAnswer, RawAnswer) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let started = Instant::now();
    stream.write_all(request).unwrap();
    let (status, body, closed) = read_response(&mut stream, started + limit);
    let first = RawAnswer {
        status,
        body,
        elapsed: started.elapsed(),
        closed,
    };
    let idle_since = Instant::now();
    let (status, body, closed) = read_response(&mut stream, idle_since + limit);
    let after = RawAnswer {
        status,
        body,
        elapsed: idle_since.elapsed(),
        closed,
    };
    (first, after)
}
