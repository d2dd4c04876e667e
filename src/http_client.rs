//! A small client for outgoing HTTP and HTTPS POSTs (`ims-callback send`;
//! a webhook forwarder can reuse it): hyper's HTTP/1.1 client connection
//! over a TCP stream, wrapped in rustls (ring provider, Mozilla's roots
//! from webpki-roots) for `https://` — the TLS stack redis already brings
//! in. One connection per request: hyper-util's pooled client would be a
//! second copy of what the Lambda runtime client instantiates, and the
//! binary-size budget does not cover it.

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::header::{HOST, HeaderMap, HeaderName, HeaderValue};
use hyper::{StatusCode, Uri};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

/// An HTTP/1.1 client for `http://` and `https://` URLs. Cheap to clone.
#[derive(Clone)]
pub struct HttpClient {
    tls: tokio_rustls::TlsConnector,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HttpClient")
    }
}

/// A complete answer: status, headers and the whole body.
#[derive(Debug, Clone)]
pub struct Response {
    /// The HTTP status.
    pub status: StatusCode,
    /// The response headers.
    pub headers: HeaderMap,
    /// The response body.
    pub body: Bytes,
}

/// Why a POST got no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    /// No connection could be made (refused, unknown host, TLS handshake
    /// failed): nothing reached the server, and trying again at once will
    /// not help.
    #[error("cannot connect: {0}")]
    Connect(String),
    /// No complete answer within the timeout.
    #[error("no answer within {} ms", .0.as_millis())]
    Timeout(Duration),
    /// The exchange failed after connecting (connection reset, malformed
    /// answer, …).
    #[error("{0}")]
    Exchange(String),
}

impl HttpError {
    /// Whether the request failed before reaching the server.
    pub fn is_connect(&self) -> bool {
        matches!(self, HttpError::Connect(_))
    }
}

/// A plain or TLS stream, boxed so hyper's connection code is built once.
trait Stream: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Stream for T {}

impl Default for HttpClient {
    fn default() -> Self {
        Self::new()
    }
}

impl HttpClient {
    /// A client trusting the webpki-roots certificates.
    pub fn new() -> Self {
        let roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        // The provider is named rather than taken from the process default,
        // which depends on which rustls features the whole build enables.
        let mut tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("ring supports rustls's default protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        HttpClient {
            tls: tokio_rustls::TlsConnector::from(Arc::new(tls)),
        }
    }

    /// POSTs `body` to `url` with `headers`; the whole exchange (connect,
    /// send, read the full answer) must finish within `timeout`. Any status
    /// is an answer; judging it is the caller's business.
    pub async fn post(
        &self,
        url: &Uri,
        headers: impl IntoIterator<Item = (HeaderName, HeaderValue)>,
        body: Bytes,
        timeout: Duration,
    ) -> Result<Response, HttpError> {
        let (Some(authority), Some(host)) = (url.authority(), url.host()) else {
            return Err(HttpError::Exchange(format!("{url} has no host")));
        };
        let path = url.path_and_query().map_or("/", |p| p.as_str());
        let mut request = hyper::Request::post(path)
            .header(HOST, authority.as_str())
            .body(Full::new(body))
            .map_err(|e| HttpError::Exchange(format!("invalid request: {e}")))?;
        request.headers_mut().extend(headers);
        let https = url.scheme_str() == Some("https");
        let port = url.port_u16().unwrap_or(if https { 443 } else { 80 });
        let mut connection = None;
        let exchange = async {
            let stream = self.connect(host, port, https).await?;
            let (mut sender, driver) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .map_err(|e| HttpError::Connect(error_chain(&e)))?;
            connection = Some(tokio::spawn(driver));
            let response = sender
                .send_request(request)
                .await
                .map_err(|e| HttpError::Exchange(error_chain(&e)))?;
            let (parts, body) = response.into_parts();
            let body = body
                .collect()
                .await
                .map_err(|e| {
                    HttpError::Exchange(format!("reading the answer: {}", error_chain(&e)))
                })?
                .to_bytes();
            Ok(Response {
                status: parts.status,
                headers: parts.headers,
                body,
            })
        };
        let result = tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| HttpError::Timeout(timeout));
        if let Some(connection) = connection {
            connection.abort();
        }
        result?
    }

    async fn connect(
        &self,
        host: &str,
        port: u16,
        https: bool,
    ) -> Result<Box<dyn Stream>, HttpError> {
        // An IPv6 host comes bracketed in a URL, bare in a socket address.
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let tcp = TcpStream::connect((bare, port))
            .await
            .map_err(|e| HttpError::Connect(format!("{host}:{port}: {e}")))?;
        // One small request per connection: don't wait to fill a segment.
        let _ = tcp.set_nodelay(true);
        if !https {
            return Ok(Box::new(tcp));
        }
        let name = ServerName::try_from(bare.to_owned())
            .map_err(|e| HttpError::Connect(format!("{host} is not a TLS server name: {e}")))?;
        let tls = self
            .tls
            .connect(name, tcp)
            .await
            .map_err(|e| HttpError::Connect(format!("TLS handshake with {host}: {e}")))?;
        Ok(Box::new(tls))
    }
}

