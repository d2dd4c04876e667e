//! Derive: a pure function from a validated event to the changes it makes
//! to each resource it touches. The mapping (which fields land where) is
//! documented in the README's "Resources and their state" section.
//!
//! It consumes the event: field values move into the changes instead of
//! being copied (an `OutFileMeta` is a few KiB of nested JSON).

use super::{Change, EventMeta, Fingerprint, ResourceKey, ResourceKind, Stamp};
use crate::event::body::media::ContentEntry;
use crate::event::types::{JsonText, UserData};
use crate::event::{Body, Event, Id, Status, StatusClass};
use serde_json::Value;

/// The shared facts of `event` and its changes, one per touched resource
/// (none for an unknown event type, which is only stored raw).
pub fn derive(event: Event, fingerprint: &Fingerprint) -> (EventMeta, Vec<Change>) {
    let nanos = event.event_time.unix_nanos();
    let mut out = Changes::default();
    let status = derive_changes(event.body, &mut out);
    let meta = EventMeta {
        stamp: Stamp {
            nanos: i64::try_from(nanos).unwrap_or(if nanos < 0 { i64::MIN } else { i64::MAX }),
            fingerprint: fingerprint.as_str().into(),
        },
        at: event.event_time.into_string(),
        event_type: event.event_type,
        status,
    };
    (meta, out.0)
}

/// The changes of one event, merged per resource.
#[derive(Default)]
struct Changes(Vec<Change>);

impl Changes {
    fn to(&mut self, kind: ResourceKind, id: &Id) -> &mut Change {
        let key = ResourceKey::new(kind, id.as_str());
        match self.0.iter().position(|c| c.key == key) {
            Some(i) => &mut self.0[i],
            None => {
                self.0.push(Change::new(key));
                self.0.last_mut().expect("just pushed")
            }
        }
    }

    fn media(&mut self, id: &Id) -> &mut Change {
        self.to(ResourceKind::Media, id)
    }

    fn job(&mut self, id: &Id, job_type: &'static str) -> &mut Change {
        let change = self.to(ResourceKind::Job, id);
        change.set("type", job_type);
        change
    }
}

/// The summary value of a job/task status: its class where certain,
/// otherwise the raw value.
fn summary(status: &Status) -> &str {
    match status.class() {
        StatusClass::Success => "success",
        StatusClass::Failure => "failure",
        StatusClass::InProgress => "in_progress",
        StatusClass::Other => status.as_str(),
    }
}

/// A media lifecycle status: `ok` on success, `failed` on failure, the raw
/// value otherwise.
fn lifecycle<'a>(status: &'a Status, ok: &'a str, failed: &'a str) -> &'a str {
    match status.class() {
        StatusClass::Success => ok,
        StatusClass::Failure => failed,
        _ => status.as_str(),
    }
}

impl Change {
    fn status(&mut self, status: &Status) -> &mut Self {
        self.set("status", summary(status))
            .set("status_raw", status.as_str())
    }

    fn user_data(&mut self, user_data: Option<UserData>) -> &mut Self {
        self.set_opt("user_data", user_data.map(UserData::into_value))
    }

    fn errors(&mut self, code: Option<String>, message: Option<String>) -> &mut Self {
        // IMS sends "" for "no error" on successes.
        let non_empty = |s: Option<String>| s.filter(|s| !s.is_empty());
        self.set_opt("error_code", non_empty(code))
            .set_opt("error_message", non_empty(message))
    }
}

