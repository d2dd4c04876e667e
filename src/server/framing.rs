//! Refuses requests framed two ways: `Content-Length` together with
//! `Transfer-Encoding`.
//!
//! RFC 9112 §6.3 lets a server either ignore `Content-Length` then or
//! refuse the request; a proxy in front that picked the other reading
//! would see a different request boundary (request smuggling). hyper takes
//! the first reading: it removes `Content-Length` before the handlers see
//! the request (and closes the connection afterwards), so the handlers
//! cannot tell. [`Inspected`] therefore reads the request heads as they
//! come off the socket, following the framing of each request (fixed
//! length or chunked) to find the next head, and notes the number of the
//! first request on the connection whose head carries both; [`Guarded`]
//! answers that request 400 instead of routing it. After such a head hyper
//! closes the connection, so inspection stops there; it also stops on any
//! head hyper will refuse itself (malformed, too large).

use super::error::AppError;
use axum::response::{IntoResponse, Response};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// What the reading side and the serving side of one connection share.
#[derive(Debug)]
pub struct Framing {
    /// The number (from 0) of the first request framed two ways.
    ambiguous: AtomicU64,
    /// Requests handed to the router so far.
    served: AtomicU64,
}

impl Default for Framing {
    fn default() -> Self {
        Framing {
            ambiguous: AtomicU64::new(u64::MAX),
            served: AtomicU64::new(0),
        }
    }
}

/// A connection's byte stream, its request heads inspected as read.
pub struct Inspected<T> {
    inner: T,
    scanner: Scanner,
    framing: Arc<Framing>,
}

impl<T> Inspected<T> {
    /// Wraps `inner`, reporting into `framing`.
    pub fn new(inner: T, framing: Arc<Framing>) -> Self {
        Inspected {
            inner,
            scanner: Scanner::default(),
            framing,
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Inspected<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled
            && let Some(index) = this.scanner.feed(&buf.filled()[before..])
        {
            this.framing.ambiguous.store(index, Ordering::Release);
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Inspected<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, data)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// The router of one connection, answering its ambiguous request 400.
#[derive(Clone)]
pub struct Guarded<S> {
    inner: S,
    framing: Arc<Framing>,
}

impl<S> Guarded<S> {
    /// Guards `inner` with what the connection's [`Inspected`] reports.
    pub fn new(inner: S, framing: Arc<Framing>) -> Self {
        Guarded { inner, framing }
    }
}

/// The answer of a [`Guarded`] service.
pub type Answer<F, E> = futures_util::future::Either<std::future::Ready<Result<Response, E>>, F>;

impl<S, B> tower::Service<axum::http::Request<B>> for Guarded<S>
where
    S: tower::Service<axum::http::Request<B>, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Answer<S::Future, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: axum::http::Request<B>) -> Self::Future {
        // HTTP/1 serves a connection's requests in order: the n-th call is
        // the n-th head read.
        let index = self.framing.served.fetch_add(1, Ordering::Relaxed);
        if index == self.framing.ambiguous.load(Ordering::Acquire) {
            tracing::warn!("refused a request with both Content-Length and Transfer-Encoding");
            let answer = AppError::AmbiguousFraming.into_response();
            return futures_util::future::Either::Left(std::future::ready(Ok(answer)));
        }
        futures_util::future::Either::Right(self.inner.call(request))
    }
}

/// Longest head or chunk line followed; past it hyper refuses the request
/// itself (431, or 400 for a chunk line) and inspection stops.
const MAX_LINE_BYTES: usize = super::MAX_HEADER_BYTES + 1024;

/// Where the scanner is in the byte stream.
#[derive(Debug)]
enum State {
    /// Reading a request head (bytes so far).
    Head(Vec<u8>),
    /// Inside a fixed-length body (bytes left).
    Body(u64),
    /// Reading a chunk-size line (bytes so far).
    ChunkSize(Vec<u8>),
    /// Inside a chunk, its CRLF included (bytes left).
    ChunkData(u64),
    /// Reading the trailer section after the last chunk (current line).
    Trailers(Vec<u8>),
    /// Not following any more: hyper closes the connection after this.
    Off,
}

#[derive(Debug)]
struct Scanner {
    state: State,
    heads: u64,
}

impl Default for Scanner {
    fn default() -> Self {
        Scanner {
            state: State::Head(Vec::new()),
            heads: 0,
        }
    }
}

impl Scanner {
    /// Follows `data`; returns the number of a head framed two ways.
    fn feed(&mut self, mut data: &[u8]) -> Option<u64> {
        while !data.is_empty() {
            match &mut self.state {
                State::Off => return None,
                State::Head(buf) => {
                    buf.extend_from_slice(data);
                    data = &[];
                    let buf = std::mem::take(buf);
                    let mut headers = [httparse::EMPTY_HEADER; super::MAX_HEADERS];
                    let mut request = httparse::Request::new(&mut headers);
                    match request.parse(&buf) {
                        Ok(httparse::Status::Complete(len)) => {
                            let index = self.heads;
                            self.heads += 1;
                            let next = next_state(request.headers);
                            let ambiguous = matches!(next, Next::Ambiguous);
                            self.state = match next {
                                Next::Ambiguous | Next::Refused => State::Off,
                                Next::Head => State::Head(Vec::new()),
                                Next::Body(n) => State::Body(n),
                                Next::Chunked => State::ChunkSize(Vec::new()),
                            };
                            if ambiguous {
                                return Some(index);
                            }
                            // The rest belongs to the body or the next head.
                            return self.feed_owned(&buf[len..]);
                        }
                        Ok(httparse::Status::Partial) if buf.len() <= MAX_LINE_BYTES => {
                            self.state = State::Head(buf);
                        }
                        _ => self.state = State::Off,
                    }
                }
                State::Body(left) | State::ChunkData(left) => {
                    let take = (*left).min(data.len() as u64);
                    *left -= take;
                    data = &data[take as usize..];
                    if *left == 0 {
                        self.state = match self.state {
                            State::Body(_) => State::Head(Vec::new()),
                            _ => State::ChunkSize(Vec::new()),
                        };
                    }
                }
                State::ChunkSize(line) | State::Trailers(line) => {
                    let Some(end) = data.iter().position(|&b| b == b'\n') else {
                        line.extend_from_slice(data);
                        if line.len() > MAX_LINE_BYTES {
                            self.state = State::Off;
                        }
                        return None;
                    };
                    line.extend_from_slice(&data[..=end]);
                    data = &data[end + 1..];
                    let line = std::mem::take(line);
                    self.state = if matches!(self.state, State::Trailers(_)) {
                        // An empty line ends the trailers, and the message.
                        if line == b"\r\n" || line == b"\n" {
                            State::Head(Vec::new())
                        } else {
                            State::Trailers(Vec::new())
                        }
                    } else {
                        match httparse::parse_chunk_size(&line) {
                            Ok(httparse::Status::Complete((_, 0))) => State::Trailers(Vec::new()),
                            Ok(httparse::Status::Complete((_, size))) => {
                                State::ChunkData(size.saturating_add(2))
                            }
                            _ => State::Off,
                        }
                    };
                }
            }
        }
        None
    }

