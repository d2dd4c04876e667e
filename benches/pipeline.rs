//! Criterion benchmarks of the pure core: parse → classify → validate →
//! fingerprint → derive, per sample event, and the merge of a change into
//! a resource state (with its decode/encode, as the store path does).
//!
//! `cargo bench --bench pipeline`; figures are recorded in BENCHMARKS.md.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ims_callback::event::Event;
use ims_callback::state::{Fingerprint, ResourceState, derive};
use serde_json::{Value, json};
use std::hint::black_box;

/// The whole pure path one callback takes before any store call.
fn core(bytes: &[u8]) -> usize {
    let value: Value = serde_json::from_slice(bytes).expect("valid sample");
    let fingerprint = Fingerprint::of_value(&value);
    let event = Event::from_value(value).expect("valid sample");
    let (_meta, changes) = derive(event, &fingerprint);
    changes.len()
}

#[path = "../tests/support/corpus.rs"]
mod corpus;

fn samples() -> Vec<(String, Vec<u8>)> {
    corpus::json_files(&corpus::events_dir())
        .into_iter()
        .map(|p| {
            let name = p.file_stem().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).unwrap())
        })
        .collect()
}

fn bench_core(c: &mut Criterion) {
    let mut group = c.benchmark_group("core");
    for (name, bytes) in samples() {
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_with_input(BenchmarkId::from_parameter(&name), &bytes, |b, bytes| {
            b.iter(|| core(black_box(bytes)))
        });
    }
    group.finish();
}

/// A LiveRecordFileCreated event for `record` at second `i`.
fn live_file(i: u32) -> Value {
    json!({"EventType": "LiveRecordFileCreated", "UserId": 1,
        "EventTime": format!("2026-01-01T{:02}:{:02}:{:02}Z", i / 3600, (i / 60) % 60, i % 60),
        "MessageBody": {"jobId": "live-1", "record_id": format!("r-{i}"), "duration": 1.0,
                        "start_time": i, "stop_time": i + 1, "uri": format!("r/{i}.m3u8")}})
}

/// Merge cost by resource size: one new event into a state that already
/// holds `n` events (decode → apply → encode, as `pipeline::apply` does).
fn bench_merge(c: &mut Criterion) {
    let mut group = c.benchmark_group("merge");
    for n in [1u32, 16, 64, 256] {
        let mut state: Option<ResourceState> = None;
        for i in 0..n {
            let value = live_file(i);
            let fp = Fingerprint::of_value(&value);
            let event = Event::from_value(value).unwrap();
            let (meta, changes) = derive(event, &fp);
            let s = state.get_or_insert_with(|| ResourceState::new(&changes[0].key));
            s.apply(&meta, &changes[0]);
        }
        let stored = serde_json::to_vec(&state.unwrap()).unwrap();
        let value = live_file(n + 1);
        let fp = Fingerprint::of_value(&value);
        let event = Event::from_value(value).unwrap();
        let (meta, changes) = derive(event, &fp);
        group.throughput(Throughput::Bytes(stored.len() as u64));
        group.bench_with_input(
            BenchmarkId::new("events_in_state", n),
            &stored,
            |b, stored| {
                b.iter(|| {
                    let mut s: ResourceState = serde_json::from_slice(black_box(stored)).unwrap();
                    s.apply(&meta, &changes[0]);
                    let mut bytes = Vec::with_capacity(stored.len() + 512);
                    s.write_json(&mut bytes);
                    bytes.len()
                })
            },
        );
    }
    group.finish();
}

criterion_group!(benches, bench_core, bench_merge);
criterion_main!(benches);
