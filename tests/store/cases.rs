//! The conformance cases: one set, generic over the backend. `main.rs` runs
//! each against every backend.

use std::time::{Duration, Instant};

use ims_callback::store::{
    CasOutcome, MAX_KEY_LEN, MAX_LIST_LIMIT, MAX_VALUE_LEN, Store, StoreError, Version, Versioned,
};

use crate::harness::Backend;

/// Timeout for stores in the functional cases: generous, so that a loaded
/// CI machine does not turn into a spurious failure (timeouts have their own case).
const RELAXED: Duration = Duration::from_secs(10);

async fn fresh<B: Backend>() -> B::S {
    B::shared().store(RELAXED).await
}

fn written(outcome: CasOutcome) -> Version {
    match outcome {
        CasOutcome::Written(v) => v,
        other => panic!("expected Written, got {other:?}"),
    }
}

async fn create<S: Store>(store: &S, key: &str, value: &[u8]) {
    let outcome = store.compare_and_set(key, None, value).await.unwrap();
    assert_eq!(
        outcome,
        CasOutcome::Written(Version::FIRST),
        "create {key:?}"
    );
}

fn versioned(version: u64, value: &[u8]) -> Option<Versioned> {
    Some(Versioned {
        version: Version::new(version),
        value: value.to_vec(),
    })
}

pub async fn create_when_absent<B: Backend>() {
    let store = fresh::<B>().await;
    assert_eq!(store.get("media/a").await.unwrap(), None);
    let outcome = store
        .compare_and_set("media/a", None, b"one")
        .await
        .unwrap();
    assert_eq!(outcome, CasOutcome::Written(Version::FIRST));
    assert_eq!(store.get("media/a").await.unwrap(), versioned(1, b"one"));
    // An empty value is a value, not an absence.
    create(&store, "media/empty", b"").await;
    assert_eq!(store.get("media/empty").await.unwrap(), versioned(1, b""));
}

pub async fn create_when_present_conflicts<B: Backend>() {
    let store = fresh::<B>().await;
    create(&store, "job/1", b"first").await;
    let outcome = store
        .compare_and_set("job/1", None, b"second")
        .await
        .unwrap();
    assert_eq!(
        outcome,
        CasOutcome::Conflict {
            current: Some(Version::FIRST)
        }
    );
    assert_eq!(store.get("job/1").await.unwrap(), versioned(1, b"first"));
}

pub async fn cas_with_right_version_writes<B: Backend>() {
    let store = fresh::<B>().await;
    create(&store, "task/1", b"v1").await;
    let current = store.get("task/1").await.unwrap().unwrap();
    let outcome = store
        .compare_and_set("task/1", Some(current.version), b"v2")
        .await
        .unwrap();
    assert_eq!(outcome, CasOutcome::Written(Version::new(2)));
    assert_eq!(store.get("task/1").await.unwrap(), versioned(2, b"v2"));
}

pub async fn cas_with_wrong_version_conflicts<B: Backend>() {
    let store = fresh::<B>().await;
    create(&store, "task/2", b"v1").await;
    for wrong in [0, 2, 7, u64::MAX] {
        let outcome = store
            .compare_and_set("task/2", Some(Version::new(wrong)), b"bad")
            .await
            .unwrap();
        assert_eq!(
            outcome,
            CasOutcome::Conflict {
                current: Some(Version::FIRST)
            },
            "expected version {wrong}"
        );
    }
    // Expecting a version of a key that does not exist.
    let outcome = store
        .compare_and_set("task/absent", Some(Version::FIRST), b"bad")
        .await
        .unwrap();
    assert_eq!(outcome, CasOutcome::Conflict { current: None });
    assert_eq!(store.get("task/absent").await.unwrap(), None);
    assert_eq!(store.get("task/2").await.unwrap(), versioned(1, b"v1"));
}

pub async fn versions_are_strictly_monotonic<B: Backend>() {
    let store = fresh::<B>().await;
    let mut last = written(store.compare_and_set("m", None, b"0").await.unwrap());
    for i in 1..=25u32 {
        let value = i.to_string();
        let next = written(
            store
                .compare_and_set("m", Some(last), value.as_bytes())
                .await
                .unwrap(),
        );
        assert_eq!(next.get(), last.get() + 1);
        assert!(next > last);
        // A stale version never wins again.
        let stale = store.compare_and_set("m", Some(last), b"x").await.unwrap();
        assert_eq!(
            stale,
            CasOutcome::Conflict {
                current: Some(next)
            }
        );
        last = next;
    }
    assert_eq!(store.get("m").await.unwrap(), versioned(26, b"25"));
}

