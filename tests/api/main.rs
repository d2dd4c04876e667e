//! End-to-end tests of the HTTP server: the real server on a random port,
//! a real HTTP client, real stores (a redb file, and `redis-server`
//! processes of this test binary).

mod auth;
mod callbacks;
mod changes;
mod forward;
mod helpers;
mod invoke;
mod listing;
mod metrics;
mod operations;
mod query;
mod redis;
#[path = "../support/redis.rs"]
mod redis_support;
#[path = "../support/corpus.rs"]
mod samples;
mod send;
