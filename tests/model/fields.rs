//! Every field of the seed's table is read into the typed body: spot
//! checks, at least one event per family, against the corpus values.

use crate::helpers::load;
use ims_callback::event::body::media::ContentEntry;
use ims_callback::event::types::JsonText;
use ims_callback::event::{Body, StatusClass};
use serde_json::json;

#[test]
fn upload_file_upload_complete() {
    let event = load("FileUploadComplete");
    assert_eq!(event.user_id.get(), 1_833_220_977_560_785);
    assert_eq!(event.event_time.as_str(), "2022-07-15T08:48:14Z");
    let Body::FileUploadComplete(b) = event.body else {
        panic!()
    };
    assert_eq!(b.media_id.as_str(), "c321b3a0041a71eda1590674a2ce6a17");
    assert_eq!(b.media_type, "video");
    assert!(b.file_url.unwrap().ends_with("/93ad7c5-182010aa3dc.mp4"));
    let size = b.size.unwrap();
    assert_eq!((size.get(), size.was_string()), (5_510_872, true));
    assert_eq!(b.app_id, "app-1000000");
    assert_eq!(b.user_data, None);
    assert_eq!(b.status.class(), StatusClass::Success);
    assert!(b.extra.is_empty());
}

#[test]
fn upload_by_url_and_double_encoded_user_data() {
    let Body::UploadByURLComplete(b) = load("UploadByURLComplete").body else {
        panic!()
    };
    assert_eq!(b.job_id.as_str(), "88aabd2461ec4ad389f439f6ff92b05e");
    assert!(b.source_url.ends_with("big_buck_bunny.mp4"));
    assert_eq!(
        (b.media_type.as_str(), b.app_id.as_str()),
        ("video", "app-1000000")
    );

    let Body::StreamUploadComplete(b) = load("StreamUploadComplete").body else {
        panic!()
    };
    let decoded = b.user_data.unwrap().decoded().cloned().unwrap();
    assert_eq!(
        decoded["MessageCallback"]["CallbackType"],
        json!("http"),
        "the inner MessageCallback string is decoded too"
    );
}

#[test]
fn media_management_base_change_and_audit() {
    let Body::MediaBaseChangeComplete(b) = load("MediaBaseChangeComplete").body else {
        panic!()
    };
    assert_eq!(b.media_id.as_str(), "3b46b391419af294e83b459f74356d1b");
    assert_eq!(
        (b.media_type.as_str(), b.operate_mode.as_str()),
        ("video", "update")
    );
    assert!(b.media_content.raw.is_some());
    let cover = b.media_content.value.change("CoverURL").unwrap();
    assert_eq!(cover.new_value, Some(json!("http://cdn.com/ee.png")));
    assert!(
        cover
            .old_value
            .as_ref()
            .unwrap()
            .as_str()
            .unwrap()
            .ends_with("-00005.jpg")
    );
    assert!(matches!(
        b.media_content.value.0[0].1,
        ContentEntry::Change(_)
    ));

    let Body::CreateAuditComplete(b) = load("CreateAuditComplete").body else {
        panic!()
    };
    assert_eq!(b.audit_status, "Normal");
    assert_eq!(
        (b.auditor.as_str(), b.reason.as_str(), b.comment.as_str()),
        ("auditor", "test", "test")
    );
    assert_eq!(b.creation_time.as_str(), "2022-06-23T13:11:33Z");
}

#[test]
fn workflow_task_input_is_decoded() {
    let Body::WorkflowTaskComplete(b) = load("WorkflowTaskComplete").body else {
        panic!()
    };
    assert_eq!(b.task_id.as_str(), "71151b80f2d471ecb21b472190a9d3e6");
    assert_eq!(b.workflow_id.as_str(), "SW-10101234");
    assert_eq!(b.status.as_str(), "Succeed");
    assert_eq!(b.status.class(), StatusClass::Success);
    assert_eq!(b.create_time.as_str(), "2022-07-08T02:19:19Z");
    assert_eq!(
        b.task_input.value.media_id().unwrap().as_str(),
        "4c3a4a30041b71edbfc96732b68f0e59"
    );
}

