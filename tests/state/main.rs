//! Tests of resource state: the merge rule's order independence and
//! idempotence (property tests, pure and through the pipeline on real
//! stores), deletion being terminal, and `invoke` + `state` end to end
//! through the binary on redb.

mod cli;
mod feed;
mod generate;
mod merge;
mod pipeline;
