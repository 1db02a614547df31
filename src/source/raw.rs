//! One source record's fields as read, before validation (`RawRecord`), and how a JSON
//! record is read straight into one.
//!
//! Reading a file record into a `serde_json::Value` first (a map of owned keys and
//! values, then copied into the person) was three times the cost of a plain typed parse.
//! Here each value is read once into the slot of its field, keeping only what validation
//! needs to name a wrong value ("`active` must be true or false, found a list"), so a
//! record with a wrong-typed field is still one invalid record with its place, never a
//! failed file. Only broken JSON syntax fails the read. `record.rs` decides what is valid.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// A scalar field as read: its text, or what else it was.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) enum Scalar {
    /// Absent or `null`.
    #[default]
    Null,
    Str(String),
    /// A number, as serde_json writes it (an id may be numeric).
    Num(String),
    Bool(bool),
    /// A list or an object, named as in messages ("a list").
    Other(&'static str),
}

/// `groups` as read.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) enum RawGroups {
    #[default]
    Null,
    /// A list whose every element is a non-blank string (trimmed).
    List(Vec<String>),
    /// A list with an element that is not a non-blank string.
    BadList,
    /// One `;`-separated string (CSV and flat sources).
    Str(String),
    Other(&'static str),
}

/// `attributes` as read.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) enum RawAttributes {
    #[default]
    Null,
    /// Name → text (strings as they are, numbers and booleans as text, nulls left out).
    Map(BTreeMap<String, String>),
    /// The first attribute whose value is a list or an object, and what it was.
    Bad(String, &'static str),
    Other(&'static str),
}

/// One record's fields as read. `record::validate` makes it a `Person` or says why not.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct RawRecord {
    pub id: Scalar,
    pub email: Scalar,
    pub username: Scalar,
    pub first_name: Scalar,
    pub last_name: Scalar,
    pub phone: Scalar,
    pub active: Scalar,
    pub groups: RawGroups,
    pub attributes: RawAttributes,
    pub start_date: Scalar,
    pub end_date: Scalar,
    /// The first key that is not a person field.
    pub unknown: Option<String>,
    /// The first key given twice (`attributes.NAME` for an attribute).
    pub duplicate: Option<String>,
    /// What the record was when it was not an object ("a list").
    pub not_object: Option<&'static str>,
}

/// The person fields, in `record::FIELDS` order.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Field {
    Id,
    Email,
    Username,
    FirstName,
    LastName,
    Phone,
    Active,
    Groups,
    Attributes,
    StartDate,
    EndDate,
}

impl Field {
    pub(crate) fn of(name: &str) -> Option<Self> {
        Some(match name {
            "id" => Self::Id,
            "email" => Self::Email,
            "username" => Self::Username,
            "first_name" => Self::FirstName,
            "last_name" => Self::LastName,
            "phone" => Self::Phone,
            "active" => Self::Active,
            "groups" => Self::Groups,
            "attributes" => Self::Attributes,
            "start_date" => Self::StartDate,
            "end_date" => Self::EndDate,
            _ => return None,
        })
    }

    pub(crate) fn name(self) -> &'static str {
        super::FIELDS[self as usize]
    }
}

impl RawRecord {
    /// The slot of a scalar field (`None` for `groups` and `attributes`).
    pub(crate) fn scalar(&mut self, field: Field) -> Option<&mut Scalar> {
        Some(match field {
            Field::Id => &mut self.id,
            Field::Email => &mut self.email,
            Field::Username => &mut self.username,
            Field::FirstName => &mut self.first_name,
            Field::LastName => &mut self.last_name,
            Field::Phone => &mut self.phone,
            Field::Active => &mut self.active,
            Field::StartDate => &mut self.start_date,
            Field::EndDate => &mut self.end_date,
            Field::Groups | Field::Attributes => return None,
        })
    }

    fn duplicate(&mut self, key: impl FnOnce() -> String) {
        if self.duplicate.is_none() {
            self.duplicate = Some(key());
        }
    }
}

/// Reads one JSON value of any shape as a record (`deserialize_any`): an object fills
/// the slots; anything else is remembered as "not an object" and skipped.
pub(crate) struct RecordSeed;

impl<'de> DeserializeSeed<'de> for RecordSeed {
    type Value = RawRecord;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<RawRecord, D::Error> {
        d.deserialize_any(RecordVisitor)
    }
}

struct RecordVisitor;

/// A record that is not an object.
fn not_object(kind: &'static str) -> RawRecord {
    RawRecord {
        not_object: Some(kind),
        ..RawRecord::default()
    }
}

impl<'de> Visitor<'de> for RecordVisitor {
    type Value = RawRecord;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a person record")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawRecord, A::Error> {
        let mut r = RawRecord::default();
        let mut seen = 0u16;
        while let Some(key) = map.next_key_seed(KeySeed)? {
            let Key::Field(field) = key else {
                if let Key::Other(name) = key
                    && r.unknown.is_none()
                {
                    r.unknown = Some(name);
                }
                map.next_value::<IgnoredAny>()?;
                continue;
            };
            let bit = 1u16 << field as u16;
            if seen & bit != 0 {
                r.duplicate(|| field.name().to_string());
            }
            seen |= bit;
            match field {
                Field::Groups => r.groups = map.next_value_seed(GroupsSeed)?,
                Field::Attributes => {
                    let (attributes, duplicate) = map.next_value_seed(AttributesSeed)?;
                    r.attributes = attributes;
                    if let Some(name) = duplicate {
                        r.duplicate(|| format!("attributes.{name}"));
                    }
                }
                _ => {
                    let value = map.next_value_seed(ScalarSeed)?;
                    if let Some(slot) = r.scalar(field) {
                        *slot = value;
                    }
                }
            }
        }
        Ok(r)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<RawRecord, A::Error> {
        drain_seq(seq)?;
        Ok(not_object("a list"))
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<RawRecord, E> {
        Ok(not_object("a string"))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<RawRecord, E> {
        Ok(not_object("a boolean"))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<RawRecord, E> {
        Ok(not_object("a number"))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<RawRecord, E> {
        Ok(not_object("a number"))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<RawRecord, E> {
        Ok(not_object("a number"))
    }

    fn visit_unit<E: de::Error>(self) -> Result<RawRecord, E> {
        Ok(not_object("null"))
    }

    fn visit_none<E: de::Error>(self) -> Result<RawRecord, E> {
        Ok(not_object("null"))
    }
}

fn drain_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<(), A::Error> {
    while seq.next_element::<IgnoredAny>()?.is_some() {}
    Ok(())
}

fn drain_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<(), A::Error> {
    while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
    Ok(())
}

/// A record's key: a person field (no allocation), or another name kept for the message.
enum Key {
    Field(Field),
    Other(String),
}

struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Key;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Key, D::Error> {
        d.deserialize_str(KeySeed)
    }
}

impl Visitor<'_> for KeySeed {
    type Value = Key;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a field name")
    }

    fn visit_str<E: de::Error>(self, name: &str) -> Result<Key, E> {
        Ok(Field::of(name).map_or_else(|| Key::Other(name.to_string()), Key::Field))
    }
}

/// A scalar of any shape; a list or object is skipped and named.
struct ScalarSeed;

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

struct GroupsSeed;

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
struct AttributesSeed;

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
