//! The change-log cases of the conformance suite: generic over the backend,
//! run against every one by `main.rs`.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use ims_callback::store::{
    CasOutcome, ChangeId, Cursor, LogEntry, MAX_LOG_LIMIT, Store, StoreError, Version,
    read_log_waiting,
};

use crate::harness::Backend;

const RELAXED: Duration = Duration::from_secs(10);

async fn fresh<B: Backend>() -> B::S {
    B::shared().store(RELAXED).await
}

/// Every entry of the log, read `page` at a time; checks each page's bound
/// and that an exhausted cursor stays where it is.
async fn read_all<S: Store>(store: &S, page: usize) -> Vec<LogEntry> {
    let mut all = Vec::new();
    let mut after: Option<Cursor> = None;
    loop {
        let got = store.read_log(after.as_ref(), page).await.unwrap();
        assert!(
            got.entries.len() <= page,
            "page of {} > {page}",
            got.entries.len()
        );
        if got.entries.is_empty() {
            if let Some(after) = &after {
                assert_eq!(&got.next, after, "an empty page moves the cursor");
            }
            return all;
        }
        all.extend(got.entries);
        after = Some(got.next);
    }
}

/// Logged read–CAS: `value` as the key's new value and its change, retried on conflict.
async fn logged_update<S: Store>(store: &S, key: &str, value: &[u8]) -> Version {
    loop {
        let current = store.get(key).await.unwrap().map(|found| found.version);
        match store
            .compare_and_set_logged(key, current, value, value)
            .await
            .unwrap()
        {
            CasOutcome::Written(v) => return v,
            CasOutcome::Conflict { .. } => continue,
        }
    }
}

/// Ids are unique and increase within each partition, in the order read.
fn assert_ids_increase(entries: &[LogEntry]) {
    let mut last: BTreeMap<u16, u64> = BTreeMap::new();
    let mut seen = HashSet::new();
    for entry in entries {
        assert!(seen.insert(entry.id), "duplicate id {}", entry.id);
        let previous = last.insert(entry.id.partition, entry.id.seq).unwrap_or(0);
        assert!(entry.id.seq > previous, "{} after seq {previous}", entry.id);
    }
}

/// One entry per logged write that landed, with its key and bytes; none
/// for a conflict or for a plain compare-and-set.
pub async fn log_records_each_logged_write<B: Backend>() {
    let store = fresh::<B>().await;
    let empty = store.read_log(None, 10).await.unwrap();
    assert!(empty.entries.is_empty());
    assert_eq!(empty.next, Cursor::start(store.log_partitions()));

    let v1 = store
        .compare_and_set_logged("media/a", None, b"a1", b"change a1")
        .await
        .unwrap();
    assert_eq!(v1, CasOutcome::Written(Version::FIRST));
    // A conflicting create and a stale update append nothing.
    for expected in [None, Some(Version::new(7))] {
        let outcome = store
            .compare_and_set_logged("media/a", expected, b"x", b"never")
            .await
            .unwrap();
        assert!(
            matches!(outcome, CasOutcome::Conflict { .. }),
            "{outcome:?}"
        );
    }
    // A write without a change (a raw event record) appends nothing.
    store
        .compare_and_set("event/e", None, b"raw")
        .await
        .unwrap();
    store
        .compare_and_set_logged("media/a", Some(Version::FIRST), b"a2", b"change a2")
        .await
        .unwrap();
    store
        .compare_and_set_logged("job/b", None, b"b1", b"")
        .await
        .unwrap();

    let all = read_all(&store, 10).await;
    let summary: Vec<(&str, &[u8])> = all
        .iter()
        .map(|e| (e.key.as_str(), e.value.as_slice()))
        .collect();
    assert_eq!(summary.len(), 3, "{summary:?}");
    // Per key, the log order is the write order.
    let of_a: Vec<&[u8]> = summary
        .iter()
        .filter(|(k, _)| *k == "media/a")
        .map(|(_, v)| *v)
        .collect();
    assert_eq!(of_a, [&b"change a1"[..], b"change a2"]);
    assert!(summary.contains(&("job/b", &b""[..])));
    assert_ids_increase(&all);
    // Stable across reads: the same entries, ids and all.
    assert_eq!(read_all(&store, 1).await, all);
    assert_eq!(store.read_log(None, 10).await.unwrap().entries, all);
}

