//! The catalogue: every IMS event type of the seed in one table, with its
//! family, aliases, deprecation note, body type and the resources it
//! touches. [`classify`] maps an `EventType` string to its entry; an
//! unrecognised type is [`Classification::Unknown`], never an error.

use crate::event::body::{ai, editing, live, media, processing, upload, workflow};
use crate::event::field::{Ctx, FromJson};
use serde::{Serialize, Serializer};
use serde_json::Value;

/// The seven families of the seed's event list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    /// Media asset upload (table 1).
    Upload,
    /// Media asset management (table 2).
    MediaManagement,
    /// Workflow (table 3).
    Workflow,
    /// ApsaraVideo VOD media processing (table 4).
    VodProcessing,
    /// Video AI (table 5).
    VideoAi,
    /// Intelligent editing (table 6).
    Editing,
    /// Real-time media processing (table 7).
    Live,
}

impl Family {
    /// The snake_case name used in output.
    pub fn as_str(self) -> &'static str {
        match self {
            Family::Upload => "upload",
            Family::MediaManagement => "media_management",
            Family::Workflow => "workflow",
            Family::VodProcessing => "vod_processing",
            Family::VideoAi => "video_ai",
            Family::Editing => "editing",
            Family::Live => "live",
        }
    }
}

/// One row of the catalogue.
#[derive(Debug)]
pub struct Entry {
    /// The kind of event.
    pub kind: Kind,
    /// The canonical `EventType`.
    pub name: &'static str,
    /// Other `EventType` spellings IMS uses for the same event.
    pub aliases: &'static [&'static str],
    /// The family.
    pub family: Family,
    /// When IMS has announced the type's retirement: the note why.
    pub deprecated: Option<&'static str>,
    /// The resources an event of this type touches (key templates).
    pub touches: &'static [&'static str],
    /// What the event means, from the seed.
    pub description: &'static str,
}

/// The result of [`classify`].
#[derive(Debug, Clone, Copy)]
pub enum Classification {
    /// A type of the catalogue.
    Known(&'static Entry),
    /// A type this version does not know: stored raw and accepted.
    Unknown,
}

impl Classification {
    /// The family (`None` for an unknown type).
    pub fn family(self) -> Option<Family> {
        match self {
            Classification::Known(entry) => Some(entry.family),
            Classification::Unknown => None,
        }
    }

    /// The kind (`None` for an unknown type).
    pub fn kind(self) -> Option<Kind> {
        match self {
            Classification::Known(entry) => Some(entry.kind),
            Classification::Unknown => None,
        }
    }

    /// Whether IMS has announced the retirement of this type.
    pub fn is_deprecated(self) -> bool {
        matches!(self, Classification::Known(entry) if entry.deprecated.is_some())
    }
}

/// A family or kind as reported by every entry point: its catalogue name,
/// or [`Named::UNKNOWN`] for a type this version does not know (`None`).
/// Use with `#[serde(serialize_with = "name_or_unknown")]`.
pub trait Named: Copy {
    /// What an unknown type reports.
    const UNKNOWN: &'static str;
    /// The catalogue name.
    fn name(self) -> &'static str;
}

impl Named for Family {
    const UNKNOWN: &'static str = "unknown";
    fn name(self) -> &'static str {
        self.as_str()
    }
}

impl Named for Kind {
    const UNKNOWN: &'static str = "Unknown";
    fn name(self) -> &'static str {
        Kind::name(self)
    }
}

/// Serialises a family or kind by name, [`Named::UNKNOWN`] for `None`.
pub fn name_or_unknown<T: Named, S: Serializer>(
    value: &Option<T>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(value.map_or(T::UNKNOWN, T::name))
}

/// Looks an `EventType` up in the catalogue (canonical names and aliases).
pub fn classify(event_type: &str) -> Classification {
    CATALOGUE
        .iter()
        .find(|e| e.name == event_type || e.aliases.contains(&event_type))
        .map_or(Classification::Unknown, Classification::Known)
}

