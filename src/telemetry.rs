//! Logging: JSON lines on stdout (Function Compute and Lambda collect
//! them), filtered by `RUST_LOG` (default `info`).
//!
//! `RUST_LOG` takes levels and per-target levels (`info`,
//! `warn,ims_callback=debug`): tracing-subscriber's `Targets` filter, which
//! needs no regex engine — `EnvFilter`'s span and field matching would add
//! one to the binary and to every cold start for no use here.

use tracing::level_filters::LevelFilter;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::prelude::*;

/// Installs the global JSON subscriber. Safe to call once per process.
pub fn init() {
    let setting = std::env::var("RUST_LOG").ok();
    let filter = setting
        .as_deref()
        .and_then(|s| s.parse::<Targets>().ok())
        .unwrap_or_else(|| Targets::new().with_default(LevelFilter::INFO));
    let layer = tracing_subscriber::fmt::layer()
        .json()
        .with_current_span(false)
        .with_span_list(false)
        .with_target(false)
        .with_writer(std::io::stdout);
    let installed = tracing_subscriber::registry()
        .with(layer.with_filter(filter))
        .try_init()
        .is_ok();
    if installed
        && let Some(setting) = setting
        && setting.parse::<Targets>().is_err()
    {
        tracing::warn!(
            rust_log = setting.as_str(),
            "RUST_LOG is not a list of LEVEL or TARGET=LEVEL; logging at info"
        );
    }
}
