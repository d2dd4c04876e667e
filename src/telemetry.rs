//! Logging: JSON lines on stdout (Function Compute and Lambda collect
//! them), filtered by `RUST_LOG` (default `info`).
//!
//! `RUST_LOG` takes levels and per-target levels (`info`,
//! `warn,ims_callback=debug`): tracing-subscriber's `Targets` filter, which
//! needs no regex engine — `EnvFilter`'s span and field matching would add
//! one to the binary and to every cold start for no use here.
//!
//! Lines are written by [`JsonLines`], a formatter that writes each field
//! straight into the line as JSON. tracing-subscriber's own JSON format
//! first collects the fields into a map of `serde_json::Value`s (an
//! allocation per field): on the one line per event that was ~10 % of a
//! request's instructions; ours takes ~4 k instructions a line. The shape is the same:
//! `{"timestamp":"…Z","level":"INFO","fields":{"message":"…",…}}`.
//!
//! The HTTP server ([`LogWriter::Background`]) sends lines to stdout
//! through tracing-appender's non-blocking writer: a log thread writes
//! them, so a slow log collector never stalls a runtime worker, and the
//! lines that queue up while it writes leave in one `write` instead of one
//! each (under load the per-line `write` and the contention on stdout's
//! lock were ~5 % of a request's CPU). No line is dropped: past
//! [`QUEUED_LINES`] waiting lines a writer waits, and the [`LogGuard`]
//! returned by [`init`] writes out what is queued when dropped (SIGTERM,
//! which Function Compute sends after the PreStop hook before it removes
//! an instance, ends in that drop). Under AWS Lambda
//! ([`LogWriter::Direct`]) each line is written before the handler
//! returns: Lambda freezes the process as soon as the answer is sent and
//! may end it without a signal, so a queued line could be lost; one event
//! at a time needs no batching.

use std::fmt::{self, Write as _};
use tracing::field::{Field, Visit};
use tracing::level_filters::LevelFilter;
use tracing::{Event, Subscriber};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::prelude::*;
use tracing_subscriber::registry::LookupSpan;

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
    let filter = setting
        .as_deref()
        .and_then(|s| s.parse::<Targets>().ok())
        .unwrap_or_else(|| Targets::new().with_default(LevelFilter::INFO));
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

/// Sets the global subscriber: [`JsonLines`] to `writer`, filtered.
fn install<W>(writer: W, filter: Targets) -> bool
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    let layer = tracing_subscriber::fmt::layer()
        .event_format(JsonLines)
        .with_writer(writer);
    tracing_subscriber::registry()
        .with(layer.with_filter(filter))
        .try_init()
        .is_ok()
}

/// One JSON object per event: timestamp (UTC, microseconds), level and
/// the event's fields; spans are not written (the per-event line carries
/// the request id itself).
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonLines;

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        writer.write_str("{\"timestamp\":\"")?;
        write_timestamp(&mut writer, time::OffsetDateTime::now_utc())?;
        writer.write_str("\",\"level\":\"")?;
        writer.write_str(event.metadata().level().as_str())?;
        writer.write_str("\",\"fields\":{")?;
        let mut fields = JsonFields {
            out: &mut writer,
            first: true,
            result: Ok(()),
        };
        event.record(&mut fields);
        fields.result?;
        writer.write_str("}}\n")
    }
}

/// `YYYY-MM-DDTHH:MM:SS.uuuuuuZ`, without the formatting machinery.
fn write_timestamp(out: &mut impl fmt::Write, t: time::OffsetDateTime) -> fmt::Result {
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
    // Only ASCII digits and separators were written.
    out.write_str(std::str::from_utf8(&buf).map_err(|_| fmt::Error)?)
}

/// Writes an event's fields as JSON members, values escaped in place.
struct JsonFields<'w, 'a> {
    out: &'w mut Writer<'a>,
    first: bool,
    result: fmt::Result,
}

impl JsonFields<'_, '_> {
    /// Writes `"name":` (after a comma unless first) and then `value`.
    fn member(&mut self, field: &Field, value: impl FnOnce(&mut Writer<'_>) -> fmt::Result) {
        if self.result.is_err() {
            return;
        }
        let separator = if std::mem::take(&mut self.first) {
            "\""
        } else {
            ",\""
        };
        self.result = self
            .out
            .write_str(separator)
            .and_then(|()| Escaped(&mut *self.out).write_str(field.name()))
            .and_then(|()| self.out.write_str("\":"))
            .and_then(|()| value(self.out));
    }

    fn quoted(&mut self, field: &Field, args: fmt::Arguments<'_>) {
        self.member(field, |out| {
            out.write_char('"')?;
            Escaped(&mut *out).write_fmt(args)?;
            out.write_char('"')
        });
    }
}

impl Visit for JsonFields<'_, '_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.member(field, |out| {
            out.write_char('"')?;
            Escaped(&mut *out).write_str(value)?;
            out.write_char('"')
        });
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.member(field, |out| write!(out, "{value}"));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.member(field, |out| write!(out, "{value}"));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.member(field, |out| {
            out.write_str(if value { "true" } else { "false" })
        });
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        // JSON has no NaN or infinity.
        if value.is_finite() {
            self.member(field, |out| write!(out, "{value}"));
        } else {
            self.member(field, |out| out.write_str("null"));
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.quoted(field, format_args!("{value}"));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.quoted(field, format_args!("{value:?}"));
    }
}

/// Escapes what it is given as the inside of a JSON string.
struct Escaped<'w, W: fmt::Write>(&'w mut W);

impl<W: fmt::Write> fmt::Write for Escaped<'_, W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        // Most values (ids, keys, statuses) need nothing escaped.
        if !crate::jsonfmt::needs_escape(s) {
            return self.0.write_str(s);
        }
        let mut plain = 0;
        for (i, b) in s.bytes().enumerate() {
            let escape = match b {
                b'"' => "\\\"",
                b'\\' => "\\\\",
                b'\n' => "\\n",
                b'\r' => "\\r",
                b'\t' => "\\t",
                0..=0x1f => "",
                _ => continue,
            };
            self.0.write_str(&s[plain..i])?;
            if escape.is_empty() {
                write!(self.0, "\\u{b:04x}")?;
            } else {
                self.0.write_str(escape)?;
            }
            plain = i + 1;
        }
        self.0.write_str(&s[plain..])
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
        let subscriber = tracing_subscriber::registry().with(
            tracing_subscriber::fmt::layer()
                .event_format(JsonLines)
                .with_writer(move || sink.clone()),
        );
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
        let mut s = String::new();
        write_timestamp(&mut s, t).unwrap();
        assert_eq!(s, "0999-01-02T03:04:05.000006Z");
    }
}