macro_rules! catalogue {
    ($(
        $(#[$meta:meta])*
        $kind:ident($body:ty) in $family:ident,
        touches [$($touch:literal),*],
        $(aliases [$($alias:literal),*],)?
        $(deprecated $dep:expr,)?
        $desc:literal;
    )*) => {
        /// Every event type of the seed.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Kind {
            $( $(#[$meta])* #[doc = $desc] $kind, )*
        }

        /// The catalogue, indexed by `Kind as usize`.
        pub static CATALOGUE: &[Entry] = &[
            $(Entry {
                kind: Kind::$kind,
                name: stringify!($kind),
                aliases: &[$($($alias),*)?],
                family: Family::$family,
                deprecated: catalogue!(@dep $($dep)?),
                touches: &[$($touch),*],
                description: $desc,
            },)*
        ];

        /// A typed message body, one variant per [`Kind`], plus `Unknown`.
        #[derive(Debug, Clone, PartialEq)]
        pub enum Body {
            $( #[doc = $desc] $kind($body), )*
            /// The `MessageBody` of an unrecognised type, verbatim (absent
            /// when the event had none).
            Unknown(Option<Value>),
        }

        impl Body {
            /// Parses `value` as the body of `kind`, recording problems.
            pub fn parse(kind: Kind, value: Value, ctx: &mut Ctx) -> Option<Body> {
                match kind {
                    $( Kind::$kind => <$body>::from_json(value, ctx).map(Body::$kind), )*
                }
            }

            /// The kind of this body (`None` for an unknown type).
            pub fn kind(&self) -> Option<Kind> {
                match self {
                    $( Body::$kind(_) => Some(Kind::$kind), )*
                    Body::Unknown(_) => None,
                }
            }
        }

        impl Serialize for Body {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                match self {
                    $( Body::$kind(body) => body.serialize(serializer), )*
                    Body::Unknown(value) => value.serialize(serializer),
                }
            }
        }
    };
    (@dep $dep:expr) => { Some($dep) };
    (@dep) => { None };
}

const TRANSCODE_RETIRED: &str =
    "IMS retires this event type after 2025-12-31; use the MediaConvert* events";

catalogue! {
    FileUploadComplete(upload::FileUpload) in Upload,
        touches ["media/{MediaId}"],
        "An audio or video file is uploaded.";
    UploadByURLComplete(upload::UrlUpload) in Upload,
        touches ["media/{MediaId}", "job/{JobId}"],
        "A file is uploaded from a URL.";
    ImageUploadComplete(upload::FileUpload) in Upload,
        touches ["media/{MediaId}"],
        "An image is uploaded.";
    AttachedMediaUploadComplete(upload::FileUpload) in Upload,
        touches ["media/{MediaId}"],
        "An auxiliary media asset is uploaded.";
    RegisterStreamComplete(upload::StreamUpload) in Upload,
        touches ["media/{MediaId}"],
        "A media stream is registered.";
    StreamUploadComplete(upload::StreamUpload) in Upload,
        touches ["media/{MediaId}"],
        "A media stream is uploaded.";
    UploadStreamByURLComplete(upload::StreamUrlUpload) in Upload,
        touches ["media/{MediaId}", "job/{JobId}"],
        "A media stream is uploaded from a URL.";
    CreateAuditComplete(media::Audit) in MediaManagement,
        touches ["media/{MediaId}"],
        "A manual review is complete.";
    RegisterMediaComplete(media::Registration) in MediaManagement,
        touches ["media/{MediaId}"],
        "A media asset is registered.";
    DeleteMediaComplete(media::Deletion) in MediaManagement,
        touches ["media/{MediaId}"],
        "A media asset is deleted.";
    MediaBaseChangeComplete(media::BaseChange) in MediaManagement,
        touches ["media/{MediaId}"],
        "A media asset's basic information is updated.";
    WorkflowTaskComplete(workflow::WorkflowTask) in Workflow,
        touches ["task/{TaskId}", "media/{TaskInput.Media}"],
        "A workflow task is complete.";
    VideoAnalysisComplete(processing::Analysis) in VodProcessing,
        touches ["media/{MediaId}"],
        "Audio or video analysis is complete.";
    SnapshotComplete(processing::SnapshotJob) in VodProcessing,
        touches ["job/{JobId}"],
        "Video snapshotting is complete.";
    DynamicImageComplete(processing::DynamicImageJob) in VodProcessing,
        touches ["job/{JobId}"],
        "A dynamic image is generated.";
    TranscodeComplete(processing::Transcode) in VodProcessing,
        touches ["job/{JobId}", "job/{ParentJobId}"],
        deprecated TRANSCODE_RETIRED,
        "A transcoding subtask is complete (deprecated after 2025-12-31).";
    TranscodeParentComplete(processing::TranscodeParent) in VodProcessing,
        touches ["job/{ParentJobId}", "job/{Jobs[].JobId}"],
        deprecated TRANSCODE_RETIRED,
        "The parent transcoding task is complete (deprecated after 2025-12-31).";
    MediaConvertComplete(processing::MediaConvertJob) in VodProcessing,
        touches ["job/{JobId}"],
        "A media transcoding job is complete.";
    MediaConvertOutputGroupComplete(processing::OutputGroup) in VodProcessing,
        touches ["job/{JobId}"],
        aliases ["ApsaraVideoForMediaProcessingOutputGroupComplete"],
        "A media transcoding output group is complete.";
    MediaConvertOutputComplete(processing::Output) in VodProcessing,
        touches ["job/{JobId}", "media/{MediaId}"],
        "A media transcoding output is complete.";
    AIMediaAuditComplete(ai::AiAudit) in VideoAi,
        touches ["job/{JobId}", "media/{MediaId.media}"],
        "An AI-powered review is complete.";
    AIProduceComplete(ai::AiProduce) in VideoAi,
        touches ["job/{JobId}"],
        "An AI-powered production task is complete.";
    MediaAiAnalysisComplete(ai::AiAnalysis) in VideoAi,
        touches ["media/{MediaId}"],
        "AI analysis of a media asset is complete and the results are saved to the library.";
    ProduceMediaComplete(editing::Produce) in Editing,
        touches ["job/{JobId}", "media/{MediaId}", "job/{MasterJobId}"],
        "Media production is complete.";
    BatchProduceMediaComplete(editing::BatchProduce) in Editing,
        touches ["job/{JobId}"],
        "A batch intelligent video production task is complete.";
    SmartJobComplete(editing::SmartJob) in Editing,
        touches ["job/{JobId}"],
        "An intelligent task is complete.";
    LiveRecordFileCreated(live::RecordFile) in Live,
        touches ["live-record/{jobId}"],
        "A live recording file is generated.";
    LiveRecordTaskStatus(live::RecordTaskStatus) in Live,
        touches ["live-record/{jobId}"],
        "A live recording task's status is updated.";
    LiveSnapshotFileCreated(live::LiveSnapshot) in Live,
        touches ["live-record/{JobId}"],
        "A snapshot file is created during live streaming.";
}

impl Kind {
    /// This kind's catalogue entry.
    pub fn entry(self) -> &'static Entry {
        &CATALOGUE[self as usize]
    }

    /// The canonical `EventType`.
    pub fn name(self) -> &'static str {
        self.entry().name
    }
}

impl Serialize for Kind {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}
