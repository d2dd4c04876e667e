//! Every sample event is accepted and lands in the state; every invalid
//! one is refused with its problems; size and method limits.

use crate::helpers::{events_dir, json_files, read, spawn_app, spawn_secured};
use serde_json::Value;

/// Posts every sample and checks each touched resource through the read API.
pub async fn every_sample_is_stored(app: &crate::helpers::TestApp) {
    for path in json_files(&events_dir()) {
        let response = app.post_signed("/", read(&path)).await;
        assert_eq!(response.status(), 200, "{}", path.display());
        let outcome: Value = response.json().await.unwrap();
        assert_eq!(outcome["fingerprint"].as_str().unwrap().len(), 32);
        for resource in outcome["resources"].as_array().unwrap() {
            let key = resource["key"].as_str().unwrap();
            let state: Value = app
                .get_authorized(&format!("/v1/resources/{key}"))
                .await
                .json()
                .await
                .unwrap();
            assert_eq!(state["key"], key);
            assert_eq!(state["status"], resource["status"], "{}", path.display());
        }
        let record = app
            .get_authorized(&format!(
                "/v1/events/{}",
                outcome["fingerprint"].as_str().unwrap()
            ))
            .await;
        assert_eq!(record.status(), 200);
    }
    // Known end states.
    let media: Value = app
        .get_authorized("/v1/resources/media/71151b80f2d471ecb21b472190a97c52")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(media["status"], "deleted");
    let upload: Value = app
        .get_authorized("/v1/resources/media/c321b3a0041a71eda1590674a2ce6a17")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(upload["status"], "uploaded");
    assert_eq!(upload["fields"]["size"], 5510872);
}

#[tokio::test]
async fn every_sample_event_is_stored_with_redb() {
    let app = spawn_secured(None).await;
    every_sample_is_stored(&app).await;
    // A redelivery is acknowledged again, as a duplicate.
    let again = app
        .post_signed("/", read(&events_dir().join("FileUploadComplete.json")))
        .await;
    assert_eq!(again.status(), 200);
    let outcome: Value = again.json().await.unwrap();
    assert_eq!(outcome["resources"][0]["outcome"], "duplicate");
}

#[tokio::test]
async fn every_invalid_event_is_refused_with_its_problems() {
    let app = spawn_secured(None).await;
    let dir = events_dir().join("invalid");
    for path in json_files(&dir) {
        let response = app.post_signed("/", read(&path)).await;
        assert_eq!(response.status(), 400, "{}", path.display());
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "invalid_event");
        assert!(body["stored_as"].as_str().unwrap().starts_with("rejected/"));
        let mut got: Vec<String> = body["problems"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                let path = p["path"].as_str().unwrap();
                let path = if path.is_empty() { "(document)" } else { path };
                format!("{path}: {}", p["reason"].as_str().unwrap())
            })
            .collect();
        let expect = std::fs::read_to_string(path.with_extension("expect")).unwrap();
        let mut expected: Vec<String> = expect.lines().map(str::to_owned).collect();
        got.sort();
        expected.sort();
        assert_eq!(got, expected, "{}", path.display());
    }
}

#[tokio::test]
async fn any_post_path_is_a_callback_unless_one_is_configured() {
    let app = spawn_app(None, &[]).await;
    let body = read(&events_dir().join("RegisterMediaComplete.json"));
    assert_eq!(app.post("/some/path", body.clone()).await.status(), 200);

    let app = spawn_app(None, &[("IMS_CALLBACK_PATH", "/ims")]).await;
    assert_eq!(app.post("/ims", body.clone()).await.status(), 200);
    assert_eq!(app.post("/other", body).await.status(), 404);
}

