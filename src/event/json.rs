//! Strict JSON: `serde_json`'s parser (RFC 8259, UTF-8, numbers in range,
//! nesting bounded at 128 levels), building the same [`Value`] as
//! `serde_json::from_slice`, except that a key repeated within one object
//! is an error rather than "the last one wins": RFC 8259 leaves the meaning
//! of duplicate names undefined, and which `MediaId` or `Status` IMS meant
//! cannot be guessed, so such an input is refused, naming the key's path.

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::map::Entry;
use serde_json::{Map, Number, Value};
use std::cell::RefCell;
use std::fmt;

/// Where a duplicate was found: the JSON pointer of the repeated key.
pub(crate) type DuplicateSlot = RefCell<Option<String>>;

/// Parses `bytes` as one JSON document. On a duplicate key, `duplicate`
/// receives the key's JSON pointer and the error says `duplicate key `K``.
pub(crate) fn from_slice(bytes: &[u8], duplicate: &DuplicateSlot) -> serde_json::Result<Value> {
    // Checked as UTF-8 once, the whole body at a time, the text is read
    // without serde_json checking each string again. A body that is not
    // UTF-8 is read as bytes, so that the error says where the bad byte is.
    match std::str::from_utf8(bytes) {
        Ok(text) => read_document(serde_json::Deserializer::from_str(text), duplicate),
        Err(_) => read_document(serde_json::Deserializer::from_slice(bytes), duplicate),
    }
}

/// Parses JSON held inside a string field (`TaskInput`, `MediaContent`,
/// an AI job's `Input`) as strictly as the document itself: a repeated key
/// is refused there too, since which of two `MediaId`s IMS meant cannot be
/// known. The error says what and where: serde_json's line and column, and
/// for a repeated key its JSON pointer within the string.
pub(crate) fn parse_embedded(text: &str) -> Result<Value, String> {
    let duplicate = DuplicateSlot::default();
    read_document(serde_json::Deserializer::from_str(text), &duplicate).map_err(|e| match duplicate
        .into_inner()
    {
        Some(pointer) => format!("{e}, path {pointer} within the string"),
        None => e.to_string(),
    })
}

/// One strict document from `de`, to its end.
fn read_document<'de, R: serde_json::de::Read<'de>>(
    mut de: serde_json::Deserializer<R>,
    duplicate: &DuplicateSlot,
) -> serde_json::Result<Value> {
    let value = Strict {
        path: None,
        duplicate,
    }
    .deserialize(&mut de)?;
    de.end()?;
    Ok(value)
}

/// One step of the path from the root to the value being read.
enum Segment<'p> {
    Key(&'p str),
    Index(usize),
}

struct PathNode<'p> {
    parent: Option<&'p PathNode<'p>>,
    segment: Segment<'p>,
}

fn pointer(node: &PathNode<'_>) -> String {
    let mut segments = Vec::new();
    let mut next = Some(node);
    while let Some(n) = next {
        segments.push(&n.segment);
        next = n.parent;
    }
    let mut out = String::new();
    for segment in segments.into_iter().rev() {
        out.push('/');
        match segment {
            Segment::Key(k) => out.push_str(&k.replace('~', "~0").replace('/', "~1")),
            Segment::Index(i) => out.push_str(&i.to_string()),
        }
    }
    out
}

#[derive(Clone, Copy)]
struct Strict<'p, 'd> {
    path: Option<&'p PathNode<'p>>,
    duplicate: &'d DuplicateSlot,
}

