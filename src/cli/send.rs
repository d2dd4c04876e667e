//! `ims-callback send --url URL FILE|DIR|-…`: deliver events to an endpoint
//! the way IMS does, to test a deployment before pointing IMS at it.
//!
//! HTTP mode is IMS's HTTP callback: each event POSTed to the URL, signed
//! with `X-ICE-TIMESTAMP` / `X-ICE-SIGNATURE` when `--key` is given, 3 s
//! per attempt, two retries 1 s apart, delivered only on 200 (IMS's
//! callback rules, as in DESIGN.md). `--mns` is what an MNS queue trigger
//! does instead: the event wrapped in the queue's CloudEvents envelope,
//! POSTed to `/invoke` with the headers of an FC event invocation, failed
//! when the answer carries `x-fc-status: 404` or is not 2xx (FC's
//! custom-runtime contract, see PLATFORM-FC3.md), and redelivered with the
//! same message id. A connection that cannot be made is not retried: a
//! dead URL fails at once.

use super::{EXIT_IO, input};
use base64::Engine;
use clap::builder::TypedValueParser;
use futures_util::StreamExt;
use hyper::Uri;
use hyper::body::Bytes;
use hyper::header::{CONTENT_TYPE, HeaderName, HeaderValue, USER_AGENT};
use ims_callback::http_client::{HttpClient, HttpError, Response};
use ims_callback::ingest::auth::{SIGNATURE_HEADER, TIMESTAMP_HEADER, sign};
use ims_callback::ingest::unix_now;
use serde_json::{Value, json};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// How long IMS waits for an answer.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(3);
/// IMS retries twice.
const ATTEMPTS: u32 = 3;
/// IMS waits 1 s between attempts.
const RETRY_PAUSE: Duration = Duration::from_secs(1);

/// Arguments of `send`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where to send: the CallbackURL. With `--mns`, the function's address;
    /// events go to its `/invoke` path (reachable only without FC in front,
    /// which refuses client `x-fc-` headers).
    #[arg(long, value_parser = parse_url)]
    url: String,
    /// The CallbackURL to sign over, exactly as configured in IMS
    /// (default: `--url`), when the two differ (a proxy, a port forward).
    #[arg(long, requires = "key")]
    sign_url: Option<String>,
    /// The AuthKey; without it, callbacks go unsigned (AuthSwitch off).
    #[arg(long, hide_env_values = true)]
    key: Option<String>,
    /// Deliver as an MNS queue trigger would (FC event invocations to
    /// `/invoke`) instead of as HTTP callbacks; nothing is signed.
    #[arg(long, conflicts_with_all = ["key", "sign_url"])]
    mns: bool,
    /// Send in a random order (seeded; the seed is printed).
    #[arg(long)]
    shuffle: bool,
    /// The seed for `--shuffle`, to repeat an order.
    #[arg(long, requires = "shuffle")]
    seed: Option<u64>,
    /// Send every event N more times (IMS's repeats); without `--shuffle`
    /// as N more passes over the inputs.
    #[arg(long, value_name = "N", default_value_t = 0)]
    duplicates: u32,
    /// Events in flight at once; 1 keeps the order.
    #[arg(long, value_name = "C", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..=10_000).map(|c| c as usize))]
    concurrency: usize,
    /// At most R events started per second (default: no limit).
    #[arg(long, value_name = "R", value_parser = parse_rate)]
    rate: Option<f64>,
    /// Event files, directories of `*.json` files, or `-` for stdin.
    #[arg(required = true, value_name = "FILE|DIR|-")]
    inputs: Vec<PathBuf>,
}

/// Checks `--url` but keeps its text: the signature is over the URL
/// exactly as written (`https://h` and `https://h/` sign differently).
fn parse_url(text: &str) -> Result<String, String> {
    let uri: Uri = text.parse().map_err(|e| format!("not a URL: {e}"))?;
    match (uri.scheme_str(), uri.authority()) {
        (Some("http" | "https"), Some(_)) => Ok(text.to_owned()),
        _ => Err("expected an absolute http:// or https:// URL".into()),
    }
}

