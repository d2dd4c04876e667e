//! The listing-index cases of the conformance suite, run against every
//! backend by `main.rs`: order, filters, paging, moving a key, and the
//! paging guarantee under concurrent writes.

use std::collections::HashSet;
use std::time::Duration;

use ims_callback::store::{CasOutcome, IndexQuery, Listed, Listing, Position, Store, StoreError};

use crate::harness::Backend;

const RELAXED: Duration = Duration::from_secs(10);

fn listing(set: &str, tag: &str, rank: i64) -> Listing {
    Listing {
        set: set.into(),
        tag: tag.into(),
        rank,
        label: format!("t{rank}"),
    }
}

/// Listed write of `key` (read, CAS, retried on conflict).
async fn put<S: Store>(store: &S, key: &str, listing: &Listing) {
    loop {
        let current = store.get(key).await.unwrap().map(|f| f.version);
        let written = store
            .compare_and_set_listed(key, current, b"v", Some(b"c"), listing)
            .await
            .unwrap();
        if let CasOutcome::Written(_) = written {
            return;
        }
    }
}

/// Every row of `sets`/`tag`, `page` at a time.
async fn all<S: Store>(store: &S, sets: &[&str], tag: Option<&str>, page: usize) -> Vec<Listed> {
    let mut rows = Vec::new();
    let mut after: Option<Position> = None;
    loop {
        let got = store
            .list_index(&IndexQuery {
                sets,
                tag,
                after: after.as_ref(),
                rank_above: None,
                limit: page,
            })
            .await
            .unwrap();
        assert!(got.len() <= page);
        let Some(last) = got.last() else { return rows };
        after = Some(last.position());
        rows.extend(got);
    }
}

fn keys(rows: &[Listed]) -> Vec<&str> {
    rows.iter().map(|r| r.key.as_str()).collect()
}

/// Newest first, then by key; filters by set, tag and rank; a write moves
/// the key (never listed twice); a set cannot change; a relist needs the
/// right version.
pub async fn listing_orders_filters_and_moves<B: Backend>() {
    let store = B::shared().store(RELAXED).await;
    put(&store, "job/a", &listing("job", "ok", 10)).await;
    put(&store, "job/b", &listing("job", "failed", 30)).await;
    put(&store, "job/c", &listing("job", "failed", 10)).await;
    put(&store, "media/m", &listing("media", "failed", 20)).await;
    let jobs = all(&store, &["job"], None, 1).await;
    assert_eq!(keys(&jobs), ["job/b", "job/a", "job/c"]);
    assert_eq!(jobs[0].listing, listing("job", "failed", 30));
    let failed = all(&store, &["job", "media"], Some("failed"), 2).await;
    assert_eq!(keys(&failed), ["job/b", "media/m", "job/c"]);
    let recent = store
        .list_index(&IndexQuery {
            sets: &["job", "media"],
            tag: None,
            after: None,
            rank_above: Some(10),
            limit: 10,
        })
        .await
        .unwrap();
    assert_eq!(keys(&recent), ["job/b", "media/m"]);
    // A new status and time: moved, not copied.
    put(&store, "job/c", &listing("job", "ok", 40)).await;
    assert_eq!(
        keys(&all(&store, &["job"], None, 2).await),
        ["job/c", "job/b", "job/a"]
    );
    assert_eq!(
        keys(&all(&store, &["job"], Some("failed"), 5).await),
        ["job/b"]
    );
    assert_eq!(
        keys(&all(&store, &["job"], Some("ok"), 5).await),
        ["job/c", "job/a"]
    );
    let moved = store
        .compare_and_set_listed("job/c", None, b"v", Some(b"c"), &listing("media", "ok", 1))
        .await;
    assert!(matches!(moved, Err(StoreError::InvalidKey(_))), "{moved:?}");
    // An unlisted write leaves the listing; a relist at a stale version does nothing.
    store.compare_and_set("job/d", None, b"v").await.unwrap();
    assert_eq!(all(&store, &["job"], None, 10).await.len(), 3);
    let version = store.get("job/d").await.unwrap().unwrap().version;
    let stale = ims_callback::store::Version::new(version.get() + 1);
    assert!(
        !store
            .relist("job/d", stale, &listing("job", "ok", 5))
            .await
            .unwrap()
    );
    assert!(
        store
            .relist("job/d", version, &listing("job", "ok", 5))
            .await
            .unwrap()
    );
    assert_eq!(
        keys(&all(&store, &["job"], Some("ok"), 10).await),
        ["job/c", "job/a", "job/d"]
    );
}

/// While writers keep updating other keys and moving some keys to the
/// front, a paging sees every key that is not updated exactly once and
/// no key twice.
pub async fn paging_under_concurrent_writes_is_exact<B: Backend>() {
    let store = B::shared().store(RELAXED).await;
    let stable: Vec<String> = (0..40).map(|i| format!("job/s{i:02}")).collect();
    for (i, key) in stable.iter().enumerate() {
        put(&store, key, &listing("job", "failed", 1_000 + i as i64)).await;
    }
    let writer = {
        let store = store.clone();
        tokio::spawn(async move {
            // New keys anywhere in the order, and moves of the `m` keys to the front.
            for i in 0..60i64 {
                put(
                    &store,
                    &format!("job/n{i:02}"),
                    &listing("job", "failed", 1_000 + i * 7 % 50),
                )
                .await;
                put(
                    &store,
                    &format!("job/m{}", i % 5),
                    &listing("job", "failed", 2_000 + i),
                )
                .await;
            }
        })
    };
    let mut seen = HashSet::new();
    let mut after: Option<Position> = None;
    loop {
        let page = store
            .list_index(&IndexQuery {
                sets: &["job"],
                tag: Some("failed"),
                after: after.as_ref(),
                rank_above: None,
                limit: 3,
            })
            .await
            .unwrap();
        let Some(last) = page.last() else { break };
        if let Some(after) = &after {
            assert!(last.position().order() > after.order(), "pages go forward");
        }
        after = Some(last.position());
        for row in page {
            assert!(seen.insert(row.key.clone()), "{} listed twice", row.key);
        }
        tokio::task::yield_now().await;
    }
    writer.await.unwrap();
    for key in &stable {
        assert!(seen.contains(key), "{key} never listed");
    }
}