/// The error and its causes, `outer: inner: …` — hyper's own messages
/// ("client error (Connect)") say little without their sources.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn posts_bytes_and_returns_status_headers_and_body() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.ends_with(b"hello") {
                let n = socket.read(&mut buf).await.unwrap();
                assert!(n > 0, "the client sent the whole body");
                request.extend_from_slice(&buf[..n]);
            }
            socket
                .write_all(b"HTTP/1.1 202 Accepted\r\nx-answer: yes\r\ncontent-length: 2\r\n\r\nok")
                .await
                .unwrap();
            String::from_utf8(request).unwrap()
        });
        let url: Uri = format!("http://127.0.0.1:{port}/path").parse().unwrap();
        let headers = [(
            HeaderName::from_static("x-test"),
            HeaderValue::from_static("1"),
        )];
        let response = HttpClient::new()
            .post(
                &url,
                headers,
                Bytes::from_static(b"hello"),
                Duration::from_secs(5),
            )
            .await
            .unwrap();
        assert_eq!(response.status, StatusCode::ACCEPTED);
        assert_eq!(response.headers["x-answer"], "yes");
        assert_eq!(&response.body[..], b"ok");
        let request = server.await.unwrap().to_ascii_lowercase();
        assert!(request.starts_with("post /path http/1.1\r\n"), "{request}");
        assert!(request.contains("x-test: 1\r\n"), "{request}");
        assert!(request.contains("content-length: 5\r\n"), "{request}");
    }

    #[tokio::test]
    async fn a_closed_port_is_a_connect_error() {
        // Bind then drop: the port is free and nothing listens on it.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url: Uri = format!("http://127.0.0.1:{port}/").parse().unwrap();
        let error = HttpClient::new()
            .post(&url, [], Bytes::new(), Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(error.is_connect(), "{error}");
        assert!(error.to_string().contains("refused"), "{error}");
    }

    #[tokio::test]
    async fn https_urls_go_through_tls() {
        // A plain-HTTP server behind an https:// URL: the TLS handshake
        // fails, so the request did not go out in clear text.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let _ = socket
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                .await;
        });
        let url: Uri = format!("https://127.0.0.1:{port}/").parse().unwrap();
        let error = HttpClient::new()
            .post(&url, [], Bytes::new(), Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(error.is_connect(), "{error}");
        assert!(error.to_string().contains("corrupt message"), "{error}");
    }

    #[tokio::test]
    async fn a_silent_server_times_out() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let url: Uri = format!("http://127.0.0.1:{port}/").parse().unwrap();
        let error = HttpClient::new()
            .post(&url, [], Bytes::new(), Duration::from_millis(100))
            .await
            .unwrap_err();
        assert_eq!(error, HttpError::Timeout(Duration::from_millis(100)));
        drop(listener);
    }
}