impl<'de> DeserializeSeed<'de> for Strict<'_, '_> {
    type Value = Value;
    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Strict<'_, '_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any valid JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        // As serde_json's own `Value`: a non-finite float becomes null
        // (the parser never produces one: 1e400 is an error there).
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        self.deserialize(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        loop {
            let node = PathNode {
                parent: self.path,
                segment: Segment::Index(items.len()),
            };
            let seed = Strict {
                path: Some(&node),
                duplicate: self.duplicate,
            };
            match seq.next_element_seed(seed)? {
                Some(item) => items.push(item),
                None => return Ok(Value::Array(items)),
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut map = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            // One search: the vacant slot found is where the value goes.
            match map.entry(key) {
                Entry::Occupied(taken) => {
                    let node = PathNode {
                        parent: self.path,
                        segment: Segment::Key(taken.key()),
                    };
                    *self.duplicate.borrow_mut() = Some(pointer(&node));
                    let key = taken.key();
                    return Err(de::Error::custom(format_args!("duplicate key `{key}`")));
                }
                Entry::Vacant(slot) => {
                    let node = PathNode {
                        parent: self.path,
                        segment: Segment::Key(slot.key()),
                    };
                    let value = access.next_value_seed(Strict {
                        path: Some(&node),
                        duplicate: self.duplicate,
                    })?;
                    slot.insert(value);
                }
            }
        }
        Ok(Value::Object(map))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> (serde_json::Result<Value>, Option<String>) {
        let slot = DuplicateSlot::default();
        let result = from_slice(text.as_bytes(), &slot);
        (result, slot.into_inner())
    }

    #[test]
    fn builds_the_same_value_as_serde_json() {
        for text in [
            r#"{"a":[1,-2,3.5,1e300,18446744073709551615,18446744073709551616],"b":{"c":null,"d":true,"e":"\u00e9\u0000"}}"#,
            "[]",
            "{}",
            " 12 ",
            r#""x""#,
            r#"[{"a":1},{"a":2}]"#,
        ] {
            let (ours, dup) = parse(text);
            assert_eq!(ours.unwrap(), serde_json::from_str::<Value>(text).unwrap());
            assert_eq!(dup, None);
        }
    }

    #[test]
    fn a_body_that_is_not_utf8_is_refused_where_serde_json_refuses_it() {
        for bytes in [
            &b"{\"a\":\"x\xff\"}"[..],
            b"{\"a\":1,\n \"b\":\"\xc3\x28\"}",
            b"[\"ok\", \"\xed\xa0\x80\"]",
            b"\xef\xbb\xbf{}",
        ] {
            let ours = from_slice(bytes, &DuplicateSlot::default()).unwrap_err();
            let theirs = serde_json::from_slice::<Value>(bytes).unwrap_err();
            assert_eq!(ours.to_string(), theirs.to_string());
            assert_eq!(
                (ours.line(), ours.column()),
                (theirs.line(), theirs.column())
            );
        }
    }

    #[test]
    fn strings_read_as_text_match_serde_json() {
        let text = r#"{"é":"中\u00e9\n\"q\"","emoji":"😀","esc":"\ud83d\ude00","k":["a\\b"]}"#;
        let (ours, _) = parse(text);
        assert_eq!(ours.unwrap(), serde_json::from_str::<Value>(text).unwrap());
    }

    #[test]
    fn a_repeated_key_is_an_error_naming_its_path() {
        let (result, dup) = parse("{\"a\":{\"x/y~\":[0,{\"k\":1,\n\"k\":2}]}}");
        let e = result.unwrap_err();
        assert_eq!((e.line(), e.column()), (2, 3));
        assert!(e.to_string().starts_with("duplicate key `k`"), "{e}");
        assert_eq!(dup.as_deref(), Some("/a/x~1y~0/1/k"));
        let (result, dup) = parse(r#"{"a":1,"a":1}"#);
        assert!(result.is_err());
        assert_eq!(dup.as_deref(), Some("/a"));
    }

    #[test]
    fn embedded_json_is_as_strict_as_the_document() {
        assert_eq!(
            parse_embedded(r#"{"a":[1,{"b":null}]}"#).unwrap(),
            serde_json::json!({"a": [1, {"b": null}]})
        );
        let e = parse_embedded("{\"Media\":{\"MediaId\":\"a\",\n\"MediaId\":\"b\"}}").unwrap_err();
        assert_eq!(
            e,
            "duplicate key `MediaId` at line 2 column 9, path /Media/MediaId within the string"
        );
        let e = parse_embedded("{\"a\":1,}").unwrap_err();
        assert_eq!(e, "trailing comma at line 1 column 8");
    }

    #[test]
    fn serde_json_errors_stay_errors() {
        for text in ["{\"a\":1e400}", "[1,]", "\u{feff}{}", "{} x"] {
            let (result, dup) = parse(text);
            assert!(result.is_err(), "{text}");
            assert_eq!(dup, None);
        }
        let deep = "[".repeat(10_000) + &"]".repeat(10_000);
        let (result, _) = parse(&deep);
        assert!(result.unwrap_err().to_string().contains("recursion limit"));
    }
}
