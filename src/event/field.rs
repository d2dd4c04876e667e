//! The machinery that turns JSON values into typed fields while recording
//! every problem with its path: [`Ctx`], the [`FromJson`] trait, and the
//! [`body!`](crate::body) macro that declares a typed message body from the
//! seed's field table.
//!
//! Values are *moved* out of the parsed `serde_json::Value` tree, never
//! cloned: a body is built from the members of the object it consumes, and
//! whatever members are left over become its `extra` map, so re-serialising
//! loses nothing.

use crate::validate::{Problem, Reason};
use serde_json::{Map, Value};

/// Parsing context: the JSON pointer of the value being read and the
/// problems found so far.
#[derive(Debug, Default)]
pub struct Ctx {
    path: String,
    problems: Vec<Problem>,
}

impl Ctx {
    /// A context positioned at the document root.
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs `f` with the path extended by one segment (a key or an index).
    pub fn at<R>(&mut self, segment: &str, f: impl FnOnce(&mut Ctx) -> R) -> R {
        let len = self.path.len();
        self.path.push('/');
        // RFC 6901 escaping; IMS keys never need it (one copy then), but
        // user JSON might.
        if segment.contains(['~', '/']) {
            for c in segment.chars() {
                match c {
                    '~' => self.path.push_str("~0"),
                    '/' => self.path.push_str("~1"),
                    c => self.path.push(c),
                }
            }
        } else {
            self.path.push_str(segment);
        }
        let result = f(self);
        self.path.truncate(len);
        result
    }

    /// Records a problem at the current path.
    pub fn problem(&mut self, reason: Reason) {
        self.problems.push(Problem {
            path: self.path.clone(),
            reason,
        });
    }

    /// How many problems have been recorded so far.
    pub fn problem_count(&self) -> usize {
        self.problems.len()
    }

    /// The problems recorded, in the order found.
    pub fn into_problems(self) -> Vec<Problem> {
        self.problems
    }
}

/// A value that can be read from JSON, recording problems instead of
/// stopping at the first one.
pub trait FromJson: Sized {
    /// Converts `value` (found at the context's current path); on failure
    /// records why and returns `None`.
    fn from_json(value: Value, ctx: &mut Ctx) -> Option<Self>;
}

/// An object's members, moved out of its map to be picked from by name.
///
/// A body has a handful of members and picks each of its fields once: a
/// scan of a short list does that for a fraction of what a removal from a
/// B-tree costs (a search, then keys and values shifted in the node).
pub type Members = Vec<(String, Value)>;

/// Moves an object's members into a [`Members`] list (in key order).
pub fn members(map: Map<String, Value>) -> Members {
    map.into_iter().collect()
}

/// The members nobody picked, as a map again (the `extra` of a body).
pub fn rest(members: Members) -> Map<String, Value> {
    // Empty for every documented body: no allocation then.
    members.into_iter().collect()
}

/// Removes the member `name`, whatever its value (`null` included).
pub fn remove(members: &mut Members, name: &str) -> Option<Value> {
    let at = members.iter().position(|(key, _)| key == name)?;
    // Order is restored by `rest`, which sorts what is left.
    Some(members.swap_remove(at).1)
}

