//! Tests of the event model against the `events/` corpus: every valid
//! sample classifies and validates, every invalid sample fails with exactly
//! its recorded problems, and events round-trip without loss.

mod cli;
mod corpus;
mod fields;
mod helpers;
mod invalid;
mod roundtrip;
#[path = "../support/corpus.rs"]
mod samples;
