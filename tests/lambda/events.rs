//! Lambda invocation payloads as AWS sends them (Function URL and API
//! Gateway HTTP API payload format 2.0, SQS), and IMS events to put in
//! them.

use base64::Engine as _;
use serde_json::{Value, json};
use std::path::Path;
use std::time::Duration;

/// What the tests deploy the function URL as: the `CallbackURL` IMS signs.
pub const CALLBACK_URL: &str = "https://abcdefghij0123456789.lambda-url.eu-central-1.on.aws/ims";
/// The AuthKey of the signed tests.
pub const AUTH_KEY: &str = "lambda-test-auth-key-7d1f";
/// The per-event deadline of the tests.
pub const DEADLINE: Duration = Duration::from_secs(2);

/// `events/NAME.json`.
pub fn sample(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("events")
        .join(format!("{name}.json"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `events/FileUploadComplete.json` for another media id (so another
/// fingerprint and resource).
pub fn upload(media_id: &str) -> String {
    let mut event: Value = serde_json::from_str(&sample("FileUploadComplete")).unwrap();
    event["MessageBody"]["MediaId"] = json!(media_id);
    event.to_string()
}

/// `X-ICE-TIMESTAMP` and `X-ICE-SIGNATURE` for now, signed with `key`.
pub fn signature(key: &str) -> (String, String) {
    let ts = ims_callback::ingest::unix_now().to_string();
    let sig = ims_callback::ingest::auth::sign(CALLBACK_URL, &ts, key);
    (ts, sig)
}

/// A Function URL request (payload format 2.0) as Lambda delivers it;
/// `path` may carry a query string.
pub fn function_url(
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
    base64: bool,
) -> Value {
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    let host = CALLBACK_URL
        .trim_start_matches("https://")
        .split('/')
        .next()
        .unwrap();
    let mut all: serde_json::Map<String, Value> = serde_json::Map::new();
    all.insert("host".into(), json!(host));
    all.insert("user-agent".into(), json!("Go-http-client/1.1"));
    all.insert("content-type".into(), json!("application/json"));
    all.insert("x-forwarded-proto".into(), json!("https"));
    for (name, value) in headers {
        all.insert((*name).to_owned(), json!(value));
    }
    json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query,
        "headers": all,
        "requestContext": {
            "accountId": "anonymous",
            "apiId": "abcdefghij0123456789",
            "domainName": host,
            "domainPrefix": "abcdefghij0123456789",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "47.96.0.10",
                "userAgent": "Go-http-client/1.1"
            },
            "requestId": "6a0b2b7e-5f2c-4a3d-9d8e-1b2c3d4e5f60",
            "routeKey": "$default",
            "stage": "$default",
            "time": "25/Nov/2026:15:00:00 +0000",
            "timeEpoch": 1_795_618_800_000_i64
        },
        "body": body.map(|b| encode(b, base64)),
        "isBase64Encoded": base64
    })
}

/// An API Gateway HTTP API request (payload format 2.0) on `stage`.
pub fn api_gateway(
    method: &str,
    stage: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
    base64: bool,
) -> Value {
    let full = if stage == "$default" {
        path.to_owned()
    } else {
        format!("/{stage}{path}")
    };
    let headers: serde_json::Map<String, Value> = headers
        .iter()
        .map(|(n, v)| ((*n).to_owned(), json!(v)))
        .collect();
    json!({
        "version": "2.0",
        "routeKey": "ANY /{proxy+}",
        "rawPath": full,
        "rawQueryString": "",
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "a1b2c3d4e5",
            "domainName": "a1b2c3d4e5.execute-api.eu-central-1.amazonaws.com",
            "domainPrefix": "a1b2c3d4e5",
            "http": {
                "method": method,
                "path": full,
                "protocol": "HTTP/1.1",
                "sourceIp": "47.96.0.10",
                "userAgent": "Go-http-client/1.1"
            },
            "requestId": "JKJaXmPLvHcESHA=",
            "routeKey": "ANY /{proxy+}",
            "stage": stage,
            "time": "25/Nov/2026:15:00:00 +0000",
            "timeEpoch": 1_795_618_800_000_i64
        },
        "pathParameters": {"proxy": path.trim_start_matches('/')},
        "body": body.map(|b| encode(b, base64)),
        "isBase64Encoded": base64
    })
}

fn encode(body: &[u8], base64: bool) -> String {
    if base64 {
        base64::engine::general_purpose::STANDARD.encode(body)
    } else {
        String::from_utf8(body.to_vec()).expect("a plain body is UTF-8")
    }
}

/// An SQS batch: `(messageId, body)` per record.
pub fn sqs(records: &[(&str, &str)]) -> Value {
    let records: Vec<Value> = records
        .iter()
        .map(|(id, body)| {
            json!({
                "messageId": id,
                "receiptHandle": format!("AQEB{id}"),
                "body": body,
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": "1795618800000",
                    "SenderId": "AIDAIENQZJOLO23YVJ4VO",
                    "ApproximateFirstReceiveTimestamp": "1795618800001"
                },
                "messageAttributes": {},
                "md5OfBody": "e4e68fb7bd0e697a0ae8f1bb342846b3",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:eu-central-1:123456789012:ims-events",
                "awsRegion": "eu-central-1"
            })
        })
        .collect();
    json!({ "Records": records })
}

/// The JSON body of an HTTP response object.
pub fn body_of(response: &Value) -> Value {
    let body = response["body"].as_str().expect("a string body");
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

/// The ids in an SQS batch response, sorted.
pub fn failed_ids(response: &Value) -> Vec<String> {
    let mut ids: Vec<String> = response["batchItemFailures"]
        .as_array()
        .unwrap_or_else(|| panic!("not a batch response: {response}"))
        .iter()
        .map(|f| f["itemIdentifier"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}
