//! Diagnosis: the memory store alone as it grows, without HTTP or load
//! generator. Each step is one event's writes as the pipeline makes them
//! for a new media (create the raw record; read, then create the
//! resource), with values of the bench event's sizes. Prints nanoseconds
//! per event for each half million events, and the process's RSS at the
//! end: what keeping millions of events in memory costs per event (page
//! faults of fresh memory, cache misses in large tables), which the HTTP
//! load test only shows blurred by the machine's phase.
//!
//!   cargo run --release --example store_growth        # 3 million events
//!   N=1000000 cargo run --release --example store_growth

// The release binary's allocator, so allocation costs are the server's.
#[global_allocator]
static GLOBAL: ims_callback::alloc::MiMalloc = ims_callback::alloc::MiMalloc;

use ims_callback::store::{MemoryStore, Store};
use std::future::Future;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

/// Runs a memory store call, which completes without waiting.
fn now<F: Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => unreachable!("the memory store never waits"),
    }
}

fn main() {
    let n: usize = std::env::var("N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3_000_000);
    let store = MemoryStore::new();
    let event_value = vec![b'e'; 420];
    let resource_value = vec![b'r'; 475];
    let mut started = Instant::now();
    let mut line = String::new();
    for i in 0..n {
        // Fingerprints are spread over their space; media ids count up.
        let ekey = format!(
            "event/{:032x}",
            (i as u128).wrapping_mul(0x9e3779b97f4a7c15f39cc0605cedc835)
        );
        let rkey = format!("media/m{i:016}");
        now(store.compare_and_set(&ekey, None, &event_value)).unwrap();
        let got = now(store.get(&rkey)).unwrap();
        assert!(got.is_none(), "each media is new");
        now(store.compare_and_set(&rkey, None, &resource_value)).unwrap();
        if (i + 1) % 500_000 == 0 {
            let ns = started.elapsed().as_nanos() as f64 / 500_000.0;
            line.push_str(&format!(" {ns:.0}"));
            started = Instant::now();
        }
    }
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let rss = status
        .lines()
        .find(|l| l.starts_with("VmRSS"))
        .unwrap_or("VmRSS: unknown");
    println!("ns per event, each 500k events:{line} | {rss}");
}
