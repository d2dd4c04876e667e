//! Hostile input against the real binary (signatures on, redb store):
//! malformed, deep, wide, huge and ambiguous JSON, bad encodings, wrong
//! Content-Type, bodies and heads over the limits, slow clients, and
//! 10,000 requests with bad signatures. Each gets a clear 4xx (or, for a
//! client too slow to send its head, a close), never a 200 or a 5xx; the
//! server stays healthy and its memory bounded (RSS before and after).

use crate::helpers::{CALLBACK_URL, QUERY_TOKEN, client};
use crate::process::ServerProcess;
use crate::raw;
use ims_callback::ingest::auth::sign;
use ims_callback::ingest::unix_now;
use reqwest::Client;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const KEY: &str = "hostile-auth-key";
const MAX_BODY: usize = 1024 * 1024;

fn signature_headers() -> (String, String) {
    let ts = unix_now().to_string();
    let signature = sign(CALLBACK_URL, &ts, KEY);
    (ts, signature)
}

fn valid_event() -> Value {
    serde_json::from_slice(include_bytes!("../../events/FileUploadComplete.json")).unwrap()
}

/// Signed POST; returns status and body.
async fn post_signed(
    client: &Client,
    url: &str,
    content_type: &str,
    body: Vec<u8>,
) -> (u16, Value) {
    let (ts, signature) = signature_headers();
    let response = client
        .post(url)
        .header("content-type", content_type)
        .header("x-ice-timestamp", ts)
        .header("x-ice-signature", signature)
        .body(body)
        .send()
        .await;
    match response {
        Ok(response) => {
            let status = response.status().as_u16();
            (status, response.json().await.unwrap_or(Value::Null))
        }
        Err(e) => (0, json!(format!("no answer: {e:?}"))),
    }
}

