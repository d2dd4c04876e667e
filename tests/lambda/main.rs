//! AWS Lambda mode.
//!
//! - `handle`: `ims_callback::lambda::handle` called directly on real
//!   stores (memory, redb, Redis through a fault-injecting proxy, an
//!   unreachable Redis): every trigger shape, the HTTP status mapping, and
//!   exactly which SQS records are reported for redelivery.
//! - `end_to_end`: the real binary under a local implementation of the
//!   Lambda Runtime API (`runtime_api`), as the Lambda service runs it.
//! - `http_cases`: one table of HTTP cases answered alike by the FC server
//!   over TCP and by the binary in Lambda mode.
//!
//! Needs `redis-server` on PATH (see `tests/support/redis.rs`).

mod end_to_end;
mod events;
mod handle;
mod http_cases;
mod proxy;
#[path = "../support/redis.rs"]
mod redis_support;
mod runtime_api;
