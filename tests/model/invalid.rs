//! Every file in `events/invalid/` fails validation with exactly the
//! problems recorded in its `.expect` sidecar (one `path: reason` line per
//! problem, `(document)` for the whole input).

use crate::helpers::{events_dir, json_files};
use ims_callback::event::Event;

#[test]
fn every_invalid_sample_fails_with_exactly_its_recorded_problems() {
    let dir = events_dir().join("invalid");
    let files = json_files(&dir);
    assert!(
        files.len() >= 25,
        "at least 25 invalid samples, found {}",
        files.len()
    );
    for path in files {
        let expect_path = path.with_extension("expect");
        let expected = std::fs::read_to_string(&expect_path)
            .unwrap_or_else(|e| panic!("{}: {e}", expect_path.display()));
        let mut expected: Vec<&str> = expected.lines().filter(|l| !l.is_empty()).collect();
        let bytes = std::fs::read(&path).unwrap();
        let rejection = match Event::from_slice(&bytes) {
            Ok(_) => panic!("{} was accepted", path.display()),
            Err(r) => r,
        };
        let mut got: Vec<String> = rejection.problems.iter().map(|p| p.to_string()).collect();
        got.sort();
        expected.sort();
        assert_eq!(got, expected, "{}", path.display());
    }
}

#[test]
fn every_expect_file_has_its_input() {
    let dir = events_dir().join("invalid");
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "expect") {
            assert!(path.with_extension("json").exists(), "{}", path.display());
        }
    }
}
