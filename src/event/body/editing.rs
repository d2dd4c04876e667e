//! Intelligent editing events (seed table 6).

use crate::body;
use crate::event::types::{Id, Status, Timestamp, UserData};

body! {
    /// `ProduceMediaComplete`: an editing (production) job is complete.
    pub struct Produce {
        req status: Status = "Status",
        /// Required on success; a failed job may have no output.
        succ media_url: String = "MediaURL",
        /// The produced media asset; required on success.
        succ media_id: Id = "MediaId",
        req project_id: String = "ProjectId",
        opt error_code: String = "ErrorCode",
        opt error_message: String = "ErrorMessage",
        req job_id: Id = "JobId" | "jobId",
        opt user_data: UserData = "UserData",
        /// The batch job this one belongs to, if any.
        opt master_job_id: Id = "MasterJobId",
    }
}

body! {
    /// `BatchProduceMediaComplete`: a batch production job is complete.
    pub struct BatchProduce {
        /// `Finished`, `Failed` …
        req status: Status = "Status",
        req job_id: Id = "JobId" | "jobId",
        opt user_data: UserData = "UserData",
    }
}

body! {
    /// `SmartJobComplete`: an intelligent task (TTS, ASR …) is complete.
    pub struct SmartJob {
        req job_type: String = "JobType",
        req status: Status = "Status",
        req job_id: Id = "JobId" | "jobId",
        opt user_data: UserData = "UserData",
        req modified_time: Timestamp = "ModifiedTime",
        req create_time: Timestamp = "CreateTime",
    }
}
