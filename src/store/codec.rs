//! The on-disk layout of a vendor record, and a view of a stored one that a pass can
//! compare with what the source wants without decoding it.
//!
//! Layout (schema 2): the byte `BINARY`, then postcard `Head` (state, times in
//! microseconds, remote id), then the postcard-encoded fields. Because `Fields` is a
//! sorted map its encoding is canonical, so "were these exact fields pushed?" is a byte
//! comparison: a no-op pass neither allocates nor parses per unchanged record. Records
//! written by schema 1 (JSON, starting with `{`) are still read; every write uses the new
//! layout.

use std::cell::RefCell;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tracing::warn;

use super::StoreError;
use crate::model::{Fields, Known, PersonId, RecordState, VendorRecord};

/// First byte of a record in the binary layout (JSON records start with `{`).
const BINARY: u8 = 0xB1;

#[derive(Serialize, Deserialize)]
struct Head<'a> {
    state: RecordState,
    /// Seconds since 1970 and nanoseconds: exactly what `DateTime<Utc>` holds.
    linked_at: (i64, u32),
    updated_at: (i64, u32),
    #[serde(borrow)]
    remote_id: Option<&'a str>,
}

/// Encodes `record` in the current layout.
///
/// # Errors
/// Only if postcard cannot encode (it can encode every record).
pub fn encode(record: &VendorRecord) -> Result<Vec<u8>, postcard::Error> {
    let head = Head {
        state: record.state,
        linked_at: exact(record.linked_at),
        updated_at: exact(record.updated_at),
        remote_id: record.remote_id.as_deref(),
    };
    let out = postcard::to_extend(&head, vec![BINARY])?;
    postcard::to_extend(&record.fields, out)
}

/// The remote id of an encoded record (either layout), for the account index.
///
/// # Errors
/// What is wrong with the bytes.
pub fn remote_of(value: &[u8]) -> Result<Option<String>, String> {
    match value.split_first() {
        Some((&BINARY, rest)) => postcard::take_from_bytes::<Head<'_>>(rest)
            .map(|(head, _)| head.remote_id.map(String::from))
            .map_err(|e| e.to_string()),
        _ => serde_json::from_slice::<VendorRecord>(value)
            .map(|r| r.remote_id)
            .map_err(|e| e.to_string()),
    }
}

fn exact(t: DateTime<Utc>) -> (i64, u32) {
    (t.timestamp(), t.timestamp_subsec_nanos())
}

/// One stored record as read from sled: its header is parsed, its fields are not (see
/// [`StoredRecord::holds`]).
pub struct StoredRecord {
    key: sled::IVec,
    value: sled::IVec,
    form: Form,
    /// `vendor/NAME`, for messages; shared by every record of one read.
    tree: Arc<str>,
}

enum Form {
    Binary {
        state: RecordState,
        /// Byte range of the remote id in `value`.
        remote: Option<(usize, usize)>,
        fields_at: usize,
    },
    /// A schema 1 record, decoded whole.
    Json(VendorRecord),
}

