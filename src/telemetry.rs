//! Logging: JSON lines on stdout (Function Compute and Lambda collect
//! them), filtered by `RUST_LOG` (default `info`).
//!
//! `RUST_LOG` takes levels and per-target levels (`info`,
//! `warn,ims_callback=debug`): tracing-subscriber's `Targets` filter, which
//! needs no regex engine — `EnvFilter`'s span and field matching would add
//! one to the binary and to every cold start for no use here.
//!
//! Lines are written by [`JsonLines`], a layer that writes each field
//! straight into the line as JSON, in the shape of tracing-subscriber's
//! JSON format: `{"timestamp":"…Z","level":"INFO","fields":{"message":"…",…}}`.
//! The same layer writes Function Compute's plain
//! `FC Invoke Start RequestId: …` / `FC Invoke End RequestId: …` lines
//! ([`FcInvocation`]), through the same writer, so every line leaves
//! whole and in order with the JSON ones.
//!
//! The HTTP server ([`LogWriter::Background`]) sends lines to stdout
//! through tracing-appender's non-blocking writer: a log thread writes
//! them, so a slow log collector never stalls a runtime worker, and the
//! lines that queue up while it writes leave in one `write` instead of one
//! each, so no request pays a `write` or contends for stdout's lock. No
//! line is dropped: past [`QUEUED_LINES`] waiting lines a writer waits, and
//! the [`LogGuard`] returned by [`init`] writes out what is queued when
//! dropped (SIGTERM, which Function Compute sends after the PreStop hook
//! before it removes an instance, ends in that drop). Under AWS Lambda
//! ([`LogWriter::Direct`]) each line is written before the handler
//! returns: Lambda freezes the process as soon as the answer is sent and
//! may end it without a signal, so a queued line could be lost; one event
//! at a time needs no batching.

use std::fmt::{self, Write as _};
use std::io::Write as _;
use tracing::field::{Field, Visit};
use tracing::level_filters::LevelFilter;
use tracing::{Event, Subscriber};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::prelude::*;

/// The target of Function Compute's plain invocation lines: written as
/// their message alone, and never filtered out by `RUST_LOG` (FC's
/// console and log search rely on them).
pub const FC_TARGET: &str = "fc";

/// Writes `FC {kind} Start RequestId: {id}` now and `FC {kind} End
/// RequestId: {id}` when dropped (also when the request is cancelled), as
/// the custom runtime specification asks for every invocation
/// (help.aliyun.com/en/functioncompute/fc-2-0/user-guide/custom-runtime-specification-details);
/// nothing without a request id (a request FC did not forward).
#[must_use = "the End line is written when this is dropped"]
pub struct FcInvocation<'a> {
    kind: &'static str,
    request_id: Option<&'a str>,
}

impl<'a> FcInvocation<'a> {
    /// `kind` is `Invoke`, `Initialize` or `PreStop`; `request_id` the
    /// `x-fc-request-id` header.
    pub fn start(kind: &'static str, request_id: Option<&'a str>) -> Self {
        if let Some(id) = request_id {
            tracing::info!(target: FC_TARGET, "FC {kind} Start RequestId: {id}");
        }
        FcInvocation { kind, request_id }
    }
}

impl Drop for FcInvocation<'_> {
    fn drop(&mut self) {
        if let Some(id) = self.request_id {
            let kind = self.kind;
            tracing::info!(target: FC_TARGET, "FC {kind} End RequestId: {id}");
        }
    }
}

/// Log lines that may wait for the log thread before a writer waits too.
pub const QUEUED_LINES: usize = 8 * 1024;

/// Keeps the log thread, if there is one; dropping it writes out every
/// queued line. Hold it until the process is about to exit.
#[must_use = "dropping the guard stops the log thread"]
pub struct LogGuard {
    _worker: Option<tracing_appender::non_blocking::WorkerGuard>,
}

/// How log lines reach stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogWriter {
    /// Queued to a log thread that writes them in batches (the server).
    Background,
    /// Written by the thread that logs, before it goes on (Lambda).
    Direct,
}

