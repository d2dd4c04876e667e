//! Video AI events (seed table 5).

use crate::body;
use crate::event::field::{Ctx, FromJson};
use crate::event::types::{Id, JsonText, Status, UserData};
use crate::validate::Reason;
use serde::{Serialize, Serializer};
use serde_json::Value;

body! {
    /// `AIMediaAuditComplete`: an AI review is complete.
    pub struct AiAudit {
        req job_id: Id = "JobId" | "jobId",
        req status: Status = "Status",
        /// A JSON string `{"media":"<MediaId>","type":"Media"}`.
        req media_id: MediaRef = "MediaId",
        opt user_data: UserData = "UserData",
    }
}

body! {
    /// `AIProduceComplete`: an AI production task is complete.
    pub struct AiProduce {
        req job_id: Id = "JobId" | "jobId",
        req status: Status = "Status",
        /// `Cover`, `VideoGif`, `VideoSummary` …
        req function_name: String = "FunctionName",
        succ output_files: Vec<String> = "OutputFiles",
        /// Algorithm output (scores …), a JSON string.
        succ result: JsonText = "Result",
        /// The seed marks it required; user data is the caller's choice.
        opt user_data: UserData = "UserData",
    }
}

body! {
    /// `MediaAiAnalysisComplete`: AI analysis results of a media asset are
    /// saved to the library.
    pub struct AiAnalysis {
        /// Whether the results were stored: `Success` or `Failed`.
        req status: Status = "Status",
        /// The AI task outcome: `AnalyzeSuccess` or `AnalyzeFailed`.
        req job_status: Status = "JobStatus",
        /// Always `StandardSmartTag` today.
        req analysis_type: String = "Type",
        req media_id: Id = "MediaId",
        opt user_data: UserData = "UserData",
    }
}

/// The AI-audit `MediaId`: a JSON string naming the media
/// (`{"media":"…","type":"Media"}`), or — leniently — a plain MediaId.
#[derive(Debug, Clone, PartialEq)]
pub struct MediaRef {
    /// The referenced MediaId.
    pub media_id: Id,
    /// The `type` member (`Media`), when given.
    pub media_type: Option<String>,
    /// The value as received.
    raw: Value,
}

impl FromJson for MediaRef {
    fn from_json(value: Value, ctx: &mut Ctx) -> Option<Self> {
        let decoded = match &value {
            Value::String(s) if s.trim_start().starts_with('{') => {
                match crate::event::json::parse_embedded(s) {
                    Ok(inner) => inner,
                    Err(message) => {
                        ctx.problem(Reason::EmbeddedJson { message });
                        return None;
                    }
                }
            }
            Value::String(s) => {
                let media_id = Id::try_from(s.clone()).map_err(|r| ctx.problem(r)).ok()?;
                return Some(MediaRef {
                    media_id,
                    media_type: None,
                    raw: value,
                });
            }
            Value::Object(_) => value.clone(),
            _ => {
                ctx.problem(Reason::ExpectedString);
                return None;
            }
        };
        let reference = MediaRefJson::from_json(decoded, ctx)?;
        Some(MediaRef {
            media_id: reference.media,
            media_type: reference.media_type,
            raw: value,
        })
    }
}

body! {
    /// The decoded form of [`MediaRef`].
    pub struct MediaRefJson {
        req media: Id = "media" | "Media",
        opt media_type: String = "type" | "Type",
    }
}

impl Serialize for MediaRef {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.raw.serialize(serializer)
    }
}