/// Fills `out`; returns the event's primary status value.
fn derive_changes(body: Body, out: &mut Changes) -> Option<String> {
    use Body::*;
    let registered = matches!(body, RegisterStreamComplete(_));
    let status = match body {
        FileUploadComplete(b) | ImageUploadComplete(b) | AttachedMediaUploadComplete(b) => {
            out.media(&b.media_id)
                .set("status", lifecycle(&b.status, "uploaded", "upload_failed"))
                .set("media_type", b.media_type)
                .set_opt("file_url", b.file_url)
                .set_opt("size", b.size.map(|s| s.get()))
                .set("app_id", b.app_id)
                .set("upload/status", b.status.as_str())
                .user_data(b.user_data);
            b.status
        }
        UploadByURLComplete(b) => {
            out.media(&b.media_id)
                .set("status", lifecycle(&b.status, "uploaded", "upload_failed"))
                .set("media_type", b.media_type)
                .set("source_url", b.source_url.as_str())
                .set("app_id", b.app_id)
                .set("upload/status", b.status.as_str())
                .set("upload/job_id", b.job_id.as_str())
                .user_data(b.user_data);
            out.job(&b.job_id, "upload_by_url")
                .status(&b.status)
                .set("media_id", b.media_id)
                .set("source_url", b.source_url);
            b.status
        }
        RegisterStreamComplete(b) | StreamUploadComplete(b) => {
            let (ok, failed) = if registered {
                ("registered", "registration_failed")
            } else {
                ("uploaded", "upload_failed")
            };
            out.media(&b.media_id)
                .set("status", lifecycle(&b.status, ok, failed))
                .set_opt("stream/file_url", b.file_url)
                .set("stream/status", b.status.as_str())
                .user_data(b.user_data);
            b.status
        }
        UploadStreamByURLComplete(b) => {
            out.media(&b.media_id)
                .set("status", lifecycle(&b.status, "uploaded", "upload_failed"))
                .set("stream/source_url", b.source_url.as_str())
                .set("stream/status", b.status.as_str())
                .set("stream/job_id", b.job_id.as_str())
                .user_data(b.user_data);
            out.job(&b.job_id, "upload_stream_by_url")
                .status(&b.status)
                .set("media_id", b.media_id)
                .set("source_url", b.source_url);
            b.status
        }
        CreateAuditComplete(b) => {
            out.media(&b.media_id)
                .set("audit/result", b.audit_status)
                .set("audit/status", b.status.as_str())
                .set("audit/auditor", b.auditor)
                .set("audit/reason", b.reason)
                .set("audit/comment", b.comment)
                .set("audit/creation_time", b.creation_time);
            b.status
        }
        RegisterMediaComplete(b) => {
            out.media(&b.media_id)
                .set(
                    "status",
                    lifecycle(&b.status, "registered", "registration_failed"),
                )
                .set("registration/status", b.status.as_str())
                .errors(b.error_code, b.error_message)
                .user_data(b.user_data);
            b.status
        }
        DeleteMediaComplete(b) => {
            let change = out.media(&b.media_id);
            // Only a successful deletion of the whole asset is terminal;
            // deleting some files (`DeleteType` other than `all`) is not.
            change.delete = b.status.is_success() && b.delete_type.eq_ignore_ascii_case("all");
            change
                .set("deletion/status", b.status.as_str())
                .set("deletion/type", b.delete_type)
                .set_opt("deletion/file_urls", b.file_urls)
                .errors(b.error_code, b.error_message);
            b.status
        }
        MediaBaseChangeComplete(b) => {
            let change = out.media(&b.media_id);
            change
                .set("media_type", b.media_type)
                .set("info/operate_mode", b.operate_mode)
                .set("info/status", b.status.as_str());
            if b.status.class() != StatusClass::Failure {
                for (name, entry) in b.media_content.value.0 {
                    let value = match entry {
                        ContentEntry::Change(c) => c.value.new_value,
                        ContentEntry::Raw(v) => Some(v),
                    };
                    change.set_opt(format!("info/{name}"), value);
                }
            }
            b.status
        }
        WorkflowTaskComplete(b) => {
            let input = b.task_input.value;
            out.to(ResourceKind::Task, &b.task_id)
                .status(&b.status)
                .set("workflow_id", b.workflow_id)
                .set("input/type", input.input_type.as_str())
                .set("input/media", input.media.as_str())
                .set("create_time", b.create_time)
                .user_data(b.user_data);
            if let Some(media_id) = input.media_id() {
                out.media(&media_id)
                    .set(format!("workflow_tasks/{}", b.task_id), summary(&b.status));
            }
            b.status
        }
        VideoAnalysisComplete(b) => {
            let change = out.media(&b.media_id);
            change
                .set("analysis/status", b.status.as_str())
                .set_opt("file_url", b.file_url)
                .user_data(b.user_data);
            if let Some(meta) = b.meta_info {
                change
                    .set("meta/duration", meta.duration.get())
                    .set("meta/bitrate", meta.bitrate.get())
                    .set("meta/size", meta.size.get())
                    .set_opt("meta/width", meta.width.map(|n| n.get()))
                    .set_opt("meta/height", meta.height.map(|n| n.get()))
                    .set_opt("meta/fps", meta.fps.map(|n| n.get()));
            }
            b.status
        }
        SnapshotComplete(b) => {
            out.job(&b.job_id, "snapshot")
                .status(&b.status)
                .set("name", b.name)
                .set("snapshot_type", b.snapshot_type)
                .set_opt("count", b.count.map(|n| n.get()))
                .set("input", b.input.into_value())
                .set("output", b.output.into_value())
                .set("template_id", b.template_id)
                .set_opt("pipeline_id", b.pipeline_id)
                .set("trigger_source", b.trigger_source)
                .set("submit_time", b.submit_time)
                .set("finish_time", b.finish_time)
                .errors(b.error_code, b.error_message)
                .user_data(b.user_data);
            b.status
        }
        DynamicImageComplete(b) => {
            out.job(&b.job_id, "dynamic_image")
                .status(&b.status)
                .set("name", b.name)
                .set("input", b.input.into_value())
                .set("output", b.output.into_value())
                .set("template_id", b.template_id)
                .set_opt("pipeline_id", b.pipeline_id)
                .set("trigger_source", b.trigger_source)
                .set("submit_time", b.submit_time)
                .set("finish_time", b.finish_time)
                .errors(b.error_code, b.error_message)
                .user_data(b.user_data);
            b.status
        }
        TranscodeComplete(b) => {
            out.job(&b.job_id, "transcode")
                .status(&b.status)
                .set("parent_job_id", b.parent_job_id.as_str())
                .set_opt("output_url", b.output_url)
                .set_opt("out_file_meta", b.out_file_meta.map(Value::Object))
                .set("trigger_source", b.trigger_source)
                .set("finish_time", b.finish_time)
                .errors(b.error_code, b.error_message)
                .user_data(b.user_data);
            out.job(&b.parent_job_id, "transcode_parent")
                .set(format!("subjobs/{}", b.job_id), summary(&b.status));
            b.status
        }
        TranscodeParentComplete(b) => {
            let parent = out.job(&b.parent_job_id, "transcode_parent");
            parent
                .status(&b.status)
                .set("name", b.name)
                .set("trigger_source", b.trigger_source)
                .set("finish_time", b.finish_time)
                .user_data(b.user_data);
            for sub in &b.jobs {
                parent.set(format!("subjobs/{}", sub.job_id), summary(&sub.status));
            }
            for sub in b.jobs {
                out.job(&sub.job_id, "transcode")
                    .status(&sub.status)
                    .set("parent_job_id", b.parent_job_id.as_str())
                    .set_opt("output_url", sub.output_url);
            }
            b.status
        }
        MediaConvertComplete(b) => {
            out.job(&b.job_id, "media_convert")
                .status(&b.status)
                .set("trigger_source", b.trigger_source)
                .set("finish_time", b.finish_time)
                .user_data(b.user_data);
            b.status
        }
        MediaConvertOutputGroupComplete(b) => {
            let group = format!("output_groups/{}", b.task_id);
            out.job(&b.job_id, "media_convert")
                .set(format!("{group}/status"), summary(&b.status))
                .set(format!("{group}/name"), b.name);
            b.status
        }
        MediaConvertOutputComplete(b) => {
            let output = format!("outputs/{}", b.task_id);
            out.job(&b.job_id, "media_convert")
                .set(format!("{output}/status"), summary(&b.status))
                .set(format!("{output}/name"), b.name.as_str())
                .set_opt(format!("{output}/output_url"), b.output_url.as_deref())
                .set_opt(
                    format!("{output}/media_id"),
                    b.media_id.as_ref().map(Id::as_str),
                );
            if let Some(media_id) = &b.media_id {
                out.media(media_id)
                    .set(
                        "status",
                        lifecycle(&b.status, "transcoded", "transcode_failed"),
                    )
                    .set_opt("file_url", b.output_url)
                    .set("source/job_id", b.job_id)
                    .set("source/output", b.name)
                    .set_opt("out_file_meta", b.out_file_meta.map(Value::Object));
            }
            b.status
        }
        AIMediaAuditComplete(b) => {
            let media_id = b.media_id.media_id;
            out.job(&b.job_id, "ai_audit")
                .status(&b.status)
                .set("media_id", media_id.as_str())
                .user_data(b.user_data);
            out.media(&media_id)
                .set("ai_audit/status", summary(&b.status))
                .set("ai_audit/job_id", b.job_id);
            b.status
        }
        AIProduceComplete(b) => {
            out.job(&b.job_id, "ai_produce")
                .status(&b.status)
                .set("function_name", b.function_name)
                .set_opt("output_files", b.output_files)
                .set_opt("result", b.result.map(JsonText::into_value))
                .user_data(b.user_data);
            b.status
        }
        MediaAiAnalysisComplete(b) => {
            let analysis = format!("ai_analysis/{}", b.analysis_type);
            out.media(&b.media_id)
                .set(format!("{analysis}/status"), summary(&b.job_status))
                .set(format!("{analysis}/stored"), b.status.as_str());
            b.job_status
        }
        ProduceMediaComplete(b) => {
            let media_url = b.media_url.filter(|u| !u.is_empty());
            out.job(&b.job_id, "produce")
                .status(&b.status)
                .set_opt("media_id", b.media_id.as_ref().map(Id::as_str))
                .set_opt("media_url", media_url.as_deref())
                .set("project_id", b.project_id.as_str())
                .set_opt("master_job_id", b.master_job_id.as_ref().map(Id::as_str))
                .errors(b.error_code, b.error_message)
                .user_data(b.user_data);
            if let Some(media_id) = &b.media_id {
                out.media(media_id)
                    .set(
                        "status",
                        lifecycle(&b.status, "produced", "production_failed"),
                    )
                    .set_opt("file_url", media_url)
                    .set("source/job_id", b.job_id.as_str())
                    .set("source/project_id", b.project_id);
            }
            if let Some(master) = &b.master_job_id {
                out.job(master, "batch_produce")
                    .set(format!("subjobs/{}", b.job_id), summary(&b.status));
            }
            b.status
        }
        BatchProduceMediaComplete(b) => {
            out.job(&b.job_id, "batch_produce")
                .status(&b.status)
                .user_data(b.user_data);
            b.status
        }
        SmartJobComplete(b) => {
            out.job(&b.job_id, "smart_job")
                .status(&b.status)
                .set("job_type", b.job_type)
                .set("create_time", b.create_time)
                .set("modified_time", b.modified_time)
                .user_data(b.user_data);
            b.status
        }
        LiveRecordFileCreated(b) => {
            let file = format!("files/{}", b.record_id);
            out.to(ResourceKind::LiveRecord, &b.job_id)
                .set(format!("{file}/uri"), b.uri)
                .set(format!("{file}/duration"), b.duration.get())
                .set(format!("{file}/start_time"), b.start_time.get())
                .set(format!("{file}/stop_time"), b.stop_time.get());
            return None;
        }
        LiveRecordTaskStatus(b) => {
            let change = out.to(ResourceKind::LiveRecord, &b.job_id);
            // Live statuses are already precise (`record_paused`): keep them.
            change
                .set("status", b.event.as_str())
                .set(
                    "status_class",
                    serde_json::to_value(b.event.class()).unwrap_or(Value::Null),
                )
                .set_opt("session", b.session)
                .set_opt("created", b.created);
            if let Some(e) = b.error_info {
                change
                    .set("error_code", e.code)
                    .set("error_message", e.message);
            }
            if let Some(f) = b.file_info {
                change
                    .set("last_file/uri", f.uri)
                    .set("last_file/start_time", f.start_time.get())
                    .set("last_file/stop_time", f.stop_time.get());
            }
            b.event
        }
        LiveSnapshotFileCreated(b) => {
            out.to(ResourceKind::LiveRecord, &b.job_id)
                .set("stream_input_url", b.stream_input_url)
                .set("snapshot/url", b.snapshot_url)
                .set("snapshot/bucket", b.bucket)
                .set("snapshot/endpoint", b.endpoint)
                .set("snapshot/object", b.object)
                .set("snapshot/width", b.width.get())
                .set("snapshot/height", b.height.get())
                .set("snapshot/size", b.size.get());
            return None;
        }
        Unknown(_) => return None,
    };
    Some(status.into_string())
}
