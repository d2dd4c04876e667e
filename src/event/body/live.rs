//! Real-time media processing (live) events (seed table 7). These use
//! IMS's lower/snake-case field names (`jobId`, `record_id`).

use crate::body;
use crate::event::types::{Id, Num, Status, Timestamp};

body! {
    /// `LiveRecordFileCreated`: a live recording file is generated.
    pub struct RecordFile {
        /// Seconds.
        req duration: Num<f64> = "duration",
        req job_id: Id = "jobId" | "JobId",
        req record_id: Id = "record_id",
        /// Unix seconds.
        req start_time: Num<i64> = "start_time",
        /// Unix seconds.
        req stop_time: Num<i64> = "stop_time",
        /// The file's path in OSS.
        req uri: String = "uri",
    }
}

body! {
    /// `LiveRecordTaskStatus`: a live recording task's status changed.
    pub struct RecordTaskStatus {
        /// `record_started`, `record_paused`, `record_resumed` …
        req event: Status = "event",
        req job_id: Id = "jobId" | "JobId",
        opt session: String = "session",
        opt created: Timestamp = "created",
        opt error_info: ErrorInfo = "error_info",
        opt file_info: FileInfo = "file_info",
    }
}

body! {
    /// `error_info` of a live recording status event.
    pub struct ErrorInfo {
        req code: String = "code",
        req message: String = "message",
    }
}

body! {
    /// `file_info` of a live recording status event.
    pub struct FileInfo {
        req uri: String = "uri",
        /// Unix seconds.
        req start_time: Num<i64> = "start_time",
        /// Unix seconds.
        req stop_time: Num<i64> = "stop_time",
    }
}

body! {
    /// `LiveSnapshotFileCreated`: a snapshot is taken during a live stream.
    pub struct LiveSnapshot {
        req snapshot_url: String = "SnapshotUrl",
        /// The table spells it `jobId`, the sample `JobId`: both accepted.
        req job_id: Id = "JobId" | "jobId",
        req stream_input_url: String = "StreamInputUrl",
        req bucket: String = "Bucket",
        req height: Num<u64> = "Height",
        req width: Num<u64> = "Width",
        req endpoint: String = "Endpoint",
        req object: String = "Object",
        /// Bytes.
        req size: Num<u64> = "Size",
    }
}
