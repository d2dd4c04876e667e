//! Diagnostic rows for `scripts/bench-http.sh` (`BENCH_ROWS=floors`): how
//! much of the bare route's throughput is left after each stage of the
//! receiver's work, each measured alone on the same runtime and allocator
//! as `ims-callback serve`. `FLOOR` picks the stage:
//!
//! - `body`: read the body, answer `{}`;
//! - `core`: parse, fingerprint, validate and derive (no I/O), answer the
//!   fingerprint;
//! - `pipeline`: the whole `Pipeline::process` against a store that keeps
//!   nothing, so the cost of the merge, the stored forms and the futures
//!   shows without the memory store's growth;
//! - `memory`: the same against the real memory store.
//!
//! The real server's memory-store row is the next stage: log line,
//! deadline, middleware and the full route.

use axum::{Router, body::Bytes, http::StatusCode};
use ims_callback::admission::ReceivedAt;
use ims_callback::pipeline::Pipeline;
use ims_callback::store::memory::MemoryStore;
use ims_callback::store::{
    CasOutcome, Cursor, IndexQuery, Listed, Listing, LogPage, Store, StoreError, Version, Versioned,
};
use std::net::SocketAddr;

#[global_allocator]
static GLOBAL: ims_callback::alloc::MiMalloc = ims_callback::alloc::MiMalloc;

/// A store that keeps nothing: every read misses, every write succeeds.
#[derive(Debug, Clone)]
struct Discard;

/// Never notified: the discarding store keeps no log.
static NEVER_APPENDED: tokio::sync::Notify = tokio::sync::Notify::const_new();

impl Store for Discard {
    async fn get(&self, _key: &str) -> Result<Option<Versioned>, StoreError> {
        Ok(None)
    }

    async fn compare_and_set(
        &self,
        _key: &str,
        _expected: Option<Version>,
        value: &[u8],
    ) -> Result<CasOutcome, StoreError> {
        std::hint::black_box(value);
        Ok(CasOutcome::Written(Version::FIRST))
    }

    async fn compare_and_set_logged(
        &self,
        _key: &str,
        _expected: Option<Version>,
        value: &[u8],
        change: &[u8],
    ) -> Result<CasOutcome, StoreError> {
        std::hint::black_box((value, change));
        Ok(CasOutcome::Written(Version::FIRST))
    }

    async fn compare_and_set_listed(
        &self,
        _key: &str,
        _expected: Option<Version>,
        value: &[u8],
        change: Option<&[u8]>,
        listing: &Listing,
    ) -> Result<CasOutcome, StoreError> {
        std::hint::black_box((value, change, listing));
        Ok(CasOutcome::Written(Version::FIRST))
    }

    async fn relist(
        &self,
        _key: &str,
        _version: Version,
        _listing: &Listing,
    ) -> Result<bool, StoreError> {
        Ok(false)
    }

    async fn list_index(&self, _query: &IndexQuery<'_>) -> Result<Vec<Listed>, StoreError> {
        Ok(Vec::new())
    }

    fn log_partitions(&self) -> usize {
        1
    }

    async fn read_log(
        &self,
        _after: Option<&Cursor>,
        _limit: usize,
    ) -> Result<LogPage, StoreError> {
        Ok(LogPage {
            entries: Vec::new(),
            next: Cursor::start(1),
        })
    }

    fn log_appended(&self) -> &tokio::sync::Notify {
        &NEVER_APPENDED
    }

    async fn list_prefix(
        &self,
        _prefix: &str,
        _start_after: Option<&str>,
        _limit: usize,
    ) -> Result<Vec<(String, Versioned)>, StoreError> {
        Ok(Vec::new())
    }

    async fn health(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

#[derive(Clone)]
enum Floor {
    Body,
    Core,
    Pipeline(Pipeline<Discard>),
    Memory(Pipeline<MemoryStore>),
}

async fn handle(floor: Floor, body: Bytes) -> Result<String, StatusCode> {
    let bad = |_| StatusCode::BAD_REQUEST;
    match floor {
        Floor::Body => Ok("{}".to_owned()),
        Floor::Core => {
            let value = ims_callback::event::parse_json(&body).map_err(bad)?;
            let fingerprint = ims_callback::state::Fingerprint::of_value(&value);
            let event = ims_callback::event::Event::from_value(value).map_err(bad)?;
            let (_, changes) = ims_callback::state::derive(event, &fingerprint);
            Ok(format!("{fingerprint} {}", changes.len()))
        }
        Floor::Pipeline(discard) => pipeline(&discard, &body).await,
        Floor::Memory(memory) => pipeline(&memory, &body).await,
    }
}

/// The whole pipeline against `store`; answers the fingerprint.
async fn pipeline<S: Store>(pipeline: &Pipeline<S>, body: &[u8]) -> Result<String, StatusCode> {
    pipeline
        .process(body, ReceivedAt::now())
        .await
        .map(|processed| processed.fingerprint.to_string())
        .map_err(|_| StatusCode::BAD_REQUEST)
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr: SocketAddr = std::env::var("IMS_LISTEN")
        .ok()
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 9000)));
    let floor = match std::env::var("FLOOR").as_deref() {
        Ok("body") => Floor::Body,
        Ok("core") => Floor::Core,
        Ok("pipeline") => Floor::Pipeline(Pipeline::new(Discard)),
        Ok("memory") => Floor::Memory(Pipeline::new(MemoryStore::new())),
        other => {
            eprintln!("FLOOR must be body, core, pipeline or memory (got {other:?})");
            std::process::exit(2);
        }
    };
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let app = Router::new().fallback(move |body: Bytes| handle(floor.clone(), body));
    axum::serve(listener, app).await
}