#[test]
fn vod_processing_analysis_snapshot_transcode_convert() {
    let Body::VideoAnalysisComplete(b) = load("VideoAnalysisComplete").body else {
        panic!()
    };
    let meta = b.meta_info.unwrap();
    assert_eq!(meta.size.get(), 77_570_208);
    assert_eq!(meta.fps.unwrap().get(), 24.0);
    assert_eq!(meta.duration.get(), 68.576667);
    assert_eq!(
        (meta.height.unwrap().get(), meta.width.unwrap().get()),
        (1440, 3120)
    );
    assert_eq!(meta.bitrate.get(), 9049.17);

    let Body::SnapshotComplete(b) = load("SnapshotComplete").body else {
        panic!()
    };
    assert_eq!(b.snapshot_type, "Sprite");
    assert_eq!(b.count.unwrap().get(), 5);
    assert_eq!(b.template_config.value().unwrap()["Width"], json!(1280));
    assert_eq!(
        b.input.value().unwrap()["ossFile"]["Bucket"],
        json!("bucket-empty")
    );
    assert!(matches!(b.output, JsonText::Encoded { .. }));
    assert_eq!(
        b.pipeline_id.as_deref(),
        Some("3a791131403478e92cc01399862d7f13")
    );
    assert_eq!(b.error_code.as_deref(), Some("ResourceNotFound"));
    assert!(b.submit_time < b.finish_time);
    assert_eq!(
        (b.trigger_source.as_str(), b.name.as_str()),
        ("API", "test job")
    );

    let Body::TranscodeParentComplete(b) = load("TranscodeParentComplete").body else {
        panic!()
    };
    assert_eq!(b.parent_job_id.as_str(), "a11f624c98e84f6b839d4ffb74b7e5a0");
    assert_eq!(b.jobs.len(), 1);
    assert_eq!(
        b.jobs[0].job_id.as_str(),
        "533d2c5eac5b4f0aaf2d09c7ee884cae"
    );
    assert_eq!(b.name, "Audio and image enhancement-0001");

    let Body::MediaConvertOutputComplete(b) = load("MediaConvertOutputComplete").body else {
        panic!()
    };
    assert_eq!(b.task_id.as_str(), "da68bc722dab477d960026e6eba153e8");
    assert_eq!(
        b.media_id.unwrap().as_str(),
        "054589a03aaa71f09951e7f6c6586302"
    );
    assert_eq!(b.name, "720P");
    assert_eq!(b.trigger_source, "IceWorkflow");
    let meta = b.out_file_meta.unwrap();
    assert_eq!(meta["fileBasicInfo"]["width"], json!("1280"));
    let user_data = b.user_data.unwrap();
    assert_eq!(user_data.decoded().unwrap()["ImsSrc"], json!("Workflow"));

    let Body::MediaConvertComplete(b) = load("MediaConvertComplete").body else {
        panic!()
    };
    assert_eq!(b.status.as_str(), "Complete");
    assert_eq!(b.status.class(), StatusClass::Success);
}

#[test]
fn video_ai_audit_produce_analysis() {
    let Body::AIMediaAuditComplete(b) = load("AIMediaAuditComplete").body else {
        panic!()
    };
    assert_eq!(
        b.media_id.media_id.as_str(),
        "02389c00031e71edbfdc90a58843a6d2"
    );
    assert_eq!(b.media_id.media_type.as_deref(), Some("Media"));
    assert_eq!(b.job_id.as_str(), "12fa59321345435e84d610d4cb1e7b93");

    let Body::AIProduceComplete(b) = load("AIProduceComplete").body else {
        panic!()
    };
    assert_eq!(b.function_name, "Cover");
    assert_eq!(b.output_files.unwrap().len(), 3);
    assert_eq!(
        b.result.unwrap().value().unwrap()[0]["Url"],
        json!("meinv-00002.jpg")
    );
    assert_eq!(b.user_data.unwrap().decoded().unwrap()["www"], json!(111));

    let Body::MediaAiAnalysisComplete(b) = load("MediaAiAnalysisComplete").body else {
        panic!()
    };
    assert_eq!(b.job_status.class(), StatusClass::Success);
    assert_eq!(b.analysis_type, "StandardSmartTag");
    assert_eq!(b.media_id.as_str(), "3b46b391419af294e83b459f74356d1b");
}