/// The hostile bodies: (name, content type, body, expected status).
fn bodies() -> Vec<(&'static str, &'static str, Vec<u8>, u16)> {
    let json = "application/json";
    let mut out: Vec<(&'static str, &'static str, Vec<u8>, u16)> = Vec::new();
    out.push((
        "invalid UTF-8",
        json,
        b"{\"EventType\":\"\xff\xfe\xfd\",\"UserId\":1}".to_vec(),
        400,
    ));
    out.push((
        "lone surrogate escape",
        json,
        br#"{"EventType":"\ud800"}"#.to_vec(),
        400,
    ));
    out.push((
        "10,000-deep arrays",
        json,
        format!("{}{}", "[".repeat(10_000), "]".repeat(10_000)).into_bytes(),
        400,
    ));
    out.push((
        "10,000-deep objects",
        json,
        format!("{}1{}", "{\"a\":".repeat(10_000), "}".repeat(10_000)).into_bytes(),
        400,
    ));
    let mut wide = String::from("{");
    for i in 0..100_000u32 {
        if i > 0 {
            wide.push(',');
        }
        wide.push_str(&format!("\"{i:x}\":0"));
    }
    wide.push('}');
    assert!(wide.len() < MAX_BODY);
    out.push(("100,000-key object", json, wide.into_bytes(), 400));
    let mut huge_id = valid_event();
    huge_id["MessageBody"]["MediaId"] = json!("m".repeat(MAX_BODY - 1024));
    out.push((
        "huge MediaId near the body limit",
        json,
        serde_json::to_vec(&huge_id).unwrap(),
        400,
    ));
    out.push((
        "huge top-level string",
        json,
        serde_json::to_vec(&"s".repeat(MAX_BODY - 16)).unwrap(),
        400,
    ));
    let mut unterminated = b"{\"EventType\":\"".to_vec();
    unterminated.extend(std::iter::repeat_n(b'u', MAX_BODY - 32));
    out.push(("huge unterminated string", json, unterminated, 400));
    out.push((
        "body one byte over the limit",
        json,
        vec![b' '; MAX_BODY + 1],
        413,
    ));
    for (name, number) in [
        ("Size 1e400", "1e400"),
        ("Size -1e400", "-1e400"),
        ("UserId 2^64", "18446744073709551616"),
        ("UserId -1", "-1"),
        ("UserId 1.5", "1.5"),
    ] {
        let field = if name.starts_with("Size") {
            "\"Size\": \"5510872\""
        } else {
            "\"UserId\": 1833220977560785"
        };
        let replacement = if name.starts_with("Size") {
            format!("\"Size\": {number}")
        } else {
            format!("\"UserId\": {number}")
        };
        let text =
            String::from_utf8(include_bytes!("../../events/FileUploadComplete.json").to_vec())
                .unwrap()
                .replace(field, &replacement);
        assert!(text.contains(number), "{name}");
        out.push((name, json, text.into_bytes(), 400));
    }
    out.push((
        "duplicate key",
        json,
        include_bytes!("../../events/invalid/duplicate-key.json").to_vec(),
        400,
    ));
    let mut bom = b"\xef\xbb\xbf".to_vec();
    bom.extend_from_slice(include_bytes!("../../events/FileUploadComplete.json"));
    out.push(("UTF-8 BOM", json, bom, 400));
    out.push((
        "raw NUL in a string",
        json,
        b"{\"EventType\":\"File\0UploadComplete\"}".to_vec(),
        400,
    ));
    out.push(("raw NUL outside strings", json, b"{\0}".to_vec(), 400));
    out.push(("only NUL bytes", json, vec![0u8; 4096], 400));
    out.push(("empty body", json, Vec::new(), 400));
    out.push(("not JSON, text/plain", "text/plain", b"hello".to_vec(), 400));
    out.push((
        "XML, application/xml",
        "application/xml",
        b"<EventType>FileUploadComplete</EventType>".to_vec(),
        400,
    ));
    out.push((
        "form data",
        "application/x-www-form-urlencoded",
        b"EventType=FileUploadComplete&UserId=1".to_vec(),
        400,
    ));
    out.push(("JSON array", json, b"[1,2,3]".to_vec(), 400));
    // Strict where meaning is at stake: times and ids.
    for (name, time) in [
        ("EventTime with a space for T", "2022-07-15 08:48:14Z"),
        ("EventTime with a lowercase t", "2022-07-15t08:48:14Z"),
        ("EventTime with a lowercase z", "2022-07-15T08:48:14z"),
        ("EventTime at -00:00", "2022-07-15T08:48:14-00:00"),
        ("EventTime at +08:00", "2022-07-15T16:48:14+08:00"),
    ] {
        out.push((name, json, with(&["EventTime"], json!(time)), 400));
    }
    for (name, id) in [
        ("MediaId with NUL", json!("m\u{0}1")),
        ("MediaId with CR LF", json!("m\r\nX-Injected: 1")),
        ("MediaId ../", json!("../../etc/passwd")),
        ("MediaId with /", json!("media/other")),
        ("MediaId 257 bytes", json!("m".repeat(257))),
    ] {
        out.push((name, json, with(&["MessageBody", "MediaId"], id), 400));
    }
    out
}

/// The valid event with the field at `path` set to `value`.
fn with(path: &[&str], value: Value) -> Vec<u8> {
    let mut event = valid_event();
    let mut field = &mut event;
    for name in path {
        field = &mut field[*name];
    }
    *field = value;
    serde_json::to_vec(&event).unwrap()
}

/// Events from the future: refused 400 and kept for replay.
fn future_bodies() -> Vec<(&'static str, Vec<u8>)> {
    let in_an_hour = time::OffsetDateTime::now_utc() + time::Duration::hours(1);
    let in_an_hour = in_an_hour
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    vec![
        (
            "EventTime 9999-12-31T23:59:59Z",
            with(&["EventTime"], json!("9999-12-31T23:59:59Z")),
        ),
        (
            "EventTime an hour ahead",
            with(&["EventTime"], json!(in_an_hour)),
        ),
    ]
}

