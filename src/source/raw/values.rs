//! The values of a record read in one go: a scalar of any shape, the group list and the
//! attribute map, each keeping what validation needs to name a wrong one.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use super::{RawAttributes, RawGroups, Scalar, drain_map, drain_seq};

/// A scalar of any shape; a list or object is skipped and named.
pub(super) struct ScalarSeed;

impl<'de> DeserializeSeed<'de> for ScalarSeed {
    type Value = Scalar;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Scalar, D::Error> {
        d.deserialize_any(ScalarSeed)
    }
}

impl<'de> Visitor<'de> for ScalarSeed {
    type Value = Scalar;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a value")
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Scalar, E> {
        Ok(Scalar::Str(s.to_string()))
    }

    fn visit_string<E: de::Error>(self, s: String) -> Result<Scalar, E> {
        Ok(Scalar::Str(s))
    }

    fn visit_bool<E: de::Error>(self, b: bool) -> Result<Scalar, E> {
        Ok(Scalar::Bool(b))
    }

    fn visit_i64<E: de::Error>(self, n: i64) -> Result<Scalar, E> {
        Ok(Scalar::Num(serde_json::Number::from(n).to_string()))
    }

    fn visit_u64<E: de::Error>(self, n: u64) -> Result<Scalar, E> {
        Ok(Scalar::Num(serde_json::Number::from(n).to_string()))
    }

    fn visit_f64<E: de::Error>(self, n: f64) -> Result<Scalar, E> {
        // JSON has no NaN or infinity: every f64 read from it is a number.
        Ok(serde_json::Number::from_f64(n)
            .map_or(Scalar::Other("a number"), |n| Scalar::Num(n.to_string())))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Scalar, E> {
        Ok(Scalar::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Scalar, E> {
        Ok(Scalar::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Scalar, A::Error> {
        drain_seq(seq)?;
        Ok(Scalar::Other("a list"))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Scalar, A::Error> {
        drain_map(map)?;
        Ok(Scalar::Other("an object"))
    }
}

/// What a scalar that is not text is called in messages.
pub(crate) fn scalar_kind(s: &Scalar) -> &'static str {
    match s {
        Scalar::Null => "null",
        Scalar::Str(_) => "a string",
        Scalar::Num(_) => "a number",
        Scalar::Bool(_) => "a boolean",
        Scalar::Other(kind) => kind,
    }
}

pub(super) struct GroupsSeed;

impl<'de> DeserializeSeed<'de> for GroupsSeed {
    type Value = RawGroups;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<RawGroups, D::Error> {
        d.deserialize_any(GroupsSeed)
    }
}

impl<'de> Visitor<'de> for GroupsSeed {
    type Value = RawGroups;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of groups")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawGroups, A::Error> {
        let mut groups = Vec::new();
        let mut bad = false;
        while let Some(item) = seq.next_element_seed(ScalarSeed)? {
            match item {
                Scalar::Str(s) if !bad && !s.trim().is_empty() => groups.push(trimmed(s)),
                _ => bad = true,
            }
        }
        Ok(if bad {
            RawGroups::BadList
        } else {
            RawGroups::List(groups)
        })
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<RawGroups, E> {
        Ok(RawGroups::Str(s.to_string()))
    }

    fn visit_unit<E: de::Error>(self) -> Result<RawGroups, E> {
        Ok(RawGroups::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<RawGroups, E> {
        Ok(RawGroups::Null)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<RawGroups, E> {
        Ok(RawGroups::Other("a boolean"))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<RawGroups, E> {
        Ok(RawGroups::Other("a number"))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<RawGroups, E> {
        Ok(RawGroups::Other("a number"))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<RawGroups, E> {
        Ok(RawGroups::Other("a number"))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawGroups, A::Error> {
        drain_map(map)?;
        Ok(RawGroups::Other("an object"))
    }
}

/// `s` without surrounding white space, reusing its allocation when there is none.
pub(crate) fn trimmed(s: String) -> String {
    if s.len() == s.trim().len() {
        s
    } else {
        s.trim().to_string()
    }
}

/// `attributes`, with the first attribute name given twice.
pub(super) struct AttributesSeed;

impl<'de> DeserializeSeed<'de> for AttributesSeed {
    type Value = (RawAttributes, Option<String>);

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(AttributesSeed)
    }
}

impl<'de> Visitor<'de> for AttributesSeed {
    type Value = (RawAttributes, Option<String>);

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object of attributes")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        // Nulls too, so that a name given twice is seen even when one of them is null.
        let mut all: BTreeMap<String, Option<String>> = BTreeMap::new();
        let mut bad = None;
        let mut duplicate = None;
        while let Some(name) = map.next_key::<String>()? {
            let value = match map.next_value_seed(ScalarSeed)? {
                Scalar::Null => None,
                Scalar::Str(s) | Scalar::Num(s) => Some(s),
                Scalar::Bool(b) => Some(b.to_string()),
                Scalar::Other(kind) => {
                    if bad.is_none() {
                        bad = Some((name.clone(), kind));
                    }
                    None
                }
            };
            if all.contains_key(&name) {
                duplicate.get_or_insert_with(|| name.clone());
            }
            all.insert(name, value);
        }
        let attributes = match bad {
            Some((name, kind)) => RawAttributes::Bad(name, kind),
            None => RawAttributes::Map(
                all.into_iter()
                    .filter_map(|(name, value)| Some((name, value?)))
                    .collect(),
            ),
        };
        Ok((attributes, duplicate))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok((RawAttributes::Null, None))
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok((RawAttributes::Null, None))
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok((RawAttributes::Other("a string"), None))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok((RawAttributes::Other("a boolean"), None))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok((RawAttributes::Other("a number"), None))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok((RawAttributes::Other("a number"), None))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok((RawAttributes::Other("a number"), None))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        drain_seq(seq)?;
        Ok((RawAttributes::Other("a list"), None))
    }
}