/// 16 tasks each add 1 to one counter 25 times with a get + CAS retry loop:
/// no increment may be lost or doubled.
pub async fn concurrent_increments_are_exact<B: Backend>() {
    const TASKS: u64 = 16;
    const EACH: u64 = 25;
    let store = fresh::<B>().await;
    create(&store, "counter", b"0").await;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..TASKS {
        let store = store.clone();
        tasks.spawn(async move {
            let mut conflicts = 0u64;
            for _ in 0..EACH {
                loop {
                    let current = store.get("counter").await.unwrap().unwrap();
                    let n: u64 = std::str::from_utf8(&current.value)
                        .unwrap()
                        .parse()
                        .unwrap();
                    let next = (n + 1).to_string();
                    match store
                        .compare_and_set("counter", Some(current.version), next.as_bytes())
                        .await
                        .unwrap()
                    {
                        CasOutcome::Written(_) => break,
                        CasOutcome::Conflict { .. } => conflicts += 1,
                    }
                }
            }
            conflicts
        });
    }
    let conflicts: u64 = tasks.join_all().await.into_iter().sum();
    let total = TASKS * EACH;
    assert_eq!(
        store.get("counter").await.unwrap(),
        versioned(total + 1, total.to_string().as_bytes()),
        "after {conflicts} conflicts"
    );
}

/// Write `keys` concurrently (value = key bytes).
async fn create_all<S: Store + Clone + 'static>(store: &S, keys: &[String]) {
    let mut tasks = tokio::task::JoinSet::new();
    for chunk in keys.chunks(keys.len().div_ceil(8).max(1)) {
        let store = store.clone();
        let chunk = chunk.to_vec();
        tasks.spawn(async move {
            for key in chunk {
                create(&store, &key, key.as_bytes()).await;
            }
        });
    }
    tasks.join_all().await;
}

/// Every key of a listing, paging through it `page` at a time.
async fn list_all<S: Store>(store: &S, prefix: &str, page: usize) -> Vec<String> {
    let mut all: Vec<String> = Vec::new();
    loop {
        let after = all.last().cloned();
        let got = store
            .list_prefix(prefix, after.as_deref(), page)
            .await
            .unwrap();
        assert!(got.len() <= page, "page of {} > limit {page}", got.len());
        let done = got.len() < page;
        all.extend(got.into_iter().map(|(k, _)| k));
        if done {
            return all;
        }
    }
}

