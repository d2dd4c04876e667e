//! Every file in `events/` parses, classifies to the right family and kind
//! (from a table written here, independently of the catalogue), and
//! validates; every catalogue type has a sample.

use crate::helpers::{events_dir, json_files};
use ims_callback::event::{Event, catalogue::CATALOGUE};
use std::collections::BTreeSet;

/// (EventType, family, canonical kind, deprecated), from the seed's tables.
const EXPECTED: &[(&str, &str, &str, bool)] = &[
    ("FileUploadComplete", "upload", "FileUploadComplete", false),
    (
        "UploadByURLComplete",
        "upload",
        "UploadByURLComplete",
        false,
    ),
    (
        "ImageUploadComplete",
        "upload",
        "ImageUploadComplete",
        false,
    ),
    (
        "AttachedMediaUploadComplete",
        "upload",
        "AttachedMediaUploadComplete",
        false,
    ),
    (
        "RegisterStreamComplete",
        "upload",
        "RegisterStreamComplete",
        false,
    ),
    (
        "StreamUploadComplete",
        "upload",
        "StreamUploadComplete",
        false,
    ),
    (
        "UploadStreamByURLComplete",
        "upload",
        "UploadStreamByURLComplete",
        false,
    ),
    (
        "CreateAuditComplete",
        "media_management",
        "CreateAuditComplete",
        false,
    ),
    (
        "RegisterMediaComplete",
        "media_management",
        "RegisterMediaComplete",
        false,
    ),
    (
        "DeleteMediaComplete",
        "media_management",
        "DeleteMediaComplete",
        false,
    ),
    (
        "MediaBaseChangeComplete",
        "media_management",
        "MediaBaseChangeComplete",
        false,
    ),
    (
        "WorkflowTaskComplete",
        "workflow",
        "WorkflowTaskComplete",
        false,
    ),
    (
        "VideoAnalysisComplete",
        "vod_processing",
        "VideoAnalysisComplete",
        false,
    ),
    (
        "SnapshotComplete",
        "vod_processing",
        "SnapshotComplete",
        false,
    ),
    (
        "DynamicImageComplete",
        "vod_processing",
        "DynamicImageComplete",
        false,
    ),
    (
        "TranscodeComplete",
        "vod_processing",
        "TranscodeComplete",
        true,
    ),
    (
        "TranscodeParentComplete",
        "vod_processing",
        "TranscodeParentComplete",
        true,
    ),
    (
        "MediaConvertComplete",
        "vod_processing",
        "MediaConvertComplete",
        false,
    ),
    (
        "MediaConvertOutputGroupComplete",
        "vod_processing",
        "MediaConvertOutputGroupComplete",
        false,
    ),
    (
        "ApsaraVideoForMediaProcessingOutputGroupComplete",
        "vod_processing",
        "MediaConvertOutputGroupComplete",
        false,
    ),
    (
        "MediaConvertOutputComplete",
        "vod_processing",
        "MediaConvertOutputComplete",
        false,
    ),
    (
        "AIMediaAuditComplete",
        "video_ai",
        "AIMediaAuditComplete",
        false,
    ),
    ("AIProduceComplete", "video_ai", "AIProduceComplete", false),
    (
        "MediaAiAnalysisComplete",
        "video_ai",
        "MediaAiAnalysisComplete",
        false,
    ),
    (
        "ProduceMediaComplete",
        "editing",
        "ProduceMediaComplete",
        false,
    ),
    (
        "BatchProduceMediaComplete",
        "editing",
        "BatchProduceMediaComplete",
        false,
    ),
    ("SmartJobComplete", "editing", "SmartJobComplete", false),
    (
        "LiveRecordFileCreated",
        "live",
        "LiveRecordFileCreated",
        false,
    ),
    (
        "LiveRecordTaskStatus",
        "live",
        "LiveRecordTaskStatus",
        false,
    ),
    (
        "LiveSnapshotFileCreated",
        "live",
        "LiveSnapshotFileCreated",
        false,
    ),
];

fn expected(event_type: &str) -> (&'static str, &'static str, bool) {
    let (_, family, kind, deprecated) = EXPECTED
        .iter()
        .find(|(t, ..)| *t == event_type)
        .unwrap_or_else(|| panic!("{event_type} is not in the expected table"));
    (family, kind, *deprecated)
}

#[test]
fn the_catalogue_has_the_29_types_of_the_seed() {
    assert_eq!(CATALOGUE.len(), 29);
    let canonical: BTreeSet<_> = EXPECTED.iter().map(|(_, _, kind, _)| *kind).collect();
    let catalogue: BTreeSet<_> = CATALOGUE.iter().map(|e| e.name).collect();
    assert_eq!(canonical, catalogue);
    for (i, entry) in CATALOGUE.iter().enumerate() {
        assert_eq!(entry.kind as usize, i, "catalogue is indexed by kind");
        assert!(!entry.touches.is_empty(), "{} touches nothing", entry.name);
    }
}

#[test]
fn every_sample_parses_classifies_and_validates() {
    let files = json_files(&events_dir());
    let mut seen = BTreeSet::new();
    for path in &files {
        let bytes = std::fs::read(path).unwrap();
        let event = Event::from_slice(&bytes).unwrap_or_else(|r| panic!("{}: {r}", path.display()));
        let (family, kind, deprecated) = expected(&event.event_type);
        let entry = event.entry().expect("a catalogue type");
        assert_eq!(entry.family.as_str(), family, "{}", path.display());
        assert_eq!(entry.name, kind, "{}", path.display());
        assert_eq!(event.is_deprecated(), deprecated, "{}", path.display());
        // The file is named after its EventType (`<EventType>[-variant].json`).
        let stem = path.file_stem().unwrap().to_str().unwrap();
        assert_eq!(stem.split('-').next().unwrap(), event.event_type);
        seen.insert(event.event_type.clone());
    }
    let all: BTreeSet<_> = EXPECTED.iter().map(|(t, ..)| t.to_string()).collect();
    assert_eq!(seen, all, "a sample for every event type and alias");
}

#[test]
fn an_unknown_event_type_is_accepted_with_its_raw_body() {
    let raw = br#"{"EventType":"SomethingNewComplete","UserId":1,"EventTime":"2026-01-01T00:00:00Z","MessageBody":{"Anything":[1,2,{"x":null}]}}"#;
    let event = Event::from_slice(raw).unwrap();
    assert_eq!(event.kind(), None);
    assert!(!event.is_deprecated());
    let back = serde_json::to_value(&event).unwrap();
    assert_eq!(
        back,
        serde_json::from_slice::<serde_json::Value>(raw).unwrap()
    );
}

#[test]
fn the_readme_event_table_matches_the_catalogue() {
    let readme =
        std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
            .unwrap();
    for entry in CATALOGUE {
        let row = readme
            .lines()
            .find(|l| l.starts_with(&format!("| `{}` |", entry.name)))
            .unwrap_or_else(|| panic!("README has no row for {}", entry.name));
        assert!(
            row.contains(&format!("| {} |", entry.family.as_str())),
            "{row}"
        );
        for touch in entry.touches {
            assert!(row.contains(&format!("`{touch}`")), "{row} lacks {touch}");
        }
        assert_eq!(
            row.contains("deprecated"),
            entry.deprecated.is_some(),
            "{row}"
        );
        for alias in entry.aliases {
            assert!(row.contains(alias), "{row} lacks alias {alias}");
        }
    }
}