/// Paging by cursor visits every entry once, in each partition's order;
/// `after = next` with nothing new is an empty page at the same cursor;
/// a cursor that does not fit the log is refused.
pub async fn log_pages_by_cursor<B: Backend>() {
    let store = fresh::<B>().await;
    for i in 0..40 {
        let key = format!("media/{}", i % 9);
        logged_update(&store, &key, format!("{i}").as_bytes()).await;
    }
    let whole = store.read_log(None, MAX_LOG_LIMIT + 5).await.unwrap();
    assert_eq!(whole.entries.len(), 40);
    assert_ids_increase(&whole.entries);
    for page in [1, 7, 40] {
        let paged = read_all(&store, page).await;
        let mut ids: Vec<ChangeId> = paged.iter().map(|e| e.id).collect();
        assert_ids_increase(&paged);
        ids.sort();
        let mut expected: Vec<ChangeId> = whole.entries.iter().map(|e| e.id).collect();
        expected.sort();
        assert_eq!(ids, expected, "page size {page}");
    }
    // Nothing new: empty, same cursor; then a new write is the next page.
    let tail = store.read_log(Some(&whole.next), 10).await.unwrap();
    assert!(tail.entries.is_empty());
    assert_eq!(tail.next, whole.next);
    logged_update(&store, "media/new", b"late").await;
    let tail = store.read_log(Some(&whole.next), 10).await.unwrap();
    assert_eq!(tail.entries.len(), 1);
    assert_eq!(tail.entries[0].key, "media/new");
    assert_ne!(tail.next, whole.next);
    // A text round trip is the same cursor.
    let reparsed: Cursor = tail.next.to_string().parse().unwrap();
    assert_eq!(reparsed, tail.next);
    // A zero limit reads nothing and stays put.
    let none = store.read_log(Some(&whole.next), 0).await.unwrap();
    assert!(none.entries.is_empty() && none.next == whole.next);
    // The wrong number of positions is refused, not guessed at.
    let wrong = Cursor::start(store.log_partitions() + 1);
    match store.read_log(Some(&wrong), 10).await {
        Err(StoreError::InvalidCursor(message)) => {
            assert!(message.contains("partition"), "{message}")
        }
        other => panic!("expected InvalidCursor, got {other:?}"),
    }
}

/// Concurrent logged read–CAS loops on one key: every state written has
/// exactly one entry, in the order of the versions.
pub async fn log_is_atomic_with_concurrent_writes<B: Backend>() {
    const TASKS: u64 = 8;
    const EACH: u64 = 15;
    let store = fresh::<B>().await;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..TASKS {
        let store = store.clone();
        tasks.spawn(async move {
            for _ in 0..EACH {
                increment(&store, "counter").await;
            }
        });
    }
    tasks.join_all().await;
    assert_counter_agrees(&store, "counter").await;
    let found = store.get("counter").await.unwrap().unwrap();
    assert_eq!(found.value, (TASKS * EACH).to_string().as_bytes());
}

/// Adds one to the decimal counter at `key` with a logged read–CAS loop
/// (the change is the new value); `Err` when the store fails.
async fn try_increment<S: Store>(store: &S, key: &str) -> Result<(), StoreError> {
    loop {
        let current = store.get(key).await?;
        let n: u64 = current.as_ref().map_or(0, |found| {
            std::str::from_utf8(&found.value).unwrap().parse().unwrap()
        });
        let next = (n + 1).to_string();
        let outcome = store
            .compare_and_set_logged(
                key,
                current.map(|f| f.version),
                next.as_bytes(),
                next.as_bytes(),
            )
            .await?;
        if let CasOutcome::Written(_) = outcome {
            return Ok(());
        }
    }
}

async fn increment<S: Store>(store: &S, key: &str) {
    try_increment(store, key).await.unwrap();
}

/// The log's entries for counter `key` are exactly 1, 2, …, its value: no
/// state without its entry, no entry without its state.
pub async fn assert_counter_agrees<S: Store>(store: &S, key: &str) {
    let value: u64 = match store.get(key).await.unwrap() {
        Some(found) => std::str::from_utf8(&found.value).unwrap().parse().unwrap(),
        None => 0,
    };
    let logged: Vec<u64> = read_all(store, 97)
        .await
        .into_iter()
        .filter(|e| e.key == key)
        .map(|e| std::str::from_utf8(&e.value).unwrap().parse().unwrap())
        .collect();
    assert_eq!(logged, (1..=value).collect::<Vec<_>>(), "log of {key}");
}