pub async fn list_prefix_is_sorted_paged_and_bounded<B: Backend>() {
    let store = fresh::<B>().await;
    let keys: Vec<String> = [
        "a", "a/1", "a/2", "a/10", "a/b", "a/ü", "a/视频", "a/\u{7f}", "a/~", "a0", "ab/1", "b/1",
        "Z/1", "",
    ]
    .iter()
    .filter(|k| !k.is_empty())
    .map(|k| (*k).to_owned())
    .collect();
    create_all(&store, &keys).await;
    // Make versions differ, to see that listings carry the current ones.
    written(
        store
            .compare_and_set("a/2", Some(Version::FIRST), b"a/2 v2")
            .await
            .unwrap(),
    );

    let mut expected: Vec<&str> = keys
        .iter()
        .map(String::as_str)
        .filter(|k| k.starts_with("a/"))
        .collect();
    expected.sort_unstable();

    // One page: sorted, other prefixes ("a", "a0", "ab/1", …) excluded, values and versions right.
    let page = store.list_prefix("a/", None, 100).await.unwrap();
    let got: Vec<&str> = page.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(got, expected);
    for (key, v) in &page {
        if key == "a/2" {
            assert_eq!(v, &versioned(2, b"a/2 v2").unwrap());
        } else {
            assert_eq!(v, &versioned(1, key.as_bytes()).unwrap());
        }
    }

    // Paging with start_after, for every page size, gives the same sequence.
    for size in 1..=expected.len() + 1 {
        assert_eq!(list_all(&store, "a/", size).await, expected, "page {size}");
    }

    // `limit` is respected.
    let two = store.list_prefix("a/", None, 2).await.unwrap();
    assert_eq!(two.len(), 2);
    assert_eq!(two[1].0, expected[1]);
    assert!(store.list_prefix("a/", None, 0).await.unwrap().is_empty());

    // start_after: strictly after; need not be a key; may lie outside the prefix.
    let after = |k: &'static str| {
        let store = store.clone();
        async move {
            store
                .list_prefix("a/", Some(k), 100)
                .await
                .unwrap()
                .into_iter()
                .map(|(k, _)| k)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(after("a/10").await, expected[2..]);
    assert_eq!(after("a/11").await, expected[2..]);
    assert_eq!(after("a/").await, expected);
    assert_eq!(after("0").await, expected);
    assert!(after("a/视频").await.is_empty());
    assert!(after("b").await.is_empty());

    // The empty prefix lists everything; a prefix matching nothing lists nothing.
    let mut all_keys = keys.clone();
    all_keys.sort_unstable();
    assert_eq!(list_all(&store, "", 5).await, all_keys);
    assert!(store.list_prefix("c/", None, 10).await.unwrap().is_empty());
    // A prefix that is itself a key includes it.
    let a: Vec<String> = list_all(&store, "a", 100).await;
    assert_eq!(a.first().map(String::as_str), Some("a"));
    assert_eq!(a.len(), 1 + expected.len() + 2); // "a", "a/…", "a0", "ab/1"
}

pub async fn list_limit_is_capped<B: Backend>() {
    let store = fresh::<B>().await;
    let keys: Vec<String> = (0..MAX_LIST_LIMIT + 5)
        .map(|i| format!("cap/{i:05}"))
        .collect();
    create_all(&store, &keys).await;
    let page = store.list_prefix("cap/", None, usize::MAX).await.unwrap();
    assert_eq!(page.len(), MAX_LIST_LIMIT);
    assert_eq!(page[0].0, "cap/00000");
    assert_eq!(page[MAX_LIST_LIMIT - 1].0, keys[MAX_LIST_LIMIT - 1]);
    let rest = store
        .list_prefix("cap/", Some(&page[MAX_LIST_LIMIT - 1].0), usize::MAX)
        .await
        .unwrap();
    let rest: Vec<String> = rest.into_iter().map(|(k, _)| k).collect();
    assert_eq!(rest, keys[MAX_LIST_LIMIT..]);
}

pub async fn large_values_round_trip<B: Backend>() {
    let store = fresh::<B>().await;
    let mib: Vec<u8> = (0..1 << 20).map(|i: u32| (i * 31 + 7) as u8).collect();
    assert!(mib.contains(&0) && mib.contains(&0xff));
    create(&store, "big", &mib).await;
    assert_eq!(store.get("big").await.unwrap(), versioned(1, &mib));
    let reversed: Vec<u8> = mib.iter().rev().copied().collect();
    written(
        store
            .compare_and_set("big", Some(Version::FIRST), &reversed)
            .await
            .unwrap(),
    );
    let listed = store.list_prefix("bi", None, 10).await.unwrap();
    assert_eq!(
        listed,
        vec![("big".to_owned(), versioned(2, &reversed).unwrap())]
    );

    // Over the limit: refused before reaching the backend, not retryable.
    let too_big = vec![0u8; MAX_VALUE_LEN + 1];
    let err = store
        .compare_and_set("big2", None, &too_big)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::ValueTooLarge { .. }), "{err:?}");
    assert!(!err.is_retryable());
    assert_eq!(store.get("big2").await.unwrap(), None);
}