fn parse_rate(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(rate) if rate.is_finite() && rate > 0.0 => Ok(rate),
        _ => Err("expected a positive number of events per second".into()),
    }
}

/// One delivery to make: an event (by index into the inputs) and a message
/// id unique to this copy, kept across its redeliveries.
struct Job {
    event: usize,
    message_id: String,
}

/// How one delivery ended.
struct Outcome {
    event: usize,
    /// `Err(reason)` when it was not delivered.
    result: Result<(), String>,
    /// Attempts after the first.
    retries: u32,
    /// Latency of each attempt that got an answer.
    latencies: Vec<Duration>,
}

pub fn run(args: Args) -> ExitCode {
    let mut events = Vec::new();
    let mut unreadable = false;
    for input in input::read_all(&args.inputs) {
        match input {
            Ok(input) => events.push(input),
            Err(message) => {
                eprintln!("error: {message}");
                unreadable = true;
            }
        }
    }
    if unreadable {
        return ExitCode::from(EXIT_IO);
    }
    if events.is_empty() {
        eprintln!("error: no events to send (a directory gives its *.json files)");
        return ExitCode::from(EXIT_IO);
    }
    let seed = args
        .shuffle
        .then(|| args.seed.unwrap_or_else(|| fastrand::u64(..)));
    let order = plan(events.len(), args.duplicates, seed);
    if let Some(seed) = seed {
        eprintln!("send: shuffled with --seed {seed}");
    }
    let run_id = format!("{:X}", unix_nanos());
    let jobs: Vec<Job> = order
        .into_iter()
        .enumerate()
        .map(|(n, event)| Job {
            event,
            message_id: format!("{run_id}-{n}"),
        })
        .collect();
    let sender = Sender::new(&args);
    super::store_args::runtime().block_on(async {
        let total = jobs.len();
        let started = Instant::now();
        let rate = args.rate;
        let bodies: Vec<Bytes> = events
            .iter()
            .map(|e| Bytes::copy_from_slice(&e.bytes))
            .collect();
        let mut deliveries = futures_util::stream::iter(jobs.into_iter().enumerate())
            .map(|(n, job)| {
                let (sender, body) = (&sender, bodies[job.event].clone());
                async move {
                    if let Some(rate) = rate {
                        tokio::time::sleep_until((started + slot(n, rate)).into()).await;
                    }
                    sender.deliver(job, body).await
                }
            })
            .buffer_unordered(args.concurrency);
        let mut summary = Summary::default();
        let progress = std::io::stderr().is_terminal();
        while let Some(outcome) = deliveries.next().await {
            summary.add(&outcome);
            if let Err(reason) = &outcome.result {
                if progress {
                    eprint!("\r\x1b[K");
                }
                eprintln!("error: {}: {reason}", events[outcome.event].name);
            }
            if progress {
                eprint!(
                    "\r\x1b[Ksent {}/{total}, {} delivered, {} failed, {} retried",
                    summary.sent, summary.delivered, summary.failed, summary.retried
                );
            }
        }
        if progress {
            eprintln!();
        }
        let failed = summary.failed;
        let mut line = summary.into_json();
        if let Some(seed) = seed {
            line["seed"] = json!(seed);
        }
        if writeln!(std::io::stdout(), "{line}").is_err() {
            return ExitCode::from(EXIT_IO);
        }
        if failed == 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        }
    })
}

/// The send order: every event `1 + duplicates` times, as passes over the
/// inputs, shuffled when a seed is given.
fn plan(events: usize, duplicates: u32, seed: Option<u64>) -> Vec<usize> {
    let passes = usize::try_from(duplicates)
        .unwrap_or(usize::MAX)
        .saturating_add(1);
    let mut order: Vec<usize> = (0..passes).flat_map(|_| 0..events).collect();
    if let Some(seed) = seed {
        fastrand::Rng::with_seed(seed).shuffle(&mut order);
    }
    order
}

