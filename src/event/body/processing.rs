//! ApsaraVideo VOD media processing events (seed table 4): analysis,
//! snapshots, dynamic images, transcoding (legacy and media convert).

use crate::body;
use crate::event::types::{Id, JsonText, Num, Status, Timestamp, UserData};
use serde_json::{Map, Value};

body! {
    /// `VideoAnalysisComplete`: audio or video analysis is complete.
    pub struct Analysis {
        req media_id: Id = "MediaId",
        succ file_url: String = "FileUrl",
        opt user_data: UserData = "UserData",
        req status: Status = "Status",
        succ meta_info: MetaInfo = "MetaInfo",
    }
}

body! {
    /// The analysis result of `VideoAnalysisComplete`.
    pub struct MetaInfo {
        /// Seconds.
        req duration: Num<f64> = "Duration",
        /// Pixels; optional because audio has none.
        opt height: Num<u64> = "Height",
        /// Pixels; optional because audio has none.
        opt width: Num<u64> = "Width",
        /// Kbps.
        req bitrate: Num<f64> = "Bitrate",
        /// Bytes.
        req size: Num<u64> = "Size",
        /// Frames per second; optional because audio has none.
        opt fps: Num<f64> = "Fps",
    }
}

body! {
    /// `SnapshotComplete`: a snapshot job is complete.
    pub struct SnapshotJob {
        req job_id: Id = "JobId" | "jobId",
        /// `API`, `Workflow`, `Console` …
        req trigger_source: String = "TriggerSource",
        req name: String = "Name",
        /// `Normal`, `Sprite`, `WebVtt` …
        req snapshot_type: String = "Type",
        req input: JsonText = "Input",
        req output: JsonText = "Output",
        succ count: Num<u64> = "Count",
        req template_config: JsonText = "TemplateConfig",
        req template_id: String = "TemplateId",
        opt pipeline_id: String = "PipelineId",
        req submit_time: Timestamp = "SubmitTime",
        req finish_time: Timestamp = "FinishTime",
        opt user_data: UserData = "UserData",
        req status: Status = "Status",
        opt error_code: String = "ErrorCode",
        opt error_message: String = "ErrorMessage",
    }
}

body! {
    /// `DynamicImageComplete`: a dynamic image (GIF, WebP) job is complete.
    pub struct DynamicImageJob {
        req job_id: Id = "JobId" | "jobId",
        req trigger_source: String = "TriggerSource",
        req name: String = "Name",
        req input: JsonText = "Input",
        req output: JsonText = "Output",
        req template_config: JsonText = "TemplateConfig",
        req template_id: String = "TemplateId",
        opt pipeline_id: String = "PipelineId",
        req submit_time: Timestamp = "SubmitTime",
        req finish_time: Timestamp = "FinishTime",
        opt user_data: UserData = "UserData",
        req status: Status = "Status",
        opt error_code: String = "ErrorCode",
        opt error_message: String = "ErrorMessage",
    }
}

body! {
    /// `TranscodeComplete` (deprecated by IMS after 2025-12-31): a
    /// transcoding subtask is complete.
    pub struct Transcode {
        req parent_job_id: Id = "ParentJobId",
        req job_id: Id = "JobId" | "jobId",
        req trigger_source: String = "TriggerSource",
        /// Output file details (see GetTranscodeJob), kept as received.
        succ out_file_meta: Map<String, Value> = "OutFileMeta",
        succ output_url: String = "OutputUrl",
        req finish_time: Timestamp = "FinishTime",
        opt user_data: UserData = "UserData",
        req status: Status = "Status",
        opt error_code: String = "ErrorCode",
        opt error_message: String = "ErrorMessage",
    }
}

body! {
    /// `TranscodeParentComplete` (deprecated by IMS after 2025-12-31): the
    /// parent transcoding task is complete.
    pub struct TranscodeParent {
        req parent_job_id: Id = "ParentJobId",
        req jobs: Vec<SubJob> = "Jobs",
        req trigger_source: String = "TriggerSource",
        req name: String = "Name",
        req finish_time: Timestamp = "FinishTime",
        opt user_data: UserData = "UserData",
        req status: Status = "Status",
    }
}

body! {
    /// One subtask in `TranscodeParentComplete.Jobs`.
    pub struct SubJob {
        req status: Status = "Status",
        req job_id: Id = "JobId" | "jobId",
        succ output_url: String = "OutputUrl",
    }
}

body! {
    /// `MediaConvertComplete`: a media convert (transcode) job is complete.
    pub struct MediaConvertJob {
        req job_id: Id = "JobId" | "jobId",
        /// `Complete`, `Fail` …
        req status: Status = "Status",
        req trigger_source: String = "TriggerSource",
        /// The seed's table says required, its sample omits it: optional.
        opt user_data: UserData = "UserData",
        req finish_time: Timestamp = "FinishTime",
    }
}

body! {
    /// `MediaConvertOutputGroupComplete` (alias
    /// `ApsaraVideoForMediaProcessingOutputGroupComplete`): an output group
    /// of a media convert job is complete.
    pub struct OutputGroup {
        req trigger_source: String = "TriggerSource",
        req job_id: Id = "JobId" | "jobId",
        /// The output group ID.
        req task_id: Id = "TaskId",
        req name: String = "Name",
        req status: Status = "Status",
        opt user_data: UserData = "UserData",
    }
}

body! {
    /// `MediaConvertOutputComplete`: one output of a media convert job is
    /// complete.
    pub struct Output {
        req trigger_source: String = "TriggerSource",
        req job_id: Id = "JobId" | "jobId",
        /// The output ID.
        req task_id: Id = "TaskId",
        req name: String = "Name",
        req status: Status = "Status",
        opt user_data: UserData = "UserData",
        /// The output media asset, when the output is registered as one.
        opt media_id: Id = "MediaId",
        opt output_url: String = "OutputUrl",
        /// Output file details (`fileBasicInfo`, stream lists), as received.
        opt out_file_meta: Map<String, Value> = "OutFileMeta",
    }
}