/// Installs the global JSON subscriber. Safe to call more than once: only
/// the first call installs anything (later guards hold nothing).
pub fn init(writer: LogWriter) -> LogGuard {
    let setting = std::env::var("RUST_LOG").ok();
    let filter = filter(setting.as_deref());
    let (installed, worker) = match writer {
        LogWriter::Direct => (install(std::io::stdout, filter), None),
        LogWriter::Background => {
            let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
                .lossy(false)
                .buffered_lines_limit(QUEUED_LINES)
                .thread_name("ims-log")
                .finish(std::io::BufWriter::with_capacity(
                    64 * 1024,
                    std::io::stdout(),
                ));
            (install(writer, filter), Some(guard))
        }
    };
    if installed
        && let Some(setting) = setting
        && setting.parse::<Targets>().is_err()
    {
        tracing::warn!(
            rust_log = setting.as_str(),
            "RUST_LOG is not a list of LEVEL or TARGET=LEVEL; logging at info"
        );
    }
    LogGuard {
        _worker: worker.filter(|_| installed),
    }
}

/// The filter for a `RUST_LOG` setting (`info` when unset or unreadable),
/// always letting the FC lines through.
fn filter(setting: Option<&str>) -> Targets {
    setting
        .and_then(|s| s.parse::<Targets>().ok())
        .unwrap_or_else(|| Targets::new().with_default(LevelFilter::INFO))
        .with_target(FC_TARGET, LevelFilter::INFO)
}

/// Sets the global subscriber: [`JsonLines`] to `writer`, filtered.
fn install<W>(writer: W, filter: Targets) -> bool
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::registry()
        .with(JsonLines::new(writer).with_filter(filter))
        .try_init()
        .is_ok()
}

// Not tracing-subscriber's `json()`: it builds a map of `Value`s for every
// line, a cost on every callback (`scripts/ir-per-request.sh` counts it),
// and FC's plain lines would need a second layer on the same writer.
/// A layer that writes each event as one JSON object on a line:
/// timestamp (UTC, microseconds), level and the event's fields; spans are
/// not written (the per-event line carries the request id itself).
///
/// The line is built in a reused per-thread byte buffer, strings copied in
/// whole unless they need escaping ([`crate::jsonfmt::write_str`]), and
/// handed to the writer in one `write_all`. tracing-subscriber's `fmt`
/// layer with a custom line format cost more (a `dyn fmt::Write` call per
/// piece, its own per-thread `String` and per-event bookkeeping).
#[derive(Debug)]
pub struct JsonLines<W> {
    make_writer: W,
}

impl<W> JsonLines<W> {
    /// Lines to the writers `make_writer` makes.
    pub fn new(make_writer: W) -> Self {
        Self { make_writer }
    }
}

impl<S, W> Layer<S> for JsonLines<W>
where
    S: Subscriber,
    W: for<'w> MakeWriter<'w> + 'static,
{
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        crate::jsonfmt::with_scratch(|line| {
            if event.metadata().target() == FC_TARGET {
                event.record(&mut PlainMessage(line));
                line.push(b'\n');
            } else {
                format_line(line, event);
            }
            // Nowhere to report a failure to write a log line.
            let _ = self
                .make_writer
                .make_writer_for(event.metadata())
                .write_all(line);
        });
    }
}

/// Appends one event's line, newline included.
fn format_line(out: &mut Vec<u8>, event: &Event<'_>) {
    out.extend_from_slice(b"{\"timestamp\":\"");
    write_timestamp(out, time::OffsetDateTime::now_utc());
    out.extend_from_slice(b"\",\"level\":\"");
    out.extend_from_slice(event.metadata().level().as_str().as_bytes());
    out.extend_from_slice(b"\",\"fields\":{");
    event.record(&mut JsonFields { out, first: true });
    out.extend_from_slice(b"}}\n");
}

