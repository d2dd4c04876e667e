//! The baseline of `scripts/bench-http.sh`: a bare axum server, on the same
//! runtime settings as `ims-callback serve`, answering every request with
//! 200 and doing no work. The ratio of the real server's throughput to this
//! one's measures what the receiver costs on top of HTTP itself.

use axum::Router;
use std::net::SocketAddr;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr: SocketAddr = std::env::var("IMS_LISTEN")
        .ok()
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 9000)));
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let app = Router::new().fallback(|| async { "{}" });
    axum::serve(listener, app).await
}