/// Removes the first of `names` present in `members` and converts it.
///
/// Returns `None` when absent (or `null`, which IMS uses for "not set"),
/// `Some(None)` when present but invalid (the problem is recorded), and
/// `Some(Some(v))` when valid. Member names are unique (the parser refuses
/// a repeated key), so the first match is the only one.
pub fn take<T: FromJson>(
    members: &mut Members,
    names: &[&'static str],
    ctx: &mut Ctx,
) -> Option<Option<T>> {
    for &name in names {
        if let Some(value) = remove(members, name) {
            if value.is_null() {
                return None;
            }
            return Some(ctx.at(name, |ctx| T::from_json(value, ctx)));
        }
    }
    None
}

/// Takes the object out of `value`, or records [`Reason::ExpectedObject`].
pub fn expect_object(value: Value, ctx: &mut Ctx) -> Option<Map<String, Value>> {
    match value {
        Value::Object(map) => Some(map),
        _ => {
            ctx.problem(Reason::ExpectedObject);
            None
        }
    }
}

impl FromJson for String {
    fn from_json(value: Value, ctx: &mut Ctx) -> Option<Self> {
        match value {
            Value::String(s) => Some(s),
            _ => {
                ctx.problem(Reason::ExpectedString);
                None
            }
        }
    }
}

impl FromJson for Value {
    fn from_json(value: Value, _ctx: &mut Ctx) -> Option<Self> {
        Some(value)
    }
}

impl FromJson for Map<String, Value> {
    fn from_json(value: Value, ctx: &mut Ctx) -> Option<Self> {
        expect_object(value, ctx)
    }
}

impl<T: FromJson> FromJson for Vec<T> {
    fn from_json(value: Value, ctx: &mut Ctx) -> Option<Self> {
        let Value::Array(items) = value else {
            ctx.problem(Reason::ExpectedArray);
            return None;
        };
        let mut out = Vec::with_capacity(items.len());
        let mut ok = true;
        for (i, item) in items.into_iter().enumerate() {
            match ctx.at(&i.to_string(), |ctx| T::from_json(item, ctx)) {
                Some(v) => out.push(v),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }
}

/// Which fields a body requires: the seed's "Required: Yes" column, with
/// the lenient exceptions documented on each field.
#[doc(hidden)]
#[macro_export]
macro_rules! __body_field_ty {
    (req $ty:ty) => { $ty };
    (opt $ty:ty) => { Option<$ty> };
    (succ $ty:ty) => { Option<$ty> };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __body_field_finish {
    (req $field:ident $json:literal $ctx:ident) => {
        if $field.is_none() {
            $ctx.at($json, |ctx| ctx.problem($crate::validate::Reason::Missing));
        }
    };
    (opt $field:ident $json:literal $ctx:ident) => {};
    (succ $field:ident $json:literal $ctx:ident) => {};
}

#[doc(hidden)]
#[macro_export]
macro_rules! __body_field_unwrap {
    (req $field:ident) => {
        let $field = $field?;
    };
    (opt $field:ident) => {};
    (succ $field:ident) => {};
}

#[doc(hidden)]
#[macro_export]
macro_rules! __body_field_check {
    (succ $body:ident $field:ident $json:literal $ctx:ident) => {
        if $body.$field.is_none() && $body.status.is_success() {
            $ctx.at($json, |ctx| {
                ctx.problem($crate::validate::Reason::MissingOnSuccess)
            });
        }
    };
    ($other:ident $body:ident $field:ident $json:literal $ctx:ident) => {};
}

#[doc(hidden)]
#[macro_export]
macro_rules! __body_field_ser {
    (req $map:ident $self:ident $field:ident $json:literal) => {
        $map.serialize_entry($json, &$self.$field)?;
    };
    ($other:ident $map:ident $self:ident $field:ident $json:literal) => {
        if let Some(value) = &$self.$field {
            $map.serialize_entry($json, value)?;
        }
    };
}

/// Declares a typed message body from a field table.
///
/// Each field line is `rule name: Type = "JsonName" | "alias"…,` where
/// `rule` is `req` (required), `opt` (optional) or `succ` (required only
/// when the body's `status` is a success: outputs such as URLs that a
/// failed job cannot have). The generated struct has one public field per
/// line plus `extra`, the unknown fields kept verbatim; it implements
/// [`FromJson`] (collecting every problem) and `Serialize` (writing the
/// fields back under their canonical names, then `extra`).
#[macro_export]
macro_rules! body {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $(
                $(#[$fmeta:meta])*
                $rule:ident $field:ident : $ty:ty = $json:literal $(| $alias:literal)* ,
            )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq)]
        pub struct $name {
            $(
                $(#[$fmeta])*
                pub $field: $crate::__body_field_ty!($rule $ty),
            )*
            /// Fields not in the seed's table, kept verbatim.
            pub extra: serde_json::Map<String, serde_json::Value>,
        }

        impl $crate::event::field::FromJson for $name {
            fn from_json(
                value: serde_json::Value,
                ctx: &mut $crate::event::field::Ctx,
            ) -> Option<Self> {
                let mut members = $crate::event::field::members(
                    $crate::event::field::expect_object(value, ctx)?,
                );
                let mut ok = true;
                $(
                    let $field = $crate::event::field::take::<$ty>(&mut members, &[$json $(, $alias)*], ctx);
                    $crate::__body_field_finish!($rule $field $json ctx);
                    let $field: Option<$ty> = match $field {
                        None => None,
                        Some(None) => { ok = false; None }
                        Some(some) => some,
                    };
                )*
                if !ok {
                    return None;
                }
                $( $crate::__body_field_unwrap!($rule $field); )*
                let body = $name { $($field,)* extra: $crate::event::field::rest(members) };
                let before = ctx.problem_count();
                $( $crate::__body_field_check!($rule body $field $json ctx); )*
                (ctx.problem_count() == before).then_some(body)
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                use serde::ser::SerializeMap;
                let mut map = serializer.serialize_map(None)?;
                $( $crate::__body_field_ser!($rule map self $field $json); )*
                for (key, value) in &self.extra {
                    map.serialize_entry(key, value)?;
                }
                map.end()
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    crate::body! {
        /// A body with an alias, for the tests below.
        pub struct Probe {
            req job_id: String = "JobId" | "jobId",
            opt note: String = "Note",
        }
    }

    fn probe(value: Value) -> (Option<Probe>, Vec<Problem>) {
        let mut ctx = Ctx::new();
        let body = Probe::from_json(value, &mut ctx);
        (body, ctx.into_problems())
    }

    #[test]
    fn the_first_name_wins_and_the_rest_stay_in_extra_in_key_order() {
        let (body, problems) = probe(serde_json::json!({
            "zeta": 1, "jobId": "alias", "Note": "n", "JobId": "name", "alpha": [2]
        }));
        assert!(problems.is_empty(), "{problems:?}");
        let body = body.unwrap();
        assert_eq!(
            (body.job_id.as_str(), body.note.as_deref()),
            ("name", Some("n"))
        );
        let extra: Vec<&str> = body.extra.keys().map(String::as_str).collect();
        assert_eq!(extra, ["alpha", "jobId", "zeta"]);
        assert_eq!(
            serde_json::to_string(&body).unwrap(),
            r#"{"JobId":"name","Note":"n","alpha":[2],"jobId":"alias","zeta":1}"#
        );
    }

    #[test]
    fn an_alias_alone_is_taken_and_null_means_absent() {
        let (body, _) = probe(serde_json::json!({"jobId": "alias", "Note": null}));
        let body = body.unwrap();
        assert_eq!((body.job_id.as_str(), body.note), ("alias", None));
        assert!(body.extra.is_empty());
        let (body, problems) = probe(serde_json::json!({"JobId": null, "Note": 3}));
        assert!(body.is_none());
        let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(paths, ["/JobId", "/Note"]);
    }

    #[test]
    fn problem_paths_are_json_pointers_with_rfc6901_escapes() {
        let mut ctx = Ctx::new();
        ctx.at("MessageBody", |c| {
            c.at("a/b~c", |c| c.at("0", |c| c.problem(Reason::Missing)));
            c.at("Plain", |c| c.problem(Reason::Missing));
        });
        let paths: Vec<String> = ctx.into_problems().into_iter().map(|p| p.path).collect();
        assert_eq!(paths, ["/MessageBody/a~1b~0c/0", "/MessageBody/Plain"]);
    }
}