impl StoredRecord {
    /// # Errors
    /// `Corrupt` naming the key when the key or the header cannot be read.
    pub fn parse(tree: &Arc<str>, key: sled::IVec, value: sled::IVec) -> Result<Self, StoreError> {
        let corrupt = |message: String| StoreError::Corrupt {
            key: format!("{tree}/{}", String::from_utf8_lossy(&key)),
            message,
        };
        if std::str::from_utf8(&key).is_err() {
            return Err(corrupt("the person id is not UTF-8".into()));
        }
        let form = match value.first() {
            Some(&BINARY) => {
                let (head, rest): (Head<'_>, &[u8]) =
                    postcard::take_from_bytes(&value[1..]).map_err(|e| corrupt(e.to_string()))?;
                let base = value.as_ptr() as usize;
                Form::Binary {
                    state: head.state,
                    remote: head
                        .remote_id
                        .map(|r| (r.as_ptr() as usize - base, r.len())),
                    fields_at: rest.as_ptr() as usize - base,
                }
            }
            _ => Form::Json(serde_json::from_slice(&value).map_err(|e| corrupt(e.to_string()))?),
        };
        Ok(Self {
            key,
            value,
            form,
            tree: Arc::clone(tree),
        })
    }

    pub fn person(&self) -> &str {
        // Checked in `parse`.
        std::str::from_utf8(&self.key).unwrap_or_default()
    }

    pub fn state(&self) -> RecordState {
        match &self.form {
            Form::Binary { state, .. } => *state,
            Form::Json(r) => r.state,
        }
    }

    pub fn remote_id(&self) -> Option<&str> {
        match &self.form {
            Form::Binary { remote, .. } => remote.and_then(|(at, len)| {
                // Checked by postcard in `parse` (a `&str` must be UTF-8).
                std::str::from_utf8(&self.value[at..at + len]).ok()
            }),
            Form::Json(r) => r.remote_id.as_deref(),
        }
    }

    /// Whether the fields last pushed are exactly `fields`: a byte comparison against
    /// their encoding, in a buffer reused per thread.
    pub fn holds(&self, fields: &Fields) -> bool {
        thread_local! {
            static BUFFER: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
        }
        match &self.form {
            Form::Binary { fields_at, .. } => BUFFER.with_borrow_mut(|buffer| {
                let mut out = std::mem::take(buffer);
                out.clear();
                match postcard::to_extend(fields, out) {
                    Ok(encoded) => {
                        let same = encoded[..] == self.value[*fields_at..];
                        *buffer = encoded;
                        same
                    }
                    Err(_) => false,
                }
            }),
            Form::Json(r) => r.fields == *fields,
        }
    }

    /// The fields last pushed. Unreadable fields are logged and read as none, so every
    /// wanted field is sent again: the vendor ends up right and the record is rewritten.
    pub fn fields(&self) -> Fields {
        match &self.form {
            Form::Binary { fields_at, .. } => postcard::from_bytes(&self.value[*fields_at..])
                .unwrap_or_else(|error| {
                    warn!(record = %format!("{}/{}", self.tree, self.person()), %error,
                        "Stored fields are unreadable; every field will be sent again.");
                    Fields::new()
                }),
            Form::Json(r) => r.fields.clone(),
        }
    }

    /// The whole record.
    ///
    /// # Errors
    /// `Corrupt` when the fields or times cannot be read.
    pub fn record(&self) -> Result<VendorRecord, StoreError> {
        let fields_at = match &self.form {
            Form::Json(r) => return Ok(r.clone()),
            Form::Binary { fields_at, .. } => *fields_at,
        };
        let corrupt = |message: String| StoreError::Corrupt {
            key: format!("{}/{}", self.tree, self.person()),
            message,
        };
        let (head, _): (Head<'_>, &[u8]) =
            postcard::take_from_bytes(&self.value[1..]).map_err(|e| corrupt(e.to_string()))?;
        let time = |(secs, nanos): (i64, u32)| {
            DateTime::<Utc>::from_timestamp(secs, nanos)
                .ok_or_else(|| corrupt(format!("time {secs}.{nanos:09} is out of range")))
        };
        Ok(VendorRecord {
            remote_id: head.remote_id.map(String::from),
            state: head.state,
            fields: postcard::from_bytes(&self.value[fields_at..])
                .map_err(|e| corrupt(e.to_string()))?,
            linked_at: time(head.linked_at)?,
            updated_at: time(head.updated_at)?,
        })
    }

    /// The person id, owned.
    pub fn person_id(&self) -> PersonId {
        PersonId(self.person().to_string())
    }
}

/// The plan reads stored records through these views without decoding them.
impl Known for StoredRecord {
    fn person(&self) -> &str {
        StoredRecord::person(self)
    }
    fn state(&self) -> RecordState {
        StoredRecord::state(self)
    }
    fn remote_id(&self) -> Option<&str> {
        StoredRecord::remote_id(self)
    }
    fn holds(&self, fields: &Fields) -> bool {
        StoredRecord::holds(self, fields)
    }
    fn fields(&self) -> Fields {
        StoredRecord::fields(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(state: RecordState, remote: Option<&str>) -> VendorRecord {
        let t = DateTime::<Utc>::from_timestamp(1_700_000_000, 123_456_789).expect("time");
        VendorRecord {
            remote_id: remote.map(String::from),
            state,
            fields: [("email", "a@x.io"), ("first_name", "Ann")]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            linked_at: t,
            updated_at: t + chrono::Duration::seconds(5),
        }
    }

    fn stored(r: &VendorRecord) -> StoredRecord {
        let bytes = encode(r).expect("encode");
        StoredRecord::parse(&"vendor/v".into(), "E1".as_bytes().into(), bytes.into())
            .expect("parse")
    }

    #[test]
    fn binary_round_trip_keeps_every_field() {
        for (state, remote) in [
            (RecordState::Active, Some("r-1")),
            (RecordState::Creating, None),
            (RecordState::Deactivated, Some("")),
        ] {
            let r = record(state, remote);
            let s = stored(&r);
            assert_eq!(s.person(), "E1");
            assert_eq!(s.state(), state);
            assert_eq!(s.remote_id(), remote);
            assert_eq!(s.fields(), r.fields);
            assert_eq!(s.record().expect("record"), r);
        }
    }

    #[test]
    fn holds_is_exact_field_equality() {
        let r = record(RecordState::Active, Some("r-1"));
        let s = stored(&r);
        assert!(s.holds(&r.fields));
        let mut changed = r.fields.clone();
        changed.insert("email".into(), "b@x.io".into());
        assert!(!s.holds(&changed));
        let mut fewer = r.fields.clone();
        fewer.remove("first_name");
        assert!(!s.holds(&fewer));
        let mut more = r.fields.clone();
        more.insert("phone".into(), "1".into());
        assert!(!s.holds(&more));
        assert!(!s.holds(&Fields::new()));
    }

    #[test]
    fn schema_1_json_records_are_still_read() {
        let r = record(RecordState::Deactivated, Some("r-9"));
        let json = serde_json::to_vec(&r).expect("json");
        let s = StoredRecord::parse(&"vendor/v".into(), "E1".as_bytes().into(), json.into())
            .expect("parse");
        assert_eq!(s.state(), RecordState::Deactivated);
        assert_eq!(s.remote_id(), Some("r-9"));
        assert!(s.holds(&r.fields));
        assert_eq!(s.record().expect("record"), r);
    }

    #[test]
    fn a_broken_header_names_the_record() {
        let mut bytes = encode(&record(RecordState::Active, Some("r-1"))).expect("encode");
        bytes.truncate(3);
        let err = StoredRecord::parse(
            &"vendor/motive".into(),
            "E7".as_bytes().into(),
            bytes.into(),
        )
        .err()
        .expect("corrupt");
        assert!(err.to_string().contains("vendor/motive/E7"), "{err}");
    }

    #[test]
    fn unreadable_fields_read_as_none_so_everything_is_sent_again() {
        let mut bytes = encode(&record(RecordState::Active, Some("r-1"))).expect("encode");
        bytes.truncate(bytes.len() - 2);
        let s = StoredRecord::parse(&"vendor/v".into(), "E1".as_bytes().into(), bytes.into())
            .expect("header is intact");
        assert!(s.fields().is_empty());
        assert!(s.record().is_err());
    }
}