#[test]
fn editing_produce_and_smart_job() {
    let Body::ProduceMediaComplete(b) = load("ProduceMediaComplete").body else {
        panic!()
    };
    assert_eq!(
        b.media_id.unwrap().as_str(),
        "1d1cbbc46da24edd9cf11ba5d1936e0f"
    );
    assert_eq!(b.project_id, "aded28bac782446a8e5a7cf86b67c2d4");
    assert_eq!(b.job_id.as_str(), "8bc08c859569446ca5303ea903ca51e8");
    assert_eq!(
        (b.error_code.as_deref(), b.error_message.as_deref()),
        (Some(""), Some(""))
    );
    assert!(b.media_url.unwrap().ends_with(".mp4"));
    assert_eq!(b.master_job_id, None);

    let Body::ProduceMediaComplete(b) = load("ProduceMediaComplete-fail").body else {
        panic!()
    };
    assert_eq!(b.status.class(), StatusClass::Failure);

    let Body::SmartJobComplete(b) = load("SmartJobComplete").body else {
        panic!()
    };
    assert_eq!(b.job_type, "TextToSpeech");
    assert_eq!(b.status.class(), StatusClass::Success);
    assert_eq!(b.create_time.as_str(), "2024-07-28T16:36:31Z");
    assert_eq!(b.modified_time.as_str(), "2024-07-28T16:36:31Z");
}

#[test]
fn live_record_file_status_and_snapshot() {
    let Body::LiveRecordFileCreated(b) = load("LiveRecordFileCreated").body else {
        panic!()
    };
    assert_eq!(b.duration.get(), 35.09);
    assert_eq!(b.job_id.as_str(), "d6a856d4-ca81-47e8-9d66-5c1e0f7a2b94");
    assert_eq!(b.record_id.as_str(), "13a10bbb-f717-4228-9e53-db8f6a0c3e51");
    assert_eq!(
        (b.start_time.get(), b.stop_time.get()),
        (1_656_466_420, 1_656_466_456)
    );
    assert!(b.uri.ends_with(".m3u8"));

    let Body::LiveRecordTaskStatus(b) = load("LiveRecordTaskStatus").body else {
        panic!()
    };
    assert_eq!(b.event.as_str(), "record_paused");
    assert_eq!(b.event.class(), StatusClass::InProgress);
    assert_eq!(b.created.unwrap().as_str(), "2022-06-29T01:35:31.716Z");
    assert_eq!(
        b.session.as_deref(),
        Some("725d15ba-c589-3aeb-a3b6-0e4d9b7c1f28")
    );

    let Body::LiveRecordTaskStatus(b) = load("LiveRecordTaskStatus-error").body else {
        panic!()
    };
    let error = b.error_info.unwrap();
    assert_eq!(error.code, "UploadFileFailed");
    let file = b.file_info.unwrap();
    assert_eq!(file.stop_time.get() - file.start_time.get(), 36);

    let Body::LiveSnapshotFileCreated(b) = load("LiveSnapshotFileCreated").body else {
        panic!()
    };
    assert_eq!(b.job_id.as_str(), "cef3de8c-b02c-4462-ad02-7b3e91c5d406");
    assert_eq!(
        (b.width.get(), b.height.get(), b.size.get()),
        (1280, 720, 50_000)
    );
    assert!(!b.size.was_string());
    assert_eq!(
        (b.bucket.as_str(), b.object.as_str()),
        ("OssBucket", "app/snapshot.jpg")
    );
    assert_eq!(b.endpoint, "oss-cn-shanghai.aliyuncs.com");
    assert_eq!(b.stream_input_url, "rtmp://example.com/app/stream");
}

#[test]
fn lenient_spellings_job_id_and_numeric_strings() {
    let raw = json!({
        "EventType": "LiveSnapshotFileCreated",
        "UserId": "1833220977560785",
        "EventTime": "2022-08-08T09:10:02Z",
        "MessageBody": {
            "SnapshotUrl": "u", "jobId": "j-1", "StreamInputUrl": "s", "Bucket": "b",
            "Height": "720", "Width": 1280, "Endpoint": "e", "Object": "o", "Size": "50000"
        }
    });
    let event = ims_callback::event::Event::from_value(raw.clone()).unwrap();
    assert_eq!(event.user_id.get(), 1_833_220_977_560_785);
    let Body::LiveSnapshotFileCreated(b) = &event.body else {
        panic!()
    };
    assert_eq!(b.job_id.as_str(), "j-1");
    assert_eq!((b.height.get(), b.size.get()), (720, 50_000));
}
