//! Reading one posted object strictly: its JSON parsed into a [`Value`] in one pass
//! that also notices a key repeated in the same JSON object, at any depth.
//!
//! RFC 8259 leaves the meaning of repeated keys to each parser: serde_json keeps the
//! last, many others keep the first. An object stored as sent but indexed by its last
//! `id` or `object_marking_refs` would be seen by such a consumer with another id or
//! other markings than the filters saw, so such objects are refused.

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::map::Entry;
use serde_json::{Map, Number, Value};

/// One object's JSON, parsed.
#[derive(Debug)]
pub struct Parsed {
    /// The object (for a repeated key, the first occurrence's value).
    pub value: Value,
    /// The first key found repeated within one JSON object, if any.
    pub duplicate: Option<String>,
    /// Keys repeated in the outermost JSON object (whose values, such as `id`, cannot
    /// be told apart).
    pub ambiguous: Vec<String>,
}

/// Parse `raw` (one JSON value) noting repeated keys.
pub fn parse(raw: &str) -> Result<Parsed, serde_json::Error> {
    let mut found = Found::default();
    let mut de = serde_json::Deserializer::from_str(raw);
    let value = Strict {
        found: &mut found,
        top: true,
    }
    .deserialize(&mut de)?;
    de.end()?;
    Ok(Parsed {
        value,
        duplicate: found.first,
        ambiguous: found.top,
    })
}

#[derive(Default)]
struct Found {
    first: Option<String>,
    top: Vec<String>,
}

/// Builds a [`Value`] like serde_json's own, recording repeated keys in `found`.
struct Strict<'f> {
    found: &'f mut Found,
    /// Whether this value is the outermost one.
    top: bool,
}

impl<'de> DeserializeSeed<'de> for Strict<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Strict<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
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
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
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

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        self.deserialize(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let found = self.found;
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(item) = seq.next_element_seed(Strict {
            found: &mut *found,
            top: false,
        })? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let found = self.found;
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value_seed(Strict {
                found: &mut *found,
                top: false,
            })?;
            // One search of the map per key: a new key is inserted where it was not found.
            match object.entry(key) {
                Entry::Vacant(slot) => {
                    slot.insert(value);
                }
                Entry::Occupied(held) => {
                    let key = held.key();
                    if self.top && !found.top.contains(key) {
                        found.top.push(key.clone());
                    }
                    if found.first.is_none() {
                        found.first = Some(key.clone());
                    }
                }
            }
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_what_serde_json_builds() {
        for raw in [
            r#"{"a":1,"b":[true,null,-5,1.5,"x\u00e9"],"c":{"d":{}},"e":18446744073709551615}"#,
            "[]",
            "\"s\"",
            "1e400",
            "-0.0",
        ] {
            let strict = parse(raw);
            let plain = serde_json::from_str::<Value>(raw);
            match (strict, plain) {
                (Ok(s), Ok(p)) => {
                    assert_eq!(s.value, p, "{raw}");
                    assert_eq!(s.duplicate, None);
                }
                (Err(_), Err(_)) => {}
                (s, p) => panic!("{raw}: {s:?} vs {p:?}"),
            }
        }
    }

    #[test]
    fn repeated_keys_at_any_depth_are_named() {
        let top = parse(r#"{"id":"a--1","x":1,"id":"a--2"}"#).expect("json");
        assert_eq!(top.duplicate.as_deref(), Some("id"));
        assert_eq!(top.ambiguous, vec!["id".to_string()]);
        assert_eq!(top.value["id"], "a--1", "the first is kept");

        let deep = parse(r#"{"id":"a--1","l":[{"k":{"m":1,"m":2}}]}"#).expect("json");
        assert_eq!(deep.duplicate.as_deref(), Some("m"));
        assert!(deep.ambiguous.is_empty());

        let escaped = parse(r#"{"id":1,"\u0069d":2}"#).expect("json");
        assert_eq!(
            escaped.duplicate.as_deref(),
            Some("id"),
            "keys compare unescaped"
        );

        let sibling = parse(r#"{"a":{"k":1},"b":{"k":1}}"#).expect("json");
        assert_eq!(
            sibling.duplicate, None,
            "the same key in two objects is fine"
        );
    }

    #[test]
    fn garbage_and_trailing_bytes_are_errors() {
        assert!(parse("{").is_err());
        assert!(parse("{} x").is_err());
        let deep = "[".repeat(10_000) + &"]".repeat(10_000);
        assert!(
            parse(&deep).is_err(),
            "nesting is bounded, not a stack overflow"
        );
    }
}