/// Raw requests: (name, bytes sent at once, expected status; 0: closed
/// without a response).
fn raw_requests(port: u16) -> Vec<(&'static str, Vec<u8>, u16)> {
    let (ts, signature) = signature_headers();
    let signed = format!("x-ice-timestamp: {ts}\r\nx-ice-signature: {signature}\r\n");
    let mut out = Vec::new();
    // Chunked, no length announced: the limit is found while reading.
    let mut chunked = format!(
        "POST / HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\ncontent-type: application/json\r\n{signed}transfer-encoding: chunked\r\n\r\n"
    )
    .into_bytes();
    let piece = vec![b' '; 64 * 1024];
    for _ in 0..(MAX_BODY / piece.len() + 2) {
        chunked.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        chunked.extend_from_slice(&piece);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    out.push(("chunked body over the limit", chunked, 413));
    out.push((
        "Content-Length over the limit",
        format!("POST / HTTP/1.1\r\nhost: x\r\n{signed}content-length: 33554433\r\n\r\n{{")
            .into_bytes(),
        413,
    ));
    out.push((
        "invalid chunk size",
        format!("POST / HTTP/1.1\r\nhost: x\r\n{signed}transfer-encoding: chunked\r\n\r\nzz\r\n{{}}\r\n0\r\n\r\n").into_bytes(),
        400,
    ));
    // Both framings, around a valid signed event: refused for the framing.
    let event = bytes_of_valid_event();
    let chunked_event = [
        format!("{:x}\r\n", event.len()).into_bytes(),
        event.clone(),
        b"\r\n0\r\n\r\n".to_vec(),
    ]
    .concat();
    for (name, framing) in [
        (
            "Content-Length, then Transfer-Encoding: chunked",
            format!(
                "content-length: {}\r\ntransfer-encoding: chunked\r\n",
                event.len()
            ),
        ),
        (
            "Transfer-Encoding: chunked, then Content-Length",
            format!(
                "transfer-encoding: chunked\r\ncontent-length: {}\r\n",
                event.len()
            ),
        ),
    ] {
        let mut request =
            format!("POST / HTTP/1.1\r\nhost: x\r\n{signed}{framing}\r\n").into_bytes();
        request.extend_from_slice(&chunked_event);
        out.push((name, request, 400));
    }
    // The signature timestamp in one spelling only.
    let now = unix_now().to_string();
    for (name, ts) in [
        ("signature timestamp with a leading zero", format!("0{now}")),
        ("signature timestamp with a plus sign", format!("+{now}")),
    ] {
        let signature = sign(CALLBACK_URL, &ts, KEY);
        let mut request = format!(
            "POST / HTTP/1.1\r\nhost: x\r\nx-ice-timestamp: {ts}\r\nx-ice-signature: {signature}\r\n\
             content-length: {}\r\n\r\n",
            event.len()
        )
        .into_bytes();
        request.extend_from_slice(&event);
        out.push((name, request, 401));
    }
    // Off Function Compute the header proves nothing.
    let mut forged = format!(
        "POST /invoke HTTP/1.1\r\nhost: x\r\nx-fc-control-path: /invoke\r\ncontent-length: {}\r\n\r\n",
        event.len()
    )
    .into_bytes();
    forged.extend_from_slice(&event);
    out.push(("x-fc-control-path off Function Compute", forged, 401));
    // Ids on the read API: 400, never 500, never another key.
    for (name, id) in [
        ("read API id with %2F", "a%2Fb".to_owned()),
        ("read API id with %00", "a%00b".to_owned()),
        ("read API id of 257 bytes", "m".repeat(257)),
    ] {
        out.push((
            name,
            format!(
                "GET /v1/resources/media/{id} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {QUERY_TOKEN}\r\n\r\n"
            )
            .into_bytes(),
            400,
        ));
    }
    out.push((
        "one 20 KiB header",
        format!(
            "POST / HTTP/1.1\r\nhost: x\r\nx-big: {}\r\ncontent-length: 2\r\n\r\n{{}}",
            "b".repeat(20 * 1024)
        )
        .into_bytes(),
        431,
    ));
    out.push((
        "1 MiB of headers",
        format!(
            "POST / HTTP/1.1\r\nhost: x\r\n{}content-length: 2\r\n\r\n{{}}",
            "x-h: 0123456789012345678901234567890123456789012345678901234567\r\n".repeat(16 * 1024)
        )
        .into_bytes(),
        431,
    ));
    out.push((
        "101 small headers",
        format!(
            "POST / HTTP/1.1\r\nhost: x\r\n{}content-length: 2\r\n\r\n{{}}",
            (0..101)
                .map(|i| format!("x-h{i}: v\r\n"))
                .collect::<String>()
        )
        .into_bytes(),
        431,
    ));
    out.push((
        "20 KiB request target",
        format!(
            "POST /{} HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n\r\n{{}}",
            "p".repeat(20 * 1024)
        )
        .into_bytes(),
        431,
    ));
    out.push(("garbage request line", b"GARBAGE\r\n\r\n".to_vec(), 400));
    out.push((
        "NUL in a header value",
        "POST / HTTP/1.1\r\nhost: x\r\nx-a: a\0b\r\ncontent-length: 2\r\n\r\n{}"
            .to_string()
            .into_bytes(),
        400,
    ));
    // Not HTTP/1 at all: closed without an answer (0).
    out.push((
        "HTTP/2 preface on HTTP/1",
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec(),
        0,
    ));
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_input_gets_4xx_and_the_server_stays_healthy_and_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("redb:{}", dir.path().join("state.redb").display());
    let vars = [
        ("IMS_STORE", store.as_str()),
        ("IMS_CALLBACK_AUTH_KEYS", KEY),
        ("IMS_CALLBACK_URL", CALLBACK_URL),
        ("IMS_QUERY_TOKEN", QUERY_TOKEN),
        ("RUST_LOG", "warn"),
    ];
    let mut server = ServerProcess::start(&vars, dir.path()).await;
    let client = client();
    let url = format!("{}/", server.address);
    let port = server.port;

    // Warm up with real traffic, then measure.
    for _ in 0..20 {
        let body = include_bytes!("../../events/FileUploadComplete.json").to_vec();
        assert_eq!(
            post_signed(&client, &url, "application/json", body).await.0,
            200
        );
    }
    let rss_before = server.rss_kib();
    let started = Instant::now();

    // Slow clients, in the background while the rest runs.
    let slow = std::thread::spawn(move || slow_clients(port));

    let healthz = format!("{}/healthz", server.address);
    let healthy = |name: &'static str| {
        let (client, healthz) = (client.clone(), healthz.clone());
        async move {
            let status = client
                .get(&healthz)
                .send()
                .await
                .map(|r| r.status().as_u16());
            assert_eq!(status.ok(), Some(200), "/healthz after {name}");
        }
    };
    let mut report = Vec::new();
    for (name, content_type, body, expected) in bodies() {
        let size = body.len();
        let (status, answer) = post_signed(&client, &url, content_type, body).await;
        assert_eq!(status, expected, "{name}: {answer}");
        assert!(
            answer["message"].is_string(),
            "{name}: a clear message: {answer}"
        );
        healthy(name).await;
        report.push(format!("{name} ({size} B) {status}"));
    }
    for (name, body) in future_bodies() {
        let size = body.len();
        let (status, answer) = post_signed(&client, &url, "application/json", body).await;
        assert_eq!(status, 400, "{name}: {answer}");
        assert_eq!(
            answer["problems"][0]["path"], "/EventTime",
            "{name}: {answer}"
        );
        assert!(
            answer["stored_as"]
                .as_str()
                .is_some_and(|k| k.starts_with("rejected/")),
            "{name}: kept for replay: {answer}"
        );
        healthy(name).await;
        report.push(format!("{name} ({size} B) {status}"));
    }
    // A valid event with the wrong Content-Type is still the event: the
    // body decides, IMS's headers are not guaranteed.
    let body = include_bytes!("../../events/ImageUploadComplete.json").to_vec();
    assert_eq!(post_signed(&client, &url, "text/plain", body).await.0, 200);

    let raw_answers = tokio::task::spawn_blocking(move || {
        raw_requests(port)
            .into_iter()
            .map(|(name, bytes, expected)| {
                let size = bytes.len();
                let answer = raw::exchange(port, &bytes, Duration::from_secs(10));
                let health = raw::exchange(
                    port,
                    b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
                    Duration::from_secs(10),
                );
                assert_eq!(
                    health.status,
                    Some(200),
                    "/healthz after {name}: {health:?}"
                );
                (name, size, expected, answer)
            })
            .collect::<Vec<_>>()
    })
    .await
    .unwrap();
    for (name, size, expected, answer) in raw_answers {
        if expected == 0 {
            assert!(
                answer.closed && answer.status.is_none(),
                "{name}: {answer:?}"
            );
        } else {
            assert_eq!(answer.status, Some(expected), "{name}: {answer:?}");
        }
        if expected == 413 {
            assert!(answer.body.contains("body_too_large"), "{name}: {answer:?}");
        }
        let code = if name.contains("Transfer-Encoding") {
            Some("ambiguous_framing")
        } else if name.contains("signature timestamp") {
            Some("leading zero")
        } else if name.contains("x-fc-control-path") {
            Some("untrusted_control_path")
        } else if name.starts_with("read API id") {
            Some("resource id: ")
        } else {
            None
        };
        if let Some(code) = code {
            assert!(answer.body.contains(code), "{name}: {code}: {answer:?}");
        }
        report.push(format!("{name} ({size} B) {expected}"));
    }

    // 10,000 requests with bad signatures over keep-alive connections.
    let bad_started = Instant::now();
    let statuses = bad_signatures(&client, &url, 10_000).await;
    let bad_elapsed = bad_started.elapsed();
    assert_eq!(statuses, vec![(401, 10_000)], "bad signatures");

    let slow = slow.join().unwrap();
    let hostile_elapsed = started.elapsed();

    // Healthy, and serving valid callbacks.
    let health = client
        .get(format!("{}/healthz", server.address))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let body = include_bytes!("../../events/RegisterMediaComplete.json").to_vec();
    assert_eq!(
        post_signed(&client, &url, "application/json", body).await.0,
        200
    );
    assert!(server.is_running());
    let rss_after = server.rss_kib();
    let growth = rss_after.saturating_sub(rss_before);
    assert!(
        growth < 64 * 1024,
        "RSS grew by {growth} KiB ({rss_before} -> {rss_after})"
    );
    let peak = std::fs::read_to_string(format!("/proc/{}/status", server.pid))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:").map(|v| v.trim().to_owned()))
        .unwrap_or_default();
    println!(
        "FIGURES hostile: {} cases, each its 4xx: {}",
        report.len(),
        report.join("; ")
    );
    println!("FIGURES hostile slow clients: {slow}");
    println!(
        "FIGURES hostile: 10,000 bad signatures -> 10,000 x 401 in {bad_elapsed:.2?}; whole batch \
         {hostile_elapsed:.2?}; RSS {rss_before} KiB before, {rss_after} KiB after (growth \
         {growth} KiB), peak {peak}; /healthz 200 and a valid callback 200 afterwards"
    );
    // A clean shutdown after all that.
    assert!(server.terminate(Duration::from_secs(15)).success());
}

