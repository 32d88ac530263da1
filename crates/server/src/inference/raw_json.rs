//! Same-protocol pass-through edits a request body without re-serializing it: the top-level
//! members are located once (values stay raw text), routing fields are read from them, and
//! the body is rewritten with only the members that change.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;
use std::hash::Hash;

use serde::Deserialize;
use serde::de::{MapAccess, Visitor};
use serde_json::value::RawValue;

/// The top-level members of a JSON object, in order, values as raw JSON text.
pub struct RawObject<'a> {
    members: Vec<(Cow<'a, str>, &'a RawValue)>,
}

/// Why a body is not an acceptable JSON object.
#[derive(Debug, thiserror::Error)]
pub enum RawJsonError {
    #[error("the request body is not valid JSON: {0}")]
    Syntax(String),
    #[error("the request body must be a JSON object")]
    NotAnObject,
    #[error("the member '{0}' appears more than once")]
    Duplicate(String),
    #[error("JSON nesting is too deep (limit is 128 levels)")]
    TooDeep,
}

/// One change to a top-level member.
pub enum Edit<'e> {
    /// Drop the member.
    Remove,
    /// Set (or add) the member to this raw JSON text.
    Set(Cow<'e, str>),
}

impl<'a> RawObject<'a> {
    /// Locates the members. Duplicate top-level keys are refused: the gateway and the
    /// upstream could otherwise disagree about which `model` was asked for.
    pub fn parse(body: &'a [u8]) -> Result<Self, RawJsonError> {
        // Raw values are captured without recursing, so serde_json's nesting limit does not
        // apply to them; the depth is checked here instead.
        if nesting_exceeds(body, MAX_DEPTH) {
            return Err(RawJsonError::TooDeep);
        }
        let members: Members<'a> = serde_json::from_slice(body).map_err(|e| {
            if e.to_string().contains("recursion limit") {
                RawJsonError::TooDeep
            } else if e.classify() == serde_json::error::Category::Data {
                RawJsonError::NotAnObject
            } else {
                RawJsonError::Syntax(e.to_string())
            }
        })?;
        let members = members.0;
        if let Some(key) = first_duplicate(members.iter().map(|(key, _)| key.as_ref())) {
            return Err(RawJsonError::Duplicate(key.to_owned()));
        }
        Ok(Self { members })
    }

    pub fn get(&self, key: &str) -> Option<&'a RawValue> {
        self.members.iter().find(|(k, _)| k == key).map(|(_, v)| *v)
    }

    /// A member that must be a string when present (`null` counts as absent).
    pub fn str(&self, key: &str) -> Result<Option<Cow<'a, str>>, String> {
        match self.get(key) {
            None => Ok(None),
            Some(raw) if raw.get() == "null" => Ok(None),
            Some(raw) => serde_json::from_str::<Cow<'a, str>>(raw.get())
                .map(Some)
                .map_err(|_| format!("'{key}' must be a string")),
        }
    }

    /// A member that must be a boolean when present.
    pub fn bool(&self, key: &str) -> Result<Option<bool>, String> {
        match self.get(key).map(RawValue::get) {
            None | Some("null") => Ok(None),
            Some("true") => Ok(Some(true)),
            Some("false") => Ok(Some(false)),
            Some(_) => Err(format!("'{key}' must be a boolean")),
        }
    }

    /// The body with `edits` applied; untouched members are copied byte for byte.
    pub fn rewrite(&self, edits: &[(&str, Edit<'_>)]) -> Vec<u8> {
        let capacity = self
            .members
            .iter()
            .map(|(k, v)| k.len() + v.get().len() + 4)
            .sum::<usize>()
            + 64;
        let mut out = Vec::with_capacity(capacity);
        out.push(b'{');
        let mut first = true;
        for (key, value) in &self.members {
            let text = match edits.iter().find(|(k, _)| k == key) {
                Some((_, Edit::Remove)) => continue,
                Some((_, Edit::Set(text))) => text.as_ref(),
                None => value.get(),
            };
            push_member(&mut out, &mut first, key, text);
        }
        for (key, edit) in edits {
            if let (Edit::Set(text), None) = (edit, self.get(key)) {
                push_member(&mut out, &mut first, key, text);
            }
        }
        out.push(b'}');
        out
    }
}

fn push_member(out: &mut Vec<u8>, first: &mut bool, key: &str, value: &str) {
    if !std::mem::take(first) {
        out.push(b',');
    }
    // Keys come from parsed JSON or from our own constants; serializing a &str cannot fail.
    out.extend_from_slice(serde_json::to_string(key).unwrap_or_default().as_bytes());
    out.push(b':');
    out.extend_from_slice(value.as_bytes());
}

/// The first key seen twice, in one pass: a body of a million members costs a million set
/// insertions, not the half a trillion comparisons of checking each key against the ones
/// before it.
fn first_duplicate<K: Eq + Hash + Copy>(keys: impl Iterator<Item = K>) -> Option<K> {
    let mut seen = HashSet::with_capacity(keys.size_hint().0);
    keys.into_iter().find(|&key| !seen.insert(key))
}

/// The deepest nesting accepted, as everywhere else in the API.
const MAX_DEPTH: usize = 128;

/// Whether arrays and objects nest deeper than `limit` (brackets inside strings don't
/// count). One pass over the bytes, no allocation.
fn nesting_exceeds(body: &[u8], limit: usize) -> bool {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &byte in body {
        if in_string {
            match (escaped, byte) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > limit {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// JSON text for a string value.
pub fn json_string(value: &str) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "\"\"".to_owned())
}

struct Members<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

#[derive(Deserialize)]
struct Key<'a>(#[serde(borrow)] Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Members<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct MembersVisitor<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for MembersVisitor<'a> {
            type Value = Members<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Members<'a>, M::Error> {
                let mut members = Vec::with_capacity(map.size_hint().unwrap_or(8));
                while let Some((Key(key), value)) = map.next_entry::<Key<'de>, &'de RawValue>()? {
                    members.push((key, value));
                }
                Ok(Members(members))
            }
        }
        d.deserialize_map(MembersVisitor(std::marker::PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_only_the_edited_members_and_keeps_the_rest_verbatim() {
        let body = br#"{"model":"openai/gpt-5", "messages":[{"role":"user","content":"hi \u00e9"}],"provider":"openai","temperature":0.50}"#;
        let object = RawObject::parse(body).unwrap();
        assert_eq!(
            object.str("model").unwrap().as_deref(),
            Some("openai/gpt-5")
        );
        assert_eq!(object.str("provider").unwrap().as_deref(), Some("openai"));
        let out = object.rewrite(&[
            ("model", Edit::Set(json_string("gpt-5").into())),
            ("provider", Edit::Remove),
            (
                "stream_options",
                Edit::Set(r#"{"include_usage":true}"#.into()),
            ),
        ]);
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            r#"{"model":"gpt-5","messages":[{"role":"user","content":"hi \u00e9"}],"temperature":0.50,"stream_options":{"include_usage":true}}"#
        );
    }

    #[test]
    fn refuses_duplicates_non_objects_and_deep_nesting() {
        assert!(matches!(
            RawObject::parse(br#"{"model":"a","model":"b"}"#),
            Err(RawJsonError::Duplicate(k)) if k == "model"
        ));
        assert!(matches!(
            RawObject::parse(b"[1]"),
            Err(RawJsonError::NotAnObject)
        ));
        assert!(matches!(
            RawObject::parse(b"{"),
            Err(RawJsonError::Syntax(_))
        ));
        let deep = format!(r#"{{"a":{}{}}}"#, "[".repeat(200), "]".repeat(200));
        let got = RawObject::parse(deep.as_bytes()).map(|_| ());
        assert!(matches!(got, Err(RawJsonError::TooDeep)), "{got:?}");
        // Exactly at the limit is fine; brackets inside strings do not count.
        let at_limit = format!(r#"{{"a":{}{}}}"#, "[".repeat(127), "]".repeat(127));
        assert!(RawObject::parse(at_limit.as_bytes()).is_ok());
        let in_string = format!(r#"{{"a":"{}\""}}"#, "[".repeat(300));
        assert!(RawObject::parse(in_string.as_bytes()).is_ok());
    }

    /// A key that counts how often it is hashed or compared.
    #[derive(Clone, Copy)]
    struct Counted<'a>(&'a str, &'a std::cell::Cell<usize>);

    impl PartialEq for Counted<'_> {
        fn eq(&self, other: &Self) -> bool {
            self.1.set(self.1.get() + 1);
            self.0 == other.0
        }
    }
    impl Eq for Counted<'_> {}
    impl Hash for Counted<'_> {
        fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
            self.1.set(self.1.get() + 1);
            self.0.hash(state);
        }
    }

    /// A million distinct keys cost about a million key operations (a quadratic check
    /// would make half a trillion comparisons).
    #[test]
    fn duplicate_detection_is_linear_in_the_number_of_keys() {
        const KEYS: usize = 1_000_000;
        let names: Vec<String> = (0..KEYS).map(|i| format!("k{i}")).collect();
        let operations = std::cell::Cell::new(0);
        let keys = names.iter().map(|n| Counted(n, &operations));
        assert!(first_duplicate(keys).is_none());
        assert!(
            operations.get() <= 3 * KEYS,
            "{} key operations for {KEYS} keys",
            operations.get()
        );
        let twice = ["a", "b", "c", "b"].map(|n| Counted(n, &operations));
        assert_eq!(first_duplicate(twice.into_iter()).map(|k| k.0), Some("b"));
    }

    /// The whole parse of a 32 MiB body of a million members costs a small multiple of
    /// parsing a one-member body of the same size (CPU time of this thread, a ratio).
    #[test]
    fn a_million_member_body_costs_a_small_multiple_of_a_one_member_body() {
        let mut many = String::from("{");
        let mut i = 0;
        while many.len() < 32 * 1024 * 1024 - 64 {
            if i > 0 {
                many.push(',');
            }
            many.push_str(&format!("\"k{i:07}\":{i}"));
            i += 1;
        }
        many.push('}');
        assert!(i >= 1_000_000, "{i} members");
        let one = format!("{{\"k\":\"{}\"}}", "x".repeat(many.len() - 8));
        assert_eq!(one.len(), many.len());
        let cost = |body: &str| {
            let start = thread_cpu_time();
            let parsed = RawObject::parse(body.as_bytes()).expect("parses");
            std::hint::black_box(parsed.members.len());
            thread_cpu_time() - start
        };
        let (one_cost, many_cost) = (cost(&one), cost(&many));
        let ratio = many_cost.as_secs_f64() / one_cost.as_secs_f64().max(1e-3);
        assert!(
            ratio < 40.0,
            "a million members cost {many_cost:?}, one member {one_cost:?} (ratio {ratio:.1})"
        );
    }

    fn thread_cpu_time() -> std::time::Duration {
        let mut now = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `now` is a valid, writable timespec.
        unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
        std::time::Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
    }

    #[test]
    fn typed_accessors_report_wrong_types() {
        let object = RawObject::parse(br#"{"stream":"yes","model":5,"provider":null}"#).unwrap();
        assert!(object.bool("stream").is_err());
        assert!(object.str("model").is_err());
        assert_eq!(object.str("provider").unwrap(), None);
    }
}