/// `YYYY-MM-DDTHH:MM:SS.uuuuuuZ`, without the formatting machinery.
fn write_timestamp(out: &mut Vec<u8>, t: time::OffsetDateTime) {
    let mut buf = *b"0000-00-00T00:00:00.000000Z";
    let mut put = |at: usize, width: usize, mut n: u32| {
        for i in (at..at + width).rev() {
            buf[i] = b'0' + (n % 10) as u8;
            n /= 10;
        }
    };
    put(0, 4, u32::try_from(t.year()).unwrap_or(0));
    put(5, 2, u32::from(u8::from(t.month())));
    put(8, 2, u32::from(t.day()));
    put(11, 2, u32::from(t.hour()));
    put(14, 2, u32::from(t.minute()));
    put(17, 2, u32::from(t.second()));
    put(20, 6, t.microsecond());
    out.extend_from_slice(&buf);
}

/// Appends an event's message as it is (the FC lines are built from a
/// fixed text and a header value, which holds no line break).
struct PlainMessage<'a>(&'a mut Vec<u8>);

impl Visit for PlainMessage<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        }
    }
}

/// Writes an event's fields as JSON members.
struct JsonFields<'a> {
    out: &'a mut Vec<u8>,
    first: bool,
}

impl JsonFields<'_> {
    /// Writes `"name":` (after a comma unless first); the value follows.
    fn name(&mut self, field: &Field) -> &mut Vec<u8> {
        if !std::mem::take(&mut self.first) {
            self.out.push(b',');
        }
        crate::jsonfmt::write_str(self.out, field.name());
        self.out.push(b':');
        self.out
    }

    /// A value written through `fmt`, as a JSON string.
    fn quoted(&mut self, field: &Field, args: fmt::Arguments<'_>) {
        let out = self.name(field);
        out.push(b'"');
        // Writing to a Vec cannot fail; a `Display` that errs leaves what
        // it wrote, and the string is closed all the same.
        let _ = Escaped(&mut *out).write_fmt(args);
        out.push(b'"');
    }

    /// A number, written by `itoa`'s or `ryu`'s rules through serde_json.
    fn number(&mut self, field: &Field, value: impl serde::Serialize) {
        let out = self.name(field);
        serde_json::to_writer(&mut *out, &value).expect("writing to a Vec cannot fail");
    }
}

impl Visit for JsonFields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        let out = self.name(field);
        crate::jsonfmt::write_str(out, value);
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.number(field, value);
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.number(field, value);
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        let out = self.name(field);
        out.extend_from_slice(if value { b"true" } else { b"false" });
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        // serde_json writes NaN and the infinities as null (JSON has none).
        self.number(field, value);
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.quoted(field, format_args!("{value}"));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.quoted(field, format_args!("{value:?}"));
    }
}

/// Appends what it is given as the inside of a JSON string.
struct Escaped<'w>(&'w mut Vec<u8>);

