//! Store conformance suite: the cases of `cases.rs`, run against every
//! backend (memory, redb, Redis single node, Redis Cluster), plus backend-specific
//! checks in `specific.rs` (Redis layout, TLS, password redaction,
//! reconnecting, the setting forms, redb durability).
//!
//! Run with `cargo test --test store` (needs `redis-server` and `redis-cli`
//! on PATH; see `harness.rs`).

mod cases;
mod harness;
mod listing;
mod log;
#[path = "../support/redis.rs"]
mod redis_support;
mod specific;

/// One `#[test]` per case for backend `$backend`, each on its own runtime.
macro_rules! conformance {
    ($module:ident, $backend:ty, [$($case:ident),* $(,)?]) => {
        mod $module {
            $(
                #[test]
                fn $case() {
                    crate::harness::run(crate::cases::$case::<$backend>());
                }
            )*
        }
    };
    ($module:ident, $backend:ty) => {
        conformance!($module, $backend, [
            create_when_absent,
            create_when_present_conflicts,
            cas_with_right_version_writes,
            cas_with_wrong_version_conflicts,
            versions_are_strictly_monotonic,
            concurrent_increments_are_exact,
            list_prefix_is_sorted_paged_and_bounded,
            list_limit_is_capped,
            large_values_round_trip,
            unusual_keys,
            health_ok,
            stalled_backend_times_out,
            health_fails_when_down,
        ]);
    };
}

/// One `#[test]` per change-log case (in `log.rs`) for backend `$backend`.
macro_rules! log_conformance {
    ($module:ident, $backend:ty, [$($case:ident),* $(,)?]) => {
        mod $module {
            $(
                #[test]
                fn $case() {
                    crate::harness::run(crate::log::$case::<$backend>());
                }
            )*
        }
    };
    ($module:ident, $backend:ty) => {
        log_conformance!($module, $backend, [
            log_records_each_logged_write,
            log_pages_by_cursor,
            log_is_atomic_with_concurrent_writes,
            waiting_read_wakes_on_append,
            log_agrees_with_state_after_timeouts,
        ]);
    };
}

conformance!(memory, crate::harness::Memory);
conformance!(redb, crate::harness::Redb);
conformance!(redis, crate::harness::Redis);
conformance!(redis_cluster, crate::harness::RedisCluster);
log_conformance!(memory_log, crate::harness::Memory);
log_conformance!(redb_log, crate::harness::Redb);
log_conformance!(redis_log, crate::harness::Redis);
log_conformance!(redis_cluster_log, crate::harness::RedisCluster);

/// One `#[test]` per listing-index case (in `listing.rs`) for backend `$backend`.
macro_rules! listing_conformance {
    ($module:ident, $backend:ty) => {
        mod $module {
            #[test]
            fn listing_orders_filters_and_moves() {
                crate::harness::run(crate::listing::listing_orders_filters_and_moves::<$backend>());
            }
            #[test]
            fn paging_under_concurrent_writes_is_exact() {
                crate::harness::run(crate::listing::paging_under_concurrent_writes_is_exact::<
                    $backend,
                >());
            }
        }
    };
}

listing_conformance!(memory_listing, crate::harness::Memory);
listing_conformance!(redb_listing, crate::harness::Redb);
listing_conformance!(redis_listing, crate::harness::Redis);
listing_conformance!(redis_cluster_listing, crate::harness::RedisCluster);
