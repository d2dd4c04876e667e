//! The Function Compute custom-runtime HTTP server (axum on tokio).
//!
//! [`Application::build`] binds the listener and opens the store (so a
//! test can bind port 0 and read the port back); [`Application::run`]
//! serves until SIGTERM/SIGINT, then stops accepting and finishes the
//! requests in flight. [`build_router`] builds the routes alone, without a
//! listener: AWS Lambda mode serves its HTTP invocations with them.
//!
//! Connections are served by hyper's HTTP/1 server with explicit bounds,
//! so a slow or hostile client cannot hold the process: the request line
//! and headers must arrive within [`HEADER_READ_TIMEOUT`] (which also
//! closes idle keep-alive connections) and fit in [`MAX_HEADER_BYTES`]
//! (431 otherwise), at most [`MAX_HEADERS`] of them; the body is bounded by
//! `IMS_MAX_BODY` and the request deadline in the handlers.

mod changes;
mod error;
mod framing;
mod list;
mod routes;

pub use error::AppError;

use crate::configuration::{Platform, Settings};
use crate::forward::{ForwardSettings, Forwarder, Summary};
use crate::ingest::Ingest;
use crate::store::{AnyStore, StoreError, redact_url};
use axum::Router;
use axum::extract::MatchedPath;
use axum::routing::{get, post};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;

/// How long a client may take to send the request line and headers, from
/// the moment the server is ready to read them (the connection is
/// accepted, or its previous answer is written): a connection that has
/// not sent a complete head by then is closed — slow-header ("slowloris")
/// clients, silent ones and idle keep-alive connections. hyper's
/// `header_read_timeout` enforces it: from hyper 1.12 on (the version
/// required) it is armed for each request head, including the wait on a
/// kept-alive connection (hyperium/hyper#3828; `proto/h1/conn.rs`). IMS sends its headers at once and waits only
/// 3 s for the answer, so this is generous.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Largest request head (request line and headers), in bytes; larger
/// heads are answered 431. Function Compute refuses client headers over
/// 8 KB and then adds its own (`x-fc-*`, including STS credentials), so
/// the limit leaves room above 8 KiB.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

/// Most header fields in one request (431 above).
pub const MAX_HEADERS: usize = 100;

/// Shared state of the handlers: built once; each request clones the
/// pointer, not the settings (auth keys, paths) behind it.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// What the handlers share.
pub struct Shared {
    ingest: Ingest,
    callback_path: Option<Arc<str>>,
    max_body: usize,
    deadline: Duration,
    query_token: Option<secrecy::SecretString>,
    /// Whether `x-fc-control-path` can be believed: only on Function
    /// Compute, whose HTTP trigger refuses client headers starting with
    /// `x-fc-` (alibabacloud.com/help/en/functioncompute/fc/user-guide/web-functions).
    trust_control_path: bool,
    /// Forwarding of the change feed, when configured.
    forwarding: Option<Arc<Forwarding>>,
}

/// The forwarder of a server: the timer trigger's drains and, off
/// Function Compute, a background task.
pub struct Forwarding {
    forwarder: Forwarder<AnyStore>,
    stop: tokio::sync::watch::Sender<bool>,
    background: std::sync::Mutex<Option<tokio::task::JoinHandle<Summary>>>,
}

impl Forwarding {
    fn new(store: AnyStore, settings: ForwardSettings) -> Self {
        Forwarding {
            forwarder: Forwarder::new(store, settings),
            stop: tokio::sync::watch::channel(false).0,
            background: std::sync::Mutex::new(None),
        }
    }

    /// Starts the background forwarder (once).
    fn start(self: &Arc<Self>) {
        let mut stop = self.stop.subscribe();
        let me = Arc::clone(self);
        let task = tokio::spawn(async move {
            me.forwarder
                .run_until(async move {
                    let _ = stop.wait_for(|stopped| *stopped).await;
                })
                .await
        });
        let mut background = self
            .background
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(previous) = background.replace(task) {
            previous.abort();
        }
    }

