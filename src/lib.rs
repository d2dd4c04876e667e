//! ims-callback: the callback receiver for Alibaba Cloud IMS events.
//!
//! A pure core — the event model ([`event`]), validation ([`validate`]) and
//! resource state with its merge rule ([`state`]) — with thin edges: the
//! key-value [`store`] backends and the pipeline that applies events to
//! them, and the CLI. Every entry point runs the same functions.

pub mod admission;
pub mod alloc;
pub mod changes;
pub mod configuration;
pub mod event;
pub mod forward;
pub mod http_client;
pub mod ingest;
pub mod jsonfmt;
pub mod lambda;
pub mod listing;
pub mod metrics;
pub mod pipeline;
pub mod server;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod validate;