/// When the `n`th delivery may start, at `rate` per second.
fn slot(n: usize, rate: f64) -> Duration {
    Duration::from_secs_f64(n as f64 / rate)
}

fn unix_nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// Where and how deliveries are made.
struct Sender {
    client: HttpClient,
    target: Uri,
    /// The URL and key to sign with (HTTP mode with `--key`).
    signing: Option<(String, String)>,
    mns: bool,
}

impl Sender {
    fn new(args: &Args) -> Self {
        let url: Uri = args.url.parse().expect("--url was checked by parse_url");
        let target = if args.mns {
            let mut parts = url.into_parts();
            parts.path_and_query = Some("/invoke".parse().expect("a valid path"));
            Uri::from_parts(parts).expect("the URL with another path is valid")
        } else {
            url
        };
        let signing = args.key.clone().map(|key| {
            let url = args.sign_url.clone().unwrap_or_else(|| args.url.clone());
            (url, key)
        });
        Sender {
            client: HttpClient::new(),
            target,
            signing,
            mns: args.mns,
        }
    }

    /// Makes up to [`ATTEMPTS`] attempts to deliver one event.
    async fn deliver(&self, job: Job, event: Bytes) -> Outcome {
        let body = if self.mns {
            Bytes::from(mns_envelope(&job.message_id, &event))
        } else {
            event
        };
        let mut outcome = Outcome {
            event: job.event,
            result: Ok(()),
            retries: 0,
            latencies: Vec::new(),
        };
        for attempt in 1..=ATTEMPTS {
            if attempt > 1 {
                tokio::time::sleep(RETRY_PAUSE).await;
                outcome.retries += 1;
            }
            let headers = self.headers(&job.message_id, attempt);
            let started = Instant::now();
            let answer = self
                .client
                .post(&self.target, headers, body.clone(), ATTEMPT_TIMEOUT)
                .await;
            let reason = match answer {
                Ok(response) => {
                    outcome.latencies.push(started.elapsed());
                    match self.refusal(&response) {
                        None => return outcome,
                        Some(reason) => reason,
                    }
                }
                Err(HttpError::Connect(detail)) => {
                    outcome.result = Err(format!(
                        "cannot connect to {}: {detail} (not retried)",
                        self.target
                    ));
                    return outcome;
                }
                Err(error) => error.to_string(),
            };
            outcome.result = Err(format!(
                "not delivered after {attempt} attempt{}: {reason}",
                if attempt == 1 { "" } else { "s" }
            ));
        }
        outcome
    }

    /// The headers of one attempt: IMS's signature (computed per attempt,
    /// as the timestamp is), or FC's invocation headers.
    fn headers(&self, message_id: &str, attempt: u32) -> Vec<(HeaderName, HeaderValue)> {
        let mut headers = vec![(
            USER_AGENT,
            HeaderValue::from_static(concat!("ims-callback-send/", env!("CARGO_PKG_VERSION"))),
        )];
        if self.mns {
            // FC sends event invocations as octet streams.
            headers.push((
                CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            ));
            headers.push((
                HeaderName::from_static("x-fc-control-path"),
                HeaderValue::from_static("/invoke"),
            ));
            headers.push((
                HeaderName::from_static("x-fc-request-id"),
                header_value(format!("{message_id}-{attempt}")),
            ));
        } else {
            headers.push((CONTENT_TYPE, HeaderValue::from_static("application/json")));
            if let Some((url, key)) = &self.signing {
                let timestamp = unix_now().to_string();
                let signature = sign(url, &timestamp, key);
                headers.push((
                    HeaderName::from_static(TIMESTAMP_HEADER),
                    header_value(timestamp),
                ));
                headers.push((
                    HeaderName::from_static(SIGNATURE_HEADER),
                    header_value(signature),
                ));
            }
        }
        headers
    }