    /// Stops the background forwarder, waiting up to `limit` for it to
    /// give its leases back.
    pub async fn stop(&self, limit: Duration) {
        self.stop.send_replace(true);
        let task = self
            .background
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(task) = task {
            match tokio::time::timeout(limit, task).await {
                Ok(Ok(summary)) => tracing::info!(?summary, "forwarder stopped"),
                Ok(Err(e)) => tracing::error!(error = %e, "forwarder task failed"),
                Err(_) => tracing::warn!("forwarder did not stop in time"),
            }
        }
    }

    /// The forwarder.
    pub fn forwarder(&self) -> &Forwarder<AnyStore> {
        &self.forwarder
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// The store setting is wrong or its file cannot be opened.
    #[error("cannot open store {store}: {source}")]
    Store {
        /// The setting, password redacted.
        store: String,
        /// Why.
        source: StoreError,
    },
    /// The address cannot be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// A bound, ready-to-run server.
pub struct Application {
    listener: TcpListener,
    router: Router,
    forwarding: Option<Arc<Forwarding>>,
    background_forwarding: bool,
}

impl Application {
    /// Binds the listener, then opens the store named in `settings`.
    ///
    /// Bound first so that the port is open while the store opens (a redb
    /// file writes and fsyncs its header; Redis connects lazily, on first
    /// use): connections made meanwhile wait in the kernel's backlog and
    /// are served once the store is ready, so a platform probing the port
    /// (Function Compute waits for it before it forwards the first
    /// request) overlaps its own work with the store's. If the store
    /// cannot be opened, this returns the error and dropping the listener
    /// resets those connections.
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        let listener = bind(settings.listen).await?;
        let store =
            AnyStore::open(&settings.store)
                .await
                .map_err(|source| StartupError::Store {
                    store: redact_url(&settings.store),
                    source,
                })?;
        Ok(Self::assemble(listener, settings, store))
    }

    /// Binds the listener over an already opened store.
    pub async fn with_store(settings: Settings, store: AnyStore) -> Result<Self, StartupError> {
        let listener = bind(settings.listen).await?;
        Ok(Self::assemble(listener, settings, store))
    }

    fn assemble(listener: TcpListener, settings: Settings, store: AnyStore) -> Self {
        let forwarding = forwarding(&settings, &store);
        Application {
            listener,
            router: router_with(
                Ingest::new(store, settings.auth.clone(), settings.deadline)
                    .with_limits(settings.limits())
                    .with_change_feed(settings.change_feed),
                &settings,
                forwarding.clone(),
            ),
            forwarding,
            // An FC instance may be frozen between requests: a background
            // forwarder there would hold its leases while frozen. The
            // timer trigger drains instead.
            background_forwarding: settings.platform != Platform::FunctionCompute,
        }
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// Serves until SIGTERM or SIGINT, then drains in-flight requests.
    pub async fn run(self) -> std::io::Result<()> {
        self.run_until(shutdown_signal()).await
    }

    /// Serves until `shutdown` completes, then stops accepting, lets the
    /// requests in flight finish and closes idle connections.
    pub async fn run_until(
        self,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> std::io::Result<()> {
        tracing::info!(addr = %self.listener.local_addr()?, "listening");
        if let Some(forwarding) = self
            .forwarding
            .as_ref()
            .filter(|_| self.background_forwarding)
        {
            forwarding.start();
        }
        let mut http = hyper::server::conn::http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(HEADER_READ_TIMEOUT)
            .max_header_size(MAX_HEADER_BYTES)
            .max_headers(MAX_HEADERS);
        let graceful = GracefulShutdown::new();
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            let stream = tokio::select! {
                accepted = self.listener.accept() => match accepted {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        accept_error(e).await;
                        continue;
                    }
                },
                () = &mut shutdown => break,
            };
            let _ = stream.set_nodelay(true);
            let framing = Arc::new(framing::Framing::default());
            let stream = framing::Inspected::new(stream, Arc::clone(&framing));
            let service =
                TowerToHyperService::new(framing::Guarded::new(self.router.clone(), framing));
            let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
            tokio::spawn(async move {
                if let Err(e) = connection.await {
                    // A client that went away, sent garbage, or sent no
                    // request head in time.
                    tracing::debug!(error = %e, "connection closed with an error");
                }
            });
        }
        drop(self.listener);
        graceful.shutdown().await;
        tracing::info!("all connections closed");
        if let Some(forwarding) = &self.forwarding {
            forwarding.stop(FORWARDER_STOP).await;
        }
        Ok(())
    }
}

async fn bind(addr: std::net::SocketAddr) -> Result<TcpListener, StartupError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| StartupError::Bind { addr, source })
}

