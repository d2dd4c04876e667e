//! The baseline of `scripts/bench-http.sh`: a bare axum server, on the same
//! runtime settings as `ims-callback serve`, answering every request with
//! 200 and doing no work. The ratio of the real server's throughput to this
//! one's measures what the receiver costs on top of HTTP itself.
//!
//! `BARE_WORK_US=N` makes each request busy-wait N µs first: a calibration
//! row (`BENCH_ROWS=work`), showing what share of the bare route's
//! throughput a server doing N µs of work per request can reach when the
//! load generator shares its cores.

use axum::Router;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr: SocketAddr = std::env::var("IMS_LISTEN")
        .ok()
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 9000)));
    let work = std::env::var("BARE_WORK_US")
        .ok()
        .and_then(|us| us.parse().ok())
        .map(Duration::from_micros);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let app = match work {
        None => Router::new().fallback(|| async { "{}" }),
        Some(work) => Router::new().fallback(move || async move {
            let started = Instant::now();
            while started.elapsed() < work {
                std::hint::spin_loop();
            }
            "{}"
        }),
    };
    axum::serve(listener, app).await
}