    fn feed_owned(&mut self, rest: &[u8]) -> Option<u64> {
        if rest.is_empty() {
            None
        } else {
            self.feed(rest)
        }
    }
}

enum Next {
    /// No body: the next head follows.
    Head,
    /// A body of this many bytes.
    Body(u64),
    /// A chunked body.
    Chunked,
    /// Both framings.
    Ambiguous,
    /// A head hyper refuses (bad length, unknown coding).
    Refused,
}

fn next_state(headers: &[httparse::Header<'_>]) -> Next {
    let mut length = None;
    let mut coding: Option<&[u8]> = None;
    for h in headers {
        if h.name.eq_ignore_ascii_case("content-length") {
            length = Some(h.value);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            coding = Some(h.value);
        }
    }
    match (length, coding) {
        (Some(_), Some(_)) => Next::Ambiguous,
        (None, Some(coding)) => {
            let last = coding.rsplit(|&b| b == b',').next().unwrap_or_default();
            if last.trim_ascii().eq_ignore_ascii_case(b"chunked") {
                Next::Chunked
            } else {
                Next::Refused
            }
        }
        (Some(length), None) => match std::str::from_utf8(length)
            .ok()
            .and_then(|l| l.trim().parse().ok())
        {
            Some(0) => Next::Head,
            Some(n) => Next::Body(n),
            None => Next::Refused,
        },
        (None, None) => Next::Head,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn first_ambiguous(stream: &[u8], piece: usize) -> Option<u64> {
        let mut scanner = Scanner::default();
        stream.chunks(piece).find_map(|c| scanner.feed(c))
    }

    #[test]
    fn finds_the_ambiguous_head_after_bodies_of_both_framings() {
        let clean = b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 40\r\n\r\n\
            content-length: 1\r\ntransfer-encoding: c"
            .to_vec();
        let chunked = b"POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n\
            5\r\nhello\r\n1;ext=1\r\n!\r\n0\r\nx-trailer: 1\r\n\r\n"
            .to_vec();
        let get = b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n".to_vec();
        let bad = b"POST / HTTP/1.1\r\ncontent-length: 2\r\ntransfer-encoding: chunked\r\n\r\n\
            2\r\n{}\r\n0\r\n\r\n"
            .to_vec();
        let stream = [clean.clone(), chunked.clone(), get.clone(), bad].concat();
        for piece in [1, 3, 7, 64, stream.len()] {
            assert_eq!(
                first_ambiguous(&stream, piece),
                Some(3),
                "pieces of {piece}"
            );
        }
        let fine = [clean, chunked, get].concat();
        for piece in [1, 5, fine.len()] {
            assert_eq!(first_ambiguous(&fine, piece), None, "pieces of {piece}");
        }
        // Either order of the two headers.
        let reversed =
            b"POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\ncontent-length: 2\r\n\r\n";
        assert_eq!(first_ambiguous(reversed, 4), Some(0));
    }
}