    /// Why an answer does not count as delivered, or `None` when it does.
    fn refusal(&self, response: &Response) -> Option<String> {
        let fc_failed = response
            .headers
            .get("x-fc-status")
            .is_some_and(|v| v.as_bytes() == b"404");
        let delivered = if self.mns {
            response.status.is_success() && !fc_failed
        } else {
            response.status == hyper::StatusCode::OK
        };
        if delivered {
            return None;
        }
        let mut reason = format!("HTTP {}", response.status.as_u16());
        if fc_failed {
            reason.push_str(" with x-fc-status: 404");
        }
        let detail = explain(&response.body);
        if !detail.is_empty() {
            reason.push_str(": ");
            reason.push_str(&detail);
        }
        Some(reason)
    }
}

/// What an error body says: this server's `message`, else the start of
/// the body as text.
fn explain(body: &[u8]) -> String {
    if let Ok(value) = serde_json::from_slice::<Value>(body)
        && let Some(message) = value.get("message").and_then(Value::as_str)
    {
        return message.to_owned();
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    match text.char_indices().nth(200) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

/// The CloudEvents object an MNS queue trigger delivers for one message
/// (shape: events/triggers/, src/ingest/trigger.rs); the event is the
/// `messageBody` text, or its base64 when it is not UTF-8.
fn mns_envelope(message_id: &str, event: &[u8]) -> Vec<u8> {
    let body = match std::str::from_utf8(event) {
        Ok(text) => text.to_owned(),
        Err(_) => base64::engine::general_purpose::STANDARD.encode(event),
    };
    let time = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let envelope = json!({
        "id": message_id,
        "source": "acs:mns",
        "specversion": "1.0",
        "type": "mns:Queue:SendMessage",
        "datacontenttype": "application/json; charset=utf-8",
        "subject": "acs:mns:local:0:queues/ice-callback-send",
        "time": time,
        "data": {
            "requestId": message_id,
            "messageId": message_id,
            "messageBody": body,
        },
    });
    serde_json::to_vec(&envelope).expect("a JSON value serialises")
}

/// Header values built from text this module makes (digits, hex, `-`).
fn header_value(text: String) -> HeaderValue {
    HeaderValue::try_from(text).expect("generated header values are ASCII")
}

/// The totals printed at the end.
#[derive(Default)]
struct Summary {
    sent: usize,
    delivered: usize,
    failed: usize,
    retried: u64,
    latencies: Vec<Duration>,
}

impl Summary {
    fn add(&mut self, outcome: &Outcome) {
        self.sent += 1;
        match outcome.result {
            Ok(()) => self.delivered += 1,
            Err(_) => self.failed += 1,
        }
        self.retried += u64::from(outcome.retries);
        self.latencies.extend_from_slice(&outcome.latencies);
    }

    /// `{sent, delivered, failed, retried, p50_ms, p99_ms}`; the
    /// percentiles are over attempts that got an answer (null if none did).
    fn into_json(mut self) -> Value {
        self.latencies.sort_unstable();
        json!({
            "sent": self.sent,
            "delivered": self.delivered,
            "failed": self.failed,
            "retried": self.retried,
            "p50_ms": percentile_ms(&self.latencies, 50),
            "p99_ms": percentile_ms(&self.latencies, 99),
        })
    }
}

/// The nearest-rank percentile of sorted durations, in ms to 0.1 ms.
fn percentile_ms(sorted: &[Duration], percent: usize) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (sorted.len() * percent).div_ceil(100).max(1);
    let ms = sorted[rank - 1].as_secs_f64() * 1000.0;
    Some((ms * 10.0).round() / 10.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plan_repeats_every_event_and_a_seed_fixes_the_shuffle() {
        assert_eq!(plan(3, 1, None), [0, 1, 2, 0, 1, 2]);
        let shuffled = plan(10, 2, Some(7));
        assert_eq!(shuffled, plan(10, 2, Some(7)));
        let mut sorted = shuffled.clone();
        sorted.sort_unstable();
        let mut expected = plan(10, 2, None);
        expected.sort_unstable();
        assert_eq!(sorted, expected);
        assert_ne!(shuffled, plan(10, 2, None));
    }

    fn parse(args: &[&str]) -> Args {
        #[derive(clap::Parser)]
        struct Command {
            #[command(flatten)]
            args: Args,
        }
        let argv = ["send"].iter().chain(args);
        <Command as clap::Parser>::try_parse_from(argv)
            .unwrap()
            .args
    }

    #[test]
    fn the_signature_is_over_the_url_as_written_or_the_sign_url() {
        let sender = Sender::new(&parse(&["--url", "https://h.example", "--key", "k", "f"]));
        assert_eq!(
            sender.signing,
            Some(("https://h.example".into(), "k".into()))
        );
        let sender = Sender::new(&parse(&[
            "--url",
            "http://127.0.0.1:9000/cb",
            "--sign-url",
            "https://h/cb",
            "--key",
            "k",
            "f",
        ]));
        assert_eq!(sender.signing, Some(("https://h/cb".into(), "k".into())));
        assert_eq!(sender.target, "http://127.0.0.1:9000/cb");
        let mns = Sender::new(&parse(&[
            "--url",
            "http://127.0.0.1:9000/cb?x=1",
            "--mns",
            "f",
        ]));
        assert_eq!(mns.signing, None);
        assert_eq!(mns.target, "http://127.0.0.1:9000/invoke");
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let ms: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile_ms(&ms, 50), Some(50.0));
        assert_eq!(percentile_ms(&ms, 99), Some(99.0));
        assert_eq!(percentile_ms(&ms[..1], 99), Some(1.0));
        assert_eq!(percentile_ms(&[], 50), None);
    }

    #[test]
    fn the_mns_envelope_is_what_the_invoke_route_unwraps() {
        let event = br#"{"EventType":"X","UserId":1}"#;
        let envelope = mns_envelope("m-1", event);
        let messages = ims_callback::ingest::trigger::messages(&envelope).unwrap();
        assert_eq!(messages.len(), 1);
        assert_eq!(messages[0].message_id.as_deref(), Some("m-1"));
        assert_eq!(&*messages[0].body, event);
    }

    fn sender(mns: bool) -> Sender {
        Sender {
            client: HttpClient::new(),
            target: Uri::from_static("http://127.0.0.1/"),
            signing: None,
            mns,
        }
    }

    fn answer(status: u16, fc_status: Option<&'static str>) -> Response {
        let mut headers = hyper::HeaderMap::new();
        if let Some(fc_status) = fc_status {
            headers.insert("x-fc-status", HeaderValue::from_static(fc_status));
        }
        Response {
            status: hyper::StatusCode::from_u16(status).unwrap(),
            headers,
            body: Bytes::from_static(br#"{"message":"store down"}"#),
        }
    }

    #[test]
    fn ims_counts_only_200_and_fc_fails_on_x_fc_status_404_or_non_2xx() {
        let http = sender(false);
        assert_eq!(http.refusal(&answer(200, None)), None);
        assert_eq!(
            http.refusal(&answer(204, None)).as_deref(),
            Some("HTTP 204: store down")
        );
        let mns = sender(true);
        assert_eq!(mns.refusal(&answer(200, None)), None);
        assert_eq!(mns.refusal(&answer(200, Some("200"))), None);
        assert_eq!(mns.refusal(&answer(204, None)), None);
        assert_eq!(
            mns.refusal(&answer(200, Some("404"))).as_deref(),
            Some("HTTP 200 with x-fc-status: 404: store down")
        );
        assert_eq!(
            mns.refusal(&answer(503, None)).as_deref(),
            Some("HTTP 503: store down")
        );
    }

    #[test]
    fn error_bodies_are_explained_by_their_message() {
        assert_eq!(explain(br#"{"error":"x","message":"bad key"}"#), "bad key");
        assert_eq!(explain(b" plain text \n"), "plain text");
        assert_eq!(explain(&[b'a'; 300]).chars().count(), 201);
    }
}