/// Sends `body` to `address` over a raw connection in pieces a few
/// milliseconds apart, so the server reads it as several chunks; as
/// `Content-Length` or, when `chunked`, with chunked transfer encoding.
/// Returns the status and the answer's JSON.
async fn post_in_pieces(address: &str, body: &[u8], chunked: bool) -> (u16, Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let authority = address.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(authority).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let framing = if chunked {
        "transfer-encoding: chunked".to_owned()
    } else {
        format!("content-length: {}", body.len())
    };
    let head = format!(
        "POST / HTTP/1.1\r\nhost: {authority}\r\ncontent-type: application/json\r\n\
         connection: close\r\n{framing}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    for piece in body.chunks(body.len().div_ceil(3)) {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        if chunked {
            let mut framed = format!("{:x}\r\n", piece.len()).into_bytes();
            framed.extend_from_slice(piece);
            framed.extend_from_slice(b"\r\n");
            stream.write_all(&framed).await.unwrap();
        } else {
            stream.write_all(piece).await.unwrap();
        }
    }
    if chunked {
        stream.write_all(b"0\r\n\r\n").await.unwrap();
    }
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    let answer = String::from_utf8(answer).unwrap();
    let status = answer[9..12].parse().unwrap();
    let (_, json) = answer.split_once("\r\n\r\n").unwrap();
    (status, serde_json::from_str(json).unwrap())
}

#[tokio::test]
async fn a_body_sent_in_pieces_is_read_whole() {
    let app = spawn_app(None, &[]).await;
    let body = read(&events_dir().join("MediaConvertOutputComplete.json"));
    let whole: Value = app.post("/", body.clone()).await.json().await.unwrap();
    assert_eq!(whole["resources"][0]["outcome"], "applied");
    for chunked in [false, true] {
        let (status, pieces) = post_in_pieces(&app.address, &body, chunked).await;
        assert_eq!(status, 200, "chunked: {chunked}: {pieces}");
        // The same bytes, so the same event: a duplicate of the first.
        assert_eq!(
            pieces["fingerprint"], whole["fingerprint"],
            "chunked: {chunked}"
        );
        assert_eq!(pieces["resources"][0]["outcome"], "duplicate");
    }
}

#[tokio::test]
async fn a_body_over_the_limit_is_413() {
    let app = spawn_app(None, &[("IMS_MAX_BODY", "4096")]).await;
    let small = read(&events_dir().join("FileUploadComplete.json"));
    assert_eq!(app.post("/", small).await.status(), 200);
    let big = vec![b' '; 4097];
    let response = app.post("/", big).await;
    assert_eq!(response.status(), 413);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "body_too_large");
}

#[tokio::test]
async fn wrong_methods_are_405() {
    let app = spawn_app(None, &[]).await;
    let get = app.client.get(app.url("/")).send().await.unwrap();
    assert_eq!(get.status(), 405);
    assert_eq!(get.headers()["allow"], "POST");
    let put = app.client.put(app.url("/healthz")).send().await.unwrap();
    assert_eq!(put.status(), 405);
    let get_invoke = app.client.get(app.url("/invoke")).send().await.unwrap();
    assert_eq!(get_invoke.status(), 405);
}

#[tokio::test]
async fn malformed_json_is_400_with_line_and_column() {
    let app = spawn_app(None, &[]).await;
    let response = app.post("/", "{\n  \"EventType\": }").await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["problems"][0]["line"], 2);
    assert_eq!(body["problems"][0]["column"], 16);
}

#[tokio::test]
async fn two_framings_are_refused_even_behind_a_clean_request_on_one_connection() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = spawn_app(None, &[]).await;
    let event = read(&events_dir().join("RegisterMediaComplete.json"));
    let chunked = [
        format!("{:x}\r\n", event.len()).into_bytes(),
        event.clone(),
        b"\r\n0\r\n\r\n".to_vec(),
    ]
    .concat();
    // A clean chunked request, then one with both framings, pipelined.
    let mut stream = [
        b"POST / HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n".to_vec(),
        chunked.clone(),
        format!(
            "POST / HTTP/1.1\r\nhost: x\r\ncontent-length: {}\r\ntransfer-encoding: chunked\r\n\r\n",
            event.len()
        )
        .into_bytes(),
        chunked,
    ]
    .concat();
    let address = app.address.trim_start_matches("http://").to_owned();
    let mut socket = tokio::net::TcpStream::connect(address).await.unwrap();
    socket.write_all(&stream).await.unwrap();
    stream.clear();
    // hyper closes the connection after the ambiguous request.
    socket.read_to_end(&mut stream).await.unwrap();
    let text = String::from_utf8_lossy(&stream);
    let statuses: Vec<&str> = text
        .match_indices("HTTP/1.1 ")
        .map(|(i, _)| &text[i + 9..i + 12])
        .collect();
    assert_eq!(statuses, ["200", "400"], "{text}");
    assert!(text.contains("\"ambiguous_framing\""), "{text}");
}