/// `n` POSTs with wrong signatures, 4 connections kept alive.
async fn bad_signatures(client: &Client, url: &str, n: usize) -> Vec<(u16, usize)> {
    let body = bytes_of_valid_event();
    let mut tasks = Vec::new();
    for worker in 0..4 {
        let (client, url, body) = (client.clone(), url.to_owned(), body.clone());
        tasks.push(tokio::spawn(async move {
            let mut counts = std::collections::BTreeMap::new();
            for i in (worker..n).step_by(4) {
                let ts = unix_now().to_string();
                // Wrong key, garbage, wrong length, missing: all refused.
                let signature = match i % 4 {
                    0 => sign(CALLBACK_URL, &ts, "not-the-key"),
                    1 => format!("{:032x}", i),
                    2 => "z".repeat(i % 100),
                    _ => String::new(),
                };
                let mut request = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(body.clone());
                if i % 4 != 3 {
                    request = request
                        .header("x-ice-timestamp", &ts)
                        .header("x-ice-signature", signature);
                }
                let status = request
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
                    .unwrap_or(0);
                *counts.entry(status).or_insert(0usize) += 1;
            }
            counts
        }));
    }
    let mut total = std::collections::BTreeMap::new();
    for t in tasks {
        for (status, count) in t.await.unwrap() {
            *total.entry(status).or_insert(0) += count;
        }
    }
    total.into_iter().collect()
}

