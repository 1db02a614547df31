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

mod values;

use values::{AttributesSeed, GroupsSeed, ScalarSeed};
pub(crate) use values::{scalar_kind, trimmed};

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
