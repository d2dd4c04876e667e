//! Reliability: the receiver keeps answering correctly under load, store
//! faults and hostile input; it never answers 200 for an event it did not
//! store, loses nothing it acknowledged, and never crashes. Each test
//! prints its figures on lines starting `FIGURES` (run with
//! `--nocapture` to see them); `docs/reliability.md` records them.

mod concurrency;
mod defaults;
mod events;
mod faults;
mod fc_harness;
mod helpers;
mod hostile;
mod process;
mod raw;
#[path = "../support/redis.rs"]
mod redis_support;
mod security;