fn bytes_of_valid_event() -> Vec<u8> {
    serde_json::to_vec(&valid_event()).unwrap()
}

/// Slow-header (slowloris) and slow-body clients, byte by byte.
fn slow_clients(port: u16) -> String {
    let (ts, signature) = signature_headers();
    let body = bytes_of_valid_event();
    let head = format!(
        "POST / HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n\
         x-ice-timestamp: {ts}\r\nx-ice-signature: {signature}\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    // 20 clients sending their head a byte every 100 ms: closed by the
    // header-read timeout (10 s), never served.
    let heads: Vec<_> = (0..20)
        .map(|_| {
            let head = head.clone();
            std::thread::spawn(move || {
                raw::send(
                    port,
                    b"",
                    head.as_bytes(),
                    1,
                    Duration::from_millis(100),
                    Duration::from_secs(30),
                )
            })
        })
        .collect();
    // A client that sends one request on a kept-alive connection, then
    // nothing: answered, then closed by the header-read timeout.
    let idle = std::thread::spawn(move || {
        raw::idle_after(
            port,
            b"GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n",
            Duration::from_secs(30),
        )
    });
    // A client sending its body a byte every 100 ms: 408 at the deadline
    // (2.5 s), within IMS's 3 s.
    let slow_body = raw::send(
        port,
        head.as_bytes(),
        &body,
        1,
        Duration::from_millis(100),
        Duration::from_secs(30),
    );
    assert_eq!(slow_body.status, Some(408), "{slow_body:?}");
    assert!(slow_body.elapsed < Duration::from_secs(3), "{slow_body:?}");
    // A client that sends nothing at all after connecting.
    let silent = raw::send(port, b"", b"", 1, Duration::ZERO, Duration::from_secs(30));
    assert!(silent.closed && silent.status.is_none(), "{silent:?}");
    let mut closed_after = Vec::new();
    for h in heads {
        let answer = h.join().unwrap();
        assert!(answer.closed, "{answer:?}");
        assert!(
            answer.status.is_none() || answer.status == Some(408),
            "{answer:?}"
        );
        closed_after.push(answer.elapsed);
    }
    let (answered, idle) = idle.join().unwrap();
    assert_eq!(answered.status, Some(200), "{answered:?}");
    assert!(!answered.closed, "kept alive: {answered:?}");
    assert!(idle.closed && idle.status.is_none(), "{idle:?}");
    assert!(
        idle.elapsed >= Duration::from_secs(9),
        "idle connection closed too early: {idle:?}"
    );
    let min = closed_after.iter().min().unwrap();
    let max = closed_after.iter().max().unwrap();
    assert!(*min >= Duration::from_secs(9), "closed too early: {min:?}");
    format!(
        "20 slow-header clients (1 byte / 100 ms) closed after {min:.2?}..{max:.2?} without a \
         response; slow body (1 byte / 100 ms) 408 after {:.2?}; a silent connection closed \
         after {:.2?}; an idle kept-alive connection closed {:.2?} after its answer",
        slow_body.elapsed, silent.elapsed, idle.elapsed
    )
}
