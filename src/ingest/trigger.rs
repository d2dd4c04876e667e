//! What arrives on an FC event invocation (`POST /invoke`): a raw IMS
//! event, or what an MNS queue trigger delivers through EventBridge — a
//! CloudEvents object (`source: "acs:mns"`, `type: "mns:Queue:SendMessage"`,
//! `data: {requestId, messageId, messageBody}`) with the IMS JSON as the
//! `messageBody` string (base64 when the trigger's decoding option is off),
//! or, in batch mode, an array of them; or a timer trigger's tick
//! (`{"triggerTime", "triggerName", "payload"}`), which drains the
//! forwarding of the change feed.

use base64::Engine;
use serde_json::Value;
use std::borrow::Cow;

/// One IMS message carried by an invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message<'a> {
    /// The MNS message id, when the message came through MNS.
    pub message_id: Option<String>,
    /// The IMS event bytes.
    pub body: Cow<'a, [u8]>,
}

/// Why an invocation body is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TriggerError(pub String);

/// Splits an invocation body into the IMS messages it carries.
///
/// A body that is not an MNS envelope (or array of them) is taken as one
/// raw IMS event, which validation then judges — so nothing is dropped
/// here, and a bad raw event gets the usual problem list.
pub fn messages(body: &[u8]) -> Result<Vec<Message<'_>>, TriggerError> {
    let raw = || {
        vec![Message {
            message_id: None,
            body: Cow::Borrowed(body),
        }]
    };
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        return Ok(raw());
    };
    match value {
        Value::Array(items) if !items.is_empty() && items.iter().all(is_mns_envelope) => {
            Ok(items.into_iter().map(from_envelope).collect())
        }
        Value::Array(items) if items.iter().any(is_mns_envelope) => Err(TriggerError(
            "a batch mixes MNS messages with other values".into(),
        )),
        value if is_mns_envelope(&value) => Ok(vec![from_envelope(value)]),
        _ => Ok(raw()),
    }
}

/// A timer trigger's event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timer {
    /// The trigger's name.
    pub name: String,
    /// When it fired, as FC wrote it.
    pub time: String,
}

/// The timer event in `body`, if it is one: FC's time trigger invokes the
/// function with `{"triggerTime": "2018-02-09T05:49:00Z", "triggerName":
/// "timer-trigger", "payload": "…"}` (the trigger's message), nothing else
/// (https://www.alibabacloud.com/help/en/fc/formats-of-event-for-different-triggers).
/// No IMS event has these fields.
pub fn timer(body: &[u8]) -> Option<Timer> {
    const NAME: &[u8] = b"\"triggerName\"";
    if !body.windows(NAME.len()).any(|w| w == NAME) {
        return None;
    }
    let Value::Object(fields) = serde_json::from_slice(body).ok()? else {
        return None;
    };
    let known = ["triggerTime", "triggerName", "payload"];
    if !fields.keys().all(|k| known.contains(&k.as_str())) {
        return None;
    }
    Some(Timer {
        name: fields.get("triggerName")?.as_str()?.to_owned(),
        time: fields.get("triggerTime")?.as_str()?.to_owned(),
    })
}

fn is_mns_envelope(value: &Value) -> bool {
    let mns = value.get("source").and_then(Value::as_str) == Some("acs:mns")
        || value
            .get("type")
            .and_then(Value::as_str)
            .is_some_and(|t| t.starts_with("mns:"));
    mns && value.pointer("/data/messageBody").is_some()
}

fn from_envelope(mut value: Value) -> Message<'static> {
    let message_id = value
        .pointer("/data/messageId")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let body = match value.pointer_mut("/data/messageBody").map(Value::take) {
        Some(Value::String(s)) => decode_body(s),
        // Some senders put the JSON object itself in the message.
        Some(other) => serde_json::to_vec(&other).unwrap_or_default(),
        None => Vec::new(),
    };
    Message {
        message_id,
        body: Cow::Owned(body),
    }
}

/// The message body: JSON as is, else base64-decoded when that yields
/// JSON-looking bytes, else the text as is (validation will report it).
fn decode_body(s: String) -> Vec<u8> {
    let trimmed = s.trim_start();
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        return s.into_bytes();
    }
    match base64::engine::general_purpose::STANDARD.decode(s.trim()) {
        Ok(bytes) if bytes.trim_ascii_start().first() == Some(&b'{') => bytes,
        _ => s.into_bytes(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const EVENT: &str = r#"{"EventType":"X","UserId":1}"#;

    fn envelope(body: Value) -> Value {
        json!({"id": "1", "source": "acs:mns", "type": "mns:Queue:SendMessage",
               "data": {"requestId": "r", "messageId": "m-1", "messageBody": body}})
    }

    #[test]
    fn a_raw_event_is_one_message() {
        let got = messages(EVENT.as_bytes()).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(&*got[0].body, EVENT.as_bytes());
        assert_eq!(messages(b"not json").unwrap()[0].body.as_ref(), b"not json");
    }

    #[test]
    fn an_mns_envelope_carries_its_message_body() {
        let body = serde_json::to_vec(&envelope(json!(EVENT))).unwrap();
        let got = messages(&body).unwrap();
        assert_eq!(got[0].message_id.as_deref(), Some("m-1"));
        assert_eq!(&*got[0].body, EVENT.as_bytes());
    }

    #[test]
    fn base64_bodies_are_decoded() {
        let b64 = base64::engine::general_purpose::STANDARD.encode(EVENT);
        let body = serde_json::to_vec(&envelope(json!(b64))).unwrap();
        assert_eq!(&*messages(&body).unwrap()[0].body, EVENT.as_bytes());
    }

    #[test]
    fn timer_events_are_recognised() {
        let tick =
            br#"{"triggerTime":"2018-02-09T05:49:00Z","triggerName":"forward","payload":"drain"}"#;
        assert_eq!(
            timer(tick),
            Some(Timer {
                name: "forward".into(),
                time: "2018-02-09T05:49:00Z".into()
            })
        );
        assert_eq!(timer(EVENT.as_bytes()), None);
        // Anything more is not FC's timer event.
        let more = br#"{"triggerTime":"t","triggerName":"n","EventType":"X"}"#;
        assert_eq!(timer(more), None);
        assert_eq!(timer(br#"{"triggerName":"n"}"#), None);
    }

    #[test]
    fn batches_are_split_and_mixed_batches_refused() {
        let batch = json!([envelope(json!(EVENT)), envelope(json!({"EventType": "Y"}))]);
        let bytes = serde_json::to_vec(&batch).unwrap();
        let got = messages(&bytes).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(&*got[1].body, br#"{"EventType":"Y"}"#);
        let mixed = json!([envelope(json!(EVENT)), 5]);
        assert!(messages(&serde_json::to_vec(&mixed).unwrap()).is_err());
    }
}