impl fmt::Write for Escaped<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        // Most pieces (ids, keys, statuses) need nothing escaped.
        if !crate::jsonfmt::needs_escape(s) {
            self.0.extend_from_slice(s.as_bytes());
            return Ok(());
        }
        // serde_json's escapes, without the quotes it puts around them.
        let quoted = serde_json::to_string(s).map_err(|_| fmt::Error)?;
        self.0
            .extend_from_slice(&quoted.as_bytes()[1..quoted.len() - 1]);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;
    use std::sync::{Arc, Mutex};

    /// Captures what the subscriber writes.
    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Capture {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn lines(emit: impl FnOnce()) -> Vec<serde_json::Value> {
        let capture = Capture::default();
        let sink = capture.clone();
        let subscriber = tracing_subscriber::registry().with(JsonLines::new(move || sink.clone()));
        tracing::subscriber::with_default(subscriber, emit);
        let bytes = capture.0.lock().unwrap().clone();
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.ends_with('\n'), "{text:?}");
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }

    #[test]
    fn every_field_kind_is_valid_json() {
        struct Oops;
        impl fmt::Display for Oops {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("bad \"thing\"\n")
            }
        }
        impl fmt::Debug for Oops {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("Oops")
            }
        }
        impl std::error::Error for Oops {}
        let none: Option<&str> = None;
        let got = lines(|| {
            tracing::warn!(
                text = "quote \" backslash \\ tab \t nul \u{0} bell \u{7} é 中",
                absent = none,
                count = 42u64,
                negative = -7i64,
                yes = true,
                ratio = 0.5f64,
                nan = f64::NAN,
                shown = %Oops,
                debugged = ?Some("x"),
                error = &Oops as &(dyn std::error::Error + 'static),
                "done: {}",
                "\"formatted\""
            );
        });
        assert_eq!(got.len(), 1);
        let line = &got[0];
        assert_eq!(line["level"], "WARN");
        let f = &line["fields"];
        assert_eq!(
            f["text"],
            "quote \" backslash \\ tab \t nul \u{0} bell \u{7} é 中"
        );
        assert!(f.get("absent").is_none(), "{line}");
        assert_eq!(f["count"], 42);
        assert_eq!(f["negative"], -7);
        assert_eq!(f["yes"], true);
        assert_eq!(f["ratio"], 0.5);
        assert!(f["nan"].is_null());
        assert_eq!(f["shown"], "bad \"thing\"\n");
        assert_eq!(f["debugged"], "Some(\"x\")");
        assert_eq!(f["error"], "bad \"thing\"\n");
        assert_eq!(f["message"], "done: \"formatted\"");
    }

    #[test]
    fn a_value_that_logs_while_being_written_does_not_break_the_line() {
        struct Chatty;
        impl fmt::Debug for Chatty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                tracing::info!("from inside a field");
                f.write_str("chatty")
            }
        }
        let got = lines(|| tracing::info!(value = ?Chatty, "outer"));
        let outer = got.iter().find(|l| l["fields"]["message"] == "outer");
        assert_eq!(outer.unwrap()["fields"]["value"], "chatty", "{got:?}");
    }

    #[test]
    fn fc_lines_are_plain_whole_lines_between_the_json_ones() {
        let capture = Capture::default();
        let sink = capture.clone();
        let subscriber = tracing_subscriber::registry().with(JsonLines::new(move || sink.clone()));
        tracing::subscriber::with_default(subscriber, || {
            let invocation = FcInvocation::start("Invoke", Some("req-1"));
            tracing::info!(request_id = "req-1", "event stored");
            drop(invocation);
            let _unforwarded = FcInvocation::start("Invoke", None);
        });
        let text = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert_eq!(lines[0], "FC Invoke Start RequestId: req-1");
        let json: serde_json::Value = serde_json::from_str(lines[1]).unwrap();
        assert_eq!(json["fields"]["message"], "event stored");
        assert_eq!(lines[2], "FC Invoke End RequestId: req-1");
    }

    #[test]
    fn fc_lines_pass_any_rust_log_level() {
        for setting in [None, Some("error"), Some("off"), Some("warn,fc=off")] {
            let filter = filter(setting);
            assert!(
                filter.would_enable(FC_TARGET, &tracing::Level::INFO),
                "{setting:?}"
            );
        }
        assert!(!filter(Some("error")).would_enable("ims_callback::server", &tracing::Level::INFO));
    }

    #[test]
    fn timestamp_is_rfc3339_utc_with_microseconds() {
        let before = time::OffsetDateTime::now_utc();
        let got = lines(|| tracing::info!("hello"));
        let after = time::OffsetDateTime::now_utc();
        let stamp = got[0]["timestamp"].as_str().unwrap();
        assert_eq!(stamp.len(), 27, "{stamp}");
        let parsed =
            time::OffsetDateTime::parse(stamp, &time::format_description::well_known::Rfc3339)
                .unwrap();
        assert!(before - time::Duration::microseconds(1) <= parsed && parsed <= after);
        assert_eq!(got[0]["fields"], serde_json::json!({"message": "hello"}));
    }

    #[test]
    fn fixed_timestamp_is_padded() {
        let t = time::Date::from_calendar_date(999, time::Month::January, 2)
            .unwrap()
            .with_hms_micro(3, 4, 5, 6)
            .unwrap()
            .assume_utc();
        let mut s = Vec::new();
        write_timestamp(&mut s, t);
        assert_eq!(s, b"0999-01-02T03:04:05.000006Z");
    }
}
