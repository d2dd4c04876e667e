//! Media asset management events (seed table 2).

use crate::body;
use crate::event::field::{Ctx, FromJson, expect_object};
use crate::event::types::{Embedded, Id, Status, Timestamp, UserData};
use serde::{Serialize, Serializer, ser::SerializeMap};
use serde_json::Value;

body! {
    /// `CreateAuditComplete`: a manual review is complete.
    pub struct Audit {
        req media_id: Id = "MediaId",
        /// The review verdict (`Normal`, `Blocked` …), kept verbatim.
        req audit_status: String = "AuditStatus",
        req auditor: String = "Auditor",
        req reason: String = "Reason",
        req comment: String = "Comment",
        req creation_time: Timestamp = "CreationTime",
        opt user_data: UserData = "UserData",
        req status: Status = "Status",
    }
}

body! {
    /// `RegisterMediaComplete`: a registered media asset has been analysed.
    pub struct Registration {
        req media_id: Id = "MediaId",
        req status: Status = "Status",
        opt user_data: UserData = "UserData",
        opt error_code: String = "ErrorCode",
        opt error_message: String = "ErrorMessage",
    }
}

body! {
    /// `DeleteMediaComplete`: a media asset (or some of its files) is deleted.
    pub struct Deletion {
        req media_id: Id = "MediaId",
        req status: Status = "Status",
        /// What was deleted (`all`, `mezzanine`, `transcode` …).
        req delete_type: String = "DeleteType",
        /// Present only when specific files were deleted.
        opt file_urls: String = "FileURLs",
        opt user_data: UserData = "UserData",
        opt error_code: String = "ErrorCode",
        opt error_message: String = "ErrorMessage",
    }
}

body! {
    /// `MediaBaseChangeComplete`: a media asset's basic information changed.
    pub struct BaseChange {
        req status: Status = "Status",
        req media_type: String = "MediaType",
        req media_id: Id = "MediaId",
        /// `update`, `delete` …
        req operate_mode: String = "OperateMode",
        /// The changed fields, a JSON string of `{Field: "{OldValue,NewValue}"}`.
        req media_content: Embedded<MediaContent> = "MediaContent",
        opt user_data: UserData = "UserData",
    }
}

body! {
    /// One changed field of `MediaContent`: `{"OldValue":…,"NewValue":…}`.
    pub struct ValueChange {
        opt old_value: Value = "OldValue",
        opt new_value: Value = "NewValue",
    }
}

/// One entry of `MediaContent`.
#[derive(Debug, Clone, PartialEq)]
pub enum ContentEntry {
    /// The documented form: a change, usually itself a JSON string.
    Change(Embedded<ValueChange>),
    /// Any other value, kept verbatim rather than guessed at.
    Raw(Value),
}

/// `MediaContent`: the changed fields (`Title`, `Description`, `CoverURL`,
/// `CateId`, `Tags` …) in the order received.
#[derive(Debug, Clone, PartialEq)]
pub struct MediaContent(pub Vec<(String, ContentEntry)>);

impl MediaContent {
    /// The change to `field`, if it is in the documented form.
    pub fn change(&self, field: &str) -> Option<&ValueChange> {
        self.0.iter().find_map(|(name, entry)| match entry {
            ContentEntry::Change(change) if name == field => Some(&change.value),
            _ => None,
        })
    }
}

impl FromJson for MediaContent {
    fn from_json(value: Value, ctx: &mut Ctx) -> Option<Self> {
        let map = expect_object(value, ctx)?;
        let mut entries = Vec::with_capacity(map.len());
        let mut ok = true;
        for (name, value) in map {
            let looks_like_change = match &value {
                Value::String(s) => s.trim_start().starts_with('{'),
                Value::Object(_) => true,
                _ => false,
            };
            let entry = if looks_like_change {
                // A malformed change is reported, not guessed at.
                match ctx.at(&name, |ctx| Embedded::<ValueChange>::from_json(value, ctx)) {
                    Some(change) => ContentEntry::Change(change),
                    None => {
                        ok = false;
                        continue;
                    }
                }
            } else {
                ContentEntry::Raw(value)
            };
            entries.push((name, entry));
        }
        ok.then_some(MediaContent(entries))
    }
}

impl Serialize for MediaContent {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (name, entry) in &self.0 {
            match entry {
                ContentEntry::Change(change) => map.serialize_entry(name, change)?,
                ContentEntry::Raw(value) => map.serialize_entry(name, value)?,
            }
        }
        map.end()
    }
}
