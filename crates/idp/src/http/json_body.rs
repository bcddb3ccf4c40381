//! JSON request bodies of the Authentication API, read with every key once. serde_json keeps
//! the last copy of a repeated key without a word, so `{"client_id":"a",…,"client_id":"b"}`
//! means one thing to a proxy or WAF that reads the first and another to us; form bodies refuse
//! repeated parameters for the same reason (`single_params` in the authorize module).

use serde::de::{self, DeserializeOwned, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use std::cell::RefCell;
use std::collections::HashSet;
use std::fmt;

/// Why a body was refused. Each endpoint words it in its own error shape.
#[derive(Debug)]
pub enum JsonBodyError {
    /// This key appears twice in one object (at any depth).
    DuplicateKey(String),
    /// Not JSON, or not the shape `T` wants.
    Invalid(serde_json::Error),
}

impl fmt::Display for JsonBodyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JsonBodyError::DuplicateKey(k) => write!(f, "the key {k:?} appears more than once"),
            JsonBodyError::Invalid(e) => e.fmt(f),
        }
    }
}

/// `body` as a `T`, once it is known to hold no object with a repeated key.
pub fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, JsonBodyError> {
    let duplicate = RefCell::new(None);
    let mut de = serde_json::Deserializer::from_slice(body);
    let checked = UniqueKeys(&duplicate).deserialize(&mut de).and_then(|()| de.end());
    if let Some(key) = duplicate.into_inner() {
        return Err(JsonBodyError::DuplicateKey(key));
    }
    checked.map_err(JsonBodyError::Invalid)?;
    serde_json::from_slice(body).map_err(JsonBodyError::Invalid)
}

/// Walks a document without keeping it, noting the first repeated key of any object. (The
/// deserializer's own nesting limit bounds the recursion.)
#[derive(Clone, Copy)]
struct UniqueKeys<'a>(&'a RefCell<Option<String>>);

impl<'de> DeserializeSeed<'de> for UniqueKeys<'_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for UniqueKeys<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(self)?.is_some() {}
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if seen.contains(&key) {
                *self.0.borrow_mut() = Some(key);
                return Err(de::Error::custom("duplicate key"));
            }
            seen.insert(key);
            map.next_value_seed(self)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn duplicate(body: &str) -> Option<String> {
        match parse::<Value>(body.as_bytes()) {
            Err(JsonBodyError::DuplicateKey(k)) => Some(k),
            _ => None,
        }
    }

    #[test]
    fn repeated_keys_are_found_at_any_depth() {
        assert_eq!(duplicate(r#"{"a":1,"b":2,"a":3}"#).as_deref(), Some("a"));
        assert_eq!(duplicate(r#"{"m":{"x":1,"x":1}}"#).as_deref(), Some("x"));
        assert_eq!(duplicate(r#"[{"k":1},{"y":[{"z":1,"z":2}]}]"#).as_deref(), Some("z"));
        // Escapes are decoded first: `"\u0061"` is the key `a`.
        assert_eq!(duplicate(r#"{"a":1,"\u0061":2}"#).as_deref(), Some("a"));
    }

    #[test]
    fn distinct_keys_parse_as_usual() {
        let v: Value = parse(br#"{"a":1,"m":{"a":[1,"a",null,true,1.5,-2]},"b":{"a":{}}}"#).unwrap();
        assert_eq!(v["m"]["a"][4], 1.5);
        // The same key in sibling objects is no repetition.
        assert!(parse::<Value>(br#"[{"a":1},{"a":2}]"#).is_ok());
        for bad in ["", "{", r#"{"a":1} x"#, "{'a':1}"] {
            assert!(matches!(parse::<Value>(bad.as_bytes()), Err(JsonBodyError::Invalid(_))), "{bad}");
        }
    }
}