/// A waiting read returns the entry appended while it waits, woken by the
/// append itself (the poll interval is longer than the wait).
pub async fn waiting_read_wakes_on_append<B: Backend>() {
    let store = fresh::<B>().await;
    logged_update(&store, "media/old", b"old").await;
    let start = store.read_log(None, 10).await.unwrap().next;
    let waiter = {
        let store = store.clone();
        let start = start.clone();
        tokio::spawn(async move {
            read_log_waiting(
                &store,
                Some(&start),
                10,
                Duration::from_secs(30),
                Duration::from_secs(60),
            )
            .await
            .unwrap()
        })
    };
    // Nothing new yet: the waiter is still waiting (or has not started).
    tokio::task::yield_now().await;
    logged_update(&store, "media/new", b"new").await;
    let page = waiter.await.unwrap();
    let keys: Vec<&str> = page.entries.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(keys, ["media/new"]);
    // With nothing to wait for, a zero wait answers at once, empty.
    let empty = read_log_waiting(&store, Some(&page.next), 10, Duration::ZERO, Duration::ZERO)
        .await
        .unwrap();
    assert!(empty.entries.is_empty() && empty.next == page.next);
}

/// Calls that time out while the backend is stalled have an unknown
/// outcome; once it is back, state and log still agree exactly.
pub async fn log_agrees_with_state_after_timeouts<B: Backend>() {
    let backend = B::dedicated();
    let store = backend.store(Duration::from_millis(300)).await;
    for _ in 0..3 {
        increment(&store, "c").await;
    }
    let current = store.get("c").await.unwrap().unwrap().version;
    let Some(stall) = backend.stall() else {
        eprintln!("note: this backend does no I/O and cannot stall");
        assert_counter_agrees(&store, "c").await;
        return;
    };
    // Writes issued into the stall: each times out, and may still land.
    let during: Vec<_> = (0..4)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .compare_and_set_logged("c", Some(current), b"4", b"4")
                    .await
            })
        })
        .collect();
    for task in during {
        let result = task.await.unwrap();
        assert!(matches!(result, Err(StoreError::Timeout)), "{result:?}");
    }
    drop(stall);
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while let Err(e) = try_increment(&store, "c").await {
        assert!(
            e.is_retryable() && std::time::Instant::now() < deadline,
            "{e:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A late write (redb's queued job) lands before this read–CAS settles.
    increment(&store, "c").await;
    assert_counter_agrees(&store, "c").await;
}

/// Redis killed (SIGKILL) while logged writes are in flight, then restarted
/// from its append-only file: every counter's log is still exactly its
/// states, the interrupted writes included (each script is one AOF entry).
#[test]
fn redis_killed_mid_write_keeps_state_and_log_together() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    use crate::harness::{RedisServer, run, unique};

    const KEYS: usize = 6;
    run(async {
        let redis = RedisServer::start_durable(&[]);
        let spec = format!("redis://127.0.0.1:{}/?prefix=k{}%3A", redis.port, unique());
        let store = ims_callback::store::AnyStore::open_with(
            &spec,
            &ims_callback::store::StoreOptions {
                timeout: Duration::from_millis(500),
            },
        )
        .await
        .unwrap();
        let written = Arc::new(AtomicUsize::new(0));
        let failed = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let writers: Vec<_> = (0..KEYS)
            .map(|i| {
                let (store, written, failed, stop) =
                    (store.clone(), written.clone(), failed.clone(), stop.clone());
                tokio::spawn(async move {
                    let key = format!("media/{i}");
                    while !stop.load(Ordering::SeqCst) {
                        match try_increment(&store, &key).await {
                            Ok(()) => written.fetch_add(1, Ordering::SeqCst),
                            Err(e) => {
                                assert!(e.is_retryable(), "{e:?}");
                                tokio::time::sleep(Duration::from_millis(20)).await;
                                failed.fetch_add(1, Ordering::SeqCst)
                            }
                        };
                    }
                })
            })
            .collect();
        async fn until(counter: &AtomicUsize, n: usize) {
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            while counter.load(Ordering::SeqCst) < n {
                assert!(std::time::Instant::now() < deadline, "writers stalled");
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
        until(&written, 120).await;
        redis.kill();
        until(&failed, KEYS).await;
        let restarted = redis.restart();
        let resumed = written.load(Ordering::SeqCst);
        until(&written, resumed + 60).await;
        stop.store(true, Ordering::SeqCst);
        for writer in writers {
            writer.await.unwrap();
        }
        for i in 0..KEYS {
            assert_counter_agrees(&store, &format!("media/{i}")).await;
        }
        drop(restarted);
    });
}
