//! A small client for outgoing HTTP and HTTPS POSTs (`ims-callback send`;
//! a webhook forwarder can reuse it): hyper-util's pooled client over
//! rustls with the ring provider and Mozilla's root certificates
//! (webpki-roots), HTTP/1.1 only — the TLS stack redis already brings in.

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use hyper::{StatusCode, Uri};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::sync::Arc;
use std::time::Duration;

/// A pooled HTTP/1.1 client for `http://` and `https://` URLs. Cheap to
/// clone (clones share the pool).
#[derive(Clone, Debug)]
pub struct HttpClient {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
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
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("ring supports rustls's default protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        HttpClient {
            client: Client::builder(TokioExecutor::new()).build(https),
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
        let mut request = hyper::Request::post(url.clone())
            .body(Full::new(body))
            .map_err(|e| HttpError::Exchange(format!("invalid request: {e}")))?;
        request.headers_mut().extend(headers);
        let exchange = async {
            let response = self.client.request(request).await.map_err(|e| {
                match (e.is_connect(), std::error::Error::source(&e)) {
                    // "client error (Connect)" adds nothing to its cause.
                    (true, Some(cause)) => HttpError::Connect(error_chain(cause)),
                    (true, None) => HttpError::Connect(e.to_string()),
                    (false, _) => HttpError::Exchange(error_chain(&e)),
                }
            })?;
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
        tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| HttpError::Timeout(timeout))?
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
