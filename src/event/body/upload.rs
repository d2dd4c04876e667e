//! Media asset upload events (seed table 1).

use crate::body;
use crate::event::types::{Id, Num, Status, UserData};

body! {
    /// `FileUploadComplete`, `ImageUploadComplete`, `AttachedMediaUploadComplete`:
    /// a file (audio/video, image, auxiliary) is uploaded.
    pub struct FileUpload {
        req media_id: Id = "MediaId",
        /// `video`, `audio`, `image`, `text` …
        req media_type: String = "MediaType",
        /// Required on success; a failed upload has no file.
        succ file_url: String = "FileUrl",
        /// Bytes; IMS sends it as a string.
        succ size: Num<u64> = "Size",
        req app_id: String = "AppId",
        opt user_data: UserData = "UserData",
        req status: Status = "Status",
    }
}

body! {
    /// `UploadByURLComplete`: a file is uploaded from a URL.
    pub struct UrlUpload {
        req media_id: Id = "MediaId",
        req media_type: String = "MediaType",
        req source_url: String = "SourceURL",
        req job_id: Id = "JobId" | "jobId",
        req app_id: String = "AppId",
        opt user_data: UserData = "UserData",
        req status: Status = "Status",
    }
}

body! {
    /// `RegisterStreamComplete`, `StreamUploadComplete`: a media stream is
    /// registered or uploaded.
    pub struct StreamUpload {
        req media_id: Id = "MediaId",
        succ file_url: String = "FileUrl",
        opt user_data: UserData = "UserData",
        req status: Status = "Status",
    }
}

body! {
    /// `UploadStreamByURLComplete`: a media stream is uploaded from a URL.
    pub struct StreamUrlUpload {
        req media_id: Id = "MediaId",
        req source_url: String = "SourceURL",
        req job_id: Id = "JobId" | "jobId",
        opt user_data: UserData = "UserData",
        req status: Status = "Status",
    }
}
