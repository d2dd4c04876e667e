//! Shared helpers: locating and loading the corpus.

use ims_callback::event::Event;
use std::path::{Path, PathBuf};

/// The repository's `events/` directory.
pub fn events_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("events")
}

/// The `*.json` files directly in `dir`, sorted.
pub fn json_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
}

/// Parses `events/<name>.json`, panicking with the problems if invalid.
pub fn load(name: &str) -> Event {
    let bytes = std::fs::read(events_dir().join(format!("{name}.json"))).unwrap();
    Event::from_slice(&bytes).unwrap_or_else(|r| panic!("{name}: {r}"))
}
