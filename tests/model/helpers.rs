//! Shared helpers: locating and loading the corpus.

use ims_callback::event::Event;

pub use crate::samples::{events_dir, json_files};

/// Parses `events/<name>.json`, panicking with the problems if invalid.
pub fn load(name: &str) -> Event {
    let bytes = std::fs::read(events_dir().join(format!("{name}.json"))).unwrap();
    Event::from_slice(&bytes).unwrap_or_else(|r| panic!("{name}: {r}"))
}
