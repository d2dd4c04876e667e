//! Workflow events (seed table 3).

use crate::body;
use crate::event::types::{Embedded, Id, Locator, Status, Timestamp, UserData};

body! {
    /// `WorkflowTaskComplete`: a workflow task is complete.
    pub struct WorkflowTask {
        /// A JSON string: `{"Type":"Media","Media":"<MediaId>"}`.
        req task_input: Embedded<TaskInput> = "TaskInput",
        req task_id: Id = "TaskId",
        req workflow_id: Id = "WorkflowId",
        /// `Succeed`, `Fail` …
        req status: Status = "Status",
        req create_time: Timestamp = "CreateTime",
        opt user_data: UserData = "UserData",
    }
}

body! {
    /// The decoded `TaskInput` of a workflow task.
    pub struct TaskInput {
        /// `Media` (then `media` is a MediaId) or `OSS` (then a URL, which
        /// may hold `/`: not an [`Id`]).
        req input_type: String = "Type",
        req media: Locator = "Media",
    }
}

impl TaskInput {
    /// The MediaId the task ran on, when the input is a media asset and
    /// `Media` is a valid id.
    pub fn media_id(&self) -> Option<Id> {
        if !self.input_type.eq_ignore_ascii_case("Media") {
            return None;
        }
        Id::try_from(self.media.as_str().to_owned()).ok()
    }
}