pub async fn unusual_keys<B: Backend>() {
    let store = fresh::<B>().await;
    let keys = [
        "media/视频-ü",
        "media/视频-ü/2",
        "media/🎬 clip",
        // Hash-tag and glob characters must not change where a key lives.
        "job/{tag}*?[x]",
        "job/{}",
        "task/ space\ttab\nnewline",
        "rejected/\u{0}nul",
    ];
    for key in keys {
        create(&store, key, key.as_bytes()).await;
        assert_eq!(store.get(key).await.unwrap(), versioned(1, key.as_bytes()));
    }
    let listed: Vec<String> = store
        .list_prefix("media/视", None, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(listed, ["media/视频-ü", "media/视频-ü/2"]);
    assert_eq!(
        list_all(&store, "job/{", 1).await,
        ["job/{tag}*?[x]", "job/{}"]
    );

    let longest = "k".repeat(MAX_KEY_LEN);
    create(&store, &longest, b"ok").await;
    for bad in [String::new(), "k".repeat(MAX_KEY_LEN + 1)] {
        let err = store.get(&bad).await.unwrap_err();
        assert!(matches!(err, StoreError::InvalidKey(_)), "{err:?}");
        let err = store.compare_and_set(&bad, None, b"x").await.unwrap_err();
        assert!(matches!(err, StoreError::InvalidKey(_)), "{err:?}");
    }
}

pub async fn health_ok<B: Backend>() {
    let store = fresh::<B>().await;
    store.health().await.unwrap();
}

/// A backend that stops answering makes every call fail with `Timeout`
/// (retryable) close to the configured timeout, and the store recovers when
/// the backend comes back.
pub async fn stalled_backend_times_out<B: Backend>() {
    const LIMIT: Duration = Duration::from_millis(300);
    let backend = B::dedicated();
    let store = backend.store(LIMIT).await;
    // Connected and working before the stall.
    create(&store, "t", b"1").await;
    store.health().await.unwrap();

    let Some(stall) = backend.stall() else {
        // The memory backend does no I/O: there is nothing to wait for, so
        // even a 1 ns budget is met (the call completes on its first poll).
        let store = backend.store(Duration::from_nanos(1)).await;
        create(&store, "t", b"1").await;
        store.get("t").await.unwrap().unwrap();
        store.health().await.unwrap();
        eprintln!("note: this backend does no I/O and cannot time out");
        return;
    };

    async fn expect_timeout<T: std::fmt::Debug>(
        what: &str,
        call: impl std::future::Future<Output = Result<T, StoreError>>,
    ) {
        let started = Instant::now();
        let result = call.await;
        let took = started.elapsed();
        match result {
            Err(StoreError::Timeout) => {}
            other => panic!("{what}: expected Timeout, got {other:?} after {took:?}"),
        }
        assert!(
            took >= LIMIT - Duration::from_millis(20),
            "{what}: {took:?}"
        );
        assert!(took < LIMIT * 10, "{what}: took {took:?}");
    }
    expect_timeout("get", store.get("t")).await;
    expect_timeout(
        "compare_and_set",
        store.compare_and_set("t", Some(Version::FIRST), b"2"),
    )
    .await;
    expect_timeout("list_prefix", store.list_prefix("", None, 10)).await;
    expect_timeout("health", store.health()).await;
    assert!(StoreError::Timeout.is_retryable());

    drop(stall);
    // Back to normal within a few seconds, on the same store handle.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match store.get("t").await {
            Ok(Some(_)) => break,
            Ok(None) => panic!("value lost"),
            Err(e) => {
                assert!(e.is_retryable(), "{e:?}");
                assert!(Instant::now() < deadline, "no recovery: {e:?}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    store.health().await.unwrap();
    // The timed-out CAS may or may not have been applied, even after the
    // re-read above (redb's queued job runs when the pool frees up): a
    // read–CAS loop, as real callers use, settles it.
    loop {
        let current = store.get("t").await.unwrap().unwrap();
        let outcome = store
            .compare_and_set("t", Some(current.version), b"3")
            .await
            .unwrap();
        if let CasOutcome::Written(v) = outcome {
            assert!(v.get() >= 2);
            break;
        }
    }
}

/// With the server gone, health (and every call) fails with a retryable error.
pub async fn health_fails_when_down<B: Backend>() {
    let mut backend = B::dedicated();
    let store = backend.store(Duration::from_millis(300)).await;
    create(&store, "h", b"1").await;
    store.health().await.unwrap();
    if !backend.kill() {
        eprintln!("note: this backend has no server to lose");
        store.health().await.unwrap();
        return;
    }
    let err = store.health().await.unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
    let err = store.get("h").await.unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
    let err = store.compare_and_set("h", None, b"x").await.unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
}
