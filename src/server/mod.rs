//! The Function Compute custom-runtime HTTP server (axum on tokio).
//!
//! [`Application::build`] opens the store and binds the listener (so a
//! test can bind port 0 and read the port back); [`Application::run`]
//! serves until SIGTERM/SIGINT, then stops accepting and finishes the
//! requests in flight.

mod error;
mod routes;

pub use error::AppError;

use crate::configuration::Settings;
use crate::ingest::Ingest;
use crate::ingest::auth::Secret;
use crate::store::{AnyStore, StoreError, redact_url};
use axum::Router;
use axum::routing::{get, post};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;

/// Shared state of the handlers: built once, cloned per request (cheap).
#[derive(Clone)]
pub struct AppState {
    ingest: Ingest,
    callback_path: Option<Arc<str>>,
    max_body: usize,
    deadline: Duration,
    query_token: Option<Secret>,
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
}

impl Application {
    /// Opens the store named in `settings` and binds the listener.
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        let store =
            AnyStore::open(&settings.store)
                .await
                .map_err(|source| StartupError::Store {
                    store: redact_url(&settings.store),
                    source,
                })?;
        Self::with_store(settings, store).await
    }

    /// Binds the listener over an already opened store.
    pub async fn with_store(settings: Settings, store: AnyStore) -> Result<Self, StartupError> {
        let listener =
            TcpListener::bind(settings.listen)
                .await
                .map_err(|source| StartupError::Bind {
                    addr: settings.listen,
                    source,
                })?;
        if settings.auth.is_none() {
            tracing::warn!("IMS_CALLBACK_AUTH_KEYS is not set: unsigned callbacks are accepted");
        }
        let state = AppState {
            ingest: Ingest::new(store, settings.auth, settings.deadline),
            callback_path: settings.callback_path.map(Arc::from),
            max_body: settings.max_body,
            deadline: settings.deadline,
            query_token: settings.query_token,
        };
        Ok(Application {
            listener,
            router: router(state),
        })
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// Serves until SIGTERM or SIGINT, then drains in-flight requests.
    pub async fn run(self) -> std::io::Result<()> {
        tracing::info!(addr = %self.listener.local_addr()?, "listening");
        axum::serve(self.listener, self.router)
            .with_graceful_shutdown(shutdown_signal())
            .await
    }
}

fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(routes::healthz))
        .route("/initialize", post(routes::initialize))
        .route("/pre-stop", get(routes::pre_stop))
        .route("/invoke", post(routes::invoke))
        .route("/v1/resources/{kind}/{id}", get(routes::resource))
        .route("/v1/events/{fingerprint}", get(routes::event))
        .fallback(routes::fallback)
        .layer(
            ServiceBuilder::new()
                // A bug must never take the process down or hang a client.
                .layer(CatchPanicLayer::new())
                .layer(TraceLayer::new_for_http()),
        )
        .with_state(state)
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
