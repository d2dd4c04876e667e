//! Writing JSON text on the hot path. serde_json's serialiser inspects a
//! string one byte at a time to find what to escape; nearly every string an
//! IMS event carries (ids, URLs, statuses, times) needs no escaping at all,
//! so a quick whole-string check lets those be copied at once, and only
//! the rare string with a quote, a backslash or a control character takes
//! the byte-by-byte path. Output is byte-for-byte what serde_json writes.

use serde_json::Value;

/// Lends `f` this thread's reusable byte buffer, empty: the canonical form
/// of an event and the log line are built without a fresh allocation each.
/// A call made while the buffer is lent (a value that logs while a line is
/// written) gets a buffer of its own. A buffer that grew past 64 KiB is not
/// kept, so a rare huge event does not hold memory for the thread's life.
pub fn with_scratch<R>(f: impl FnOnce(&mut Vec<u8>) -> R) -> R {
    thread_local! {
        static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => {
            buf.clear();
            let result = f(&mut buf);
            if buf.capacity() > 64 * 1024 {
                *buf = Vec::new();
            }
            result
        }
        Err(_) => f(&mut Vec::new()),
    })
}

/// True when `s` holds a byte JSON requires escaping (`"`, `\` or a
/// control character below U+0020); serde_json escapes exactly these
/// bytes. A plain branch-free pass: on an event's short strings it runs
/// fewer instructions than eight-byte bit tricks or sixteen-byte blocks.
#[inline]
pub fn needs_escape(s: &str) -> bool {
    s.bytes().fold(false, |found, b| {
        found | (b < 0x20) | (b == b'"') | (b == b'\\')
    })
}

/// Appends `s` as a JSON string literal, exactly as `serde_json` would.
#[inline]
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    if needs_escape(s) {
        serde_json::to_writer(&mut *out, s).expect("writing to a Vec cannot fail");
    } else {
        out.reserve(s.len() + 2);
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    }
}

/// Appends `value` in compact form, exactly as `serde_json::to_writer`
/// would (object keys in the map's order, which is sorted: serde_json's
/// default map is a `BTreeMap`).
pub fn write_value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => {
            serde_json::to_writer(&mut *out, n).expect("writing to a Vec cannot fail")
        }
        Value::String(s) => write_str(out, s),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(out, item);
            }
            out.push(b']');
        }
        Value::Object(map) => {
            out.push(b'{');
            for (i, (key, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_str(out, key);
                out.push(b':');
                write_value(out, item);
            }
            out.push(b'}');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn any_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            // Any Unicode, with quotes, backslashes and control characters.
            any::<String>().prop_map(Value::String),
            "[a-z\"\\\\\u{0}-\u{1f}\u{7f}é😀]{0,12}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 64, 8, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::btree_map(any::<String>(), inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn writes_what_serde_json_writes(value in any_value()) {
            let mut ours = Vec::new();
            write_value(&mut ours, &value);
            prop_assert_eq!(ours, serde_json::to_vec(&value).unwrap());
        }

        #[test]
        fn needs_escape_matches_serde_json(s in any::<String>()) {
            let escaped = serde_json::to_string(&s).unwrap();
            prop_assert_eq!(needs_escape(&s), escaped.len() != s.len() + 2);
        }
    }

    #[test]
    fn each_escaped_byte_is_found_wherever_it_stands() {
        for b in (0u8..0x20).chain([b'"', b'\\']) {
            for at in [0, 1, 15, 16, 31, 32, 33, 63] {
                let mut s = "x".repeat(64);
                s.replace_range(at..=at, &char::from(b).to_string());
                assert!(needs_escape(&s), "byte {b:#x} at {at}");
            }
        }
        assert!(!needs_escape(
            "https://b.oss-cn-shanghai.aliyuncs.com/sv/é\u{7f}.mp4"
        ));
    }
}