/// An accept error is about one connection (reset before it was accepted)
/// or about the process (out of file descriptors): never fatal, but back
/// off on the latter so the loop does not spin.
async fn accept_error(e: std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        e.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %e, "accept failed; retrying in 1 s");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// The HTTP front-end with its state: every route, body limit, deadline,
/// auth rule and error body, over `ingest` (which holds the store and the
/// signature keys) and the HTTP settings of `settings` (callback path, body
/// limit, deadline, read-API token; `listen`, `store` and `auth` are not
/// read here). Served over TCP by [`Application`] and, under AWS Lambda,
/// once per HTTP invocation by `crate::lambda`, which passes the ingest it
/// also serves SQS batches with, so both share one pipeline.
pub fn build_router(ingest: Ingest, settings: &Settings) -> Router {
    let forwarding = forwarding(settings, ingest.store());
    router_with(ingest, settings, forwarding)
}

/// How long a stopping server waits for its forwarder to give its leases
/// back (a page in flight is abandoned, and delivered again later).
pub const FORWARDER_STOP: Duration = Duration::from_secs(2);

fn forwarding(settings: &Settings, store: &AnyStore) -> Option<Arc<Forwarding>> {
    settings
        .forward
        .clone()
        .map(|forward| Arc::new(Forwarding::new(store.clone(), forward)))
}

fn router_with(ingest: Ingest, settings: &Settings, forwarding: Option<Arc<Forwarding>>) -> Router {
    if !ingest.requires_signature() {
        tracing::warn!("IMS_CALLBACK_AUTH_KEYS is not set: unsigned callbacks are accepted");
    }
    let state = AppState(Arc::new(Shared {
        ingest,
        callback_path: settings.callback_path.as_deref().map(Arc::from),
        max_body: settings.max_body,
        deadline: settings.deadline,
        query_token: settings.query_token.clone(),
        trust_control_path: settings.platform == Platform::FunctionCompute,
        forwarding,
    }));
    let router = Router::new()
        .route("/healthz", get(routes::healthz))
        .route("/initialize", post(routes::initialize))
        .route("/pre-stop", get(routes::pre_stop))
        .route("/invoke", post(routes::invoke))
        .route("/v1/resources", get(list::list))
        .route("/v1/resources/{kind}/{id}", get(routes::resource))
        .route("/v1/events/{fingerprint}", get(routes::event))
        .route("/v1/changes", get(changes::changes))
        .route("/metrics", get(routes::metrics))
        // After the routes: it applies to those already added.
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(routes::fallback);
    // A span and a line per request, only when asked for
    // (`RUST_LOG=tower_http=debug`): with nothing to write the layer still
    // costs every request a span's set-up and teardown. Failures are
    // logged without it: each callback's own line, and `AppError` for a
    // store that fails a read.
    let router = if tracing::enabled!(target: "tower_http::trace", tracing::Level::DEBUG) {
        router.layer(TraceLayer::new_for_http())
    } else {
        router
    };
    // A bug must never take the process down or hang a client.
    router.layer(CatchPanicLayer::new()).with_state(state)
}

/// A known route asked with a method it does not serve: the JSON error
/// every failure gets (axum's own 405 has an empty body), naming the
/// methods the route serves.
async fn method_not_allowed(path: Option<MatchedPath>) -> AppError {
    AppError::MethodNotAllowed(match path.as_ref().map(MatchedPath::as_str) {
        Some("/initialize" | "/invoke") => "POST",
        _ => "GET, HEAD",
    })
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown signal: draining in-flight requests");
}
