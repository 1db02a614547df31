//! The no-op fast path: a vendor whose last plan had no operation is not planned again
//! while nothing that plan depended on has changed; its last plan (what was unchanged,
//! skipped and why) is reported again instead.
//!
//! A plan is a pure function of (see `plan_vendor`):
//! - the people and the invalid records the source gave (every field: `Person: Hash`),
//! - the configuration (the whole `Settings` and the vendor's own, as their `Debug` shows
//!   them: secrets redacted, which no plan reads) and the roster build that reads it
//!   (version, and the size and time of the running executable, so a rebuilt binary never
//!   trusts an old memo),
//! - the vendor's records in the store,
//! - the clock, only through date rules.
//!
//! The memo keeps a digest of the first two (`inputs`), the vendor's generation read
//! before planning (bumped before every write to its records, by any command or process:
//! `store::memo`), and the first moment a date rule changes the plan (`due`). It is used
//! only when all three still hold, so it can only stand for the plan a full planning
//! would make. It is kept only for a plan with no operation, made from the store (never
//! by `--full`, whose plan is made from records corrected to the vendor's listing), and
//! never by a dry run (which writes nothing). Failed operations are never skipped: their
//! plan had operations, so no memo stands for it.

use std::hash::{Hash, Hasher};
use std::sync::OnceLock;

use chrono::{DateTime, Utc};

use crate::model::{InvalidRecord, Person};
use crate::plan::Plan;
use crate::settings::Settings;
use crate::store::{PlanMemo, Store, StoreError};
use crate::vendor::VendorSettings;

/// A digest of the source's people and invalid records, in person-id order.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct People([u8; 32]);

/// `people` sorted by id, as planning sees them.
pub fn people(sorted: &[&Person], invalid: &[InvalidRecord]) -> People {
    let mut d = Digest::default();
    sorted.len().hash(&mut d);
    for p in sorted {
        p.hash(&mut d);
    }
    invalid.hash(&mut d);
    People(*d.finish_hash().as_bytes())
}

/// The inputs of one vendor's plan besides its records and the clock, in hex; `None`
/// when the running build cannot be told apart from another (no memo then).
pub fn inputs(people: People, settings: &Settings, vendor: &VendorSettings) -> Option<String> {
    Some(inputs_of(build()?, people, settings, vendor))
}

fn inputs_of(build: &str, people: People, settings: &Settings, vendor: &VendorSettings) -> String {
    let mut d = Digest::default();
    "roster plan memo 1".hash(&mut d);
    build.hash(&mut d);
    format!("{settings:?}").hash(&mut d);
    format!("{vendor:?}").hash(&mut d);
    people.0.hash(&mut d);
    d.finish_hash().to_hex().to_string()
}

/// The last plan, when its memo still stands for this one (see the module comment).
///
/// # Errors
/// Store failures.
pub fn recall(
    store: &Store,
    vendor: &str,
    inputs: &str,
    now: DateTime<Utc>,
) -> Result<Option<Plan>, StoreError> {
    let Some(memo) = store.plan_memo(vendor)? else {
        return Ok(None);
    };
    if memo.inputs != inputs
        || memo.generation != store.generation(vendor)?
        || memo.due.is_some_and(|due| now >= due)
    {
        return Ok(None);
    }
    // Every field of the plan: a field added to `Plan` must be kept in the memo too (or
    // the memo not used when it matters), which this literal makes the compiler ask.
    Ok(Some(Plan {
        ops: Vec::new(),
        unchanged: memo.unchanged,
        skipped: memo.skipped,
        linked: memo.linked,
        conflicts: memo.conflicts,
        next_due: memo.due,
        // Never asked for here: `plan --upcoming` plans in full.
        upcoming: Vec::new(),
    }))
}

/// Keeps a plan made in full from `generation`'s records as the vendor's memo when it
/// has no operation; forgets the memo otherwise. The memo lapses at the plan's
/// `next_due`: when a start or end date next changes what this vendor should hold for
/// anyone (the plan is stale by the clock alone from then on).
///
/// # Errors
/// Store failures.
pub fn keep(
    store: &Store,
    vendor: &str,
    inputs: Option<String>,
    generation: u64,
    plan: &Plan,
) -> Result<(), StoreError> {
    let memo = inputs
        .filter(|_| plan.ops.is_empty())
        .map(|inputs| PlanMemo {
            inputs,
            generation,
            due: plan.next_due,
            unchanged: plan.unchanged,
            linked: plan.linked,
            skipped: plan.skipped.clone(),
            conflicts: plan.conflicts.clone(),
        });
    if memo.is_none() && store.plan_memo(vendor)?.is_none() {
        return Ok(());
    }
    store.set_plan_memo(vendor, memo.as_ref())
}

/// What tells this build of roster from another: its version, and the size and
/// modification time of the running executable.
fn build() -> Option<&'static str> {
    static BUILD: OnceLock<Option<String>> = OnceLock::new();
    BUILD
        .get_or_init(|| {
            let exe = std::env::current_exe().ok()?;
            let meta = std::fs::metadata(exe).ok()?;
            let modified = meta
                .modified()
                .ok()?
                .duration_since(std::time::UNIX_EPOCH)
                .ok()?;
            Some(format!(
                "{} {} {}",
                env!("CARGO_PKG_VERSION"),
                meta.len(),
                modified.as_nanos()
            ))
        })
        .as_deref()
}

/// `Hash` into BLAKE3, buffered: hashing a person writes many small pieces.
struct Digest {
    hasher: blake3::Hasher,
    buf: Vec<u8>,
}

impl Default for Digest {
    fn default() -> Self {
        Self {
            hasher: blake3::Hasher::new(),
            buf: Vec::with_capacity(1 << 16),
        }
    }
}

impl Digest {
    fn finish_hash(mut self) -> blake3::Hash {
        self.hasher.update(&self.buf);
        self.hasher.finalize()
    }
}

impl Hasher for Digest {
    fn write(&mut self, bytes: &[u8]) {
        if self.buf.len() + bytes.len() > self.buf.capacity() {
            self.hasher.update(&self.buf);
            self.buf.clear();
        }
        if bytes.len() > self.buf.capacity() {
            self.hasher.update(bytes);
        } else {
            self.buf.extend_from_slice(bytes);
        }
    }

    /// Not used: the digest is `finish_hash`.
    fn finish(&self) -> u64 {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_of_a_person_and_every_invalid_record_counts() {
        let base = Person {
            email: Some("a@b.io".into()),
            groups: ["drivers"].into_iter().collect(),
            ..Person::new("E1")
        };
        let digest = |p: &Person, invalid: &[InvalidRecord]| people(&[p], invalid);
        let d0 = digest(&base, &[]);
        assert!(d0 == digest(&base.clone(), &[]), "deterministic");
        let changes: Vec<fn(&mut Person)> = vec![
            |p| p.id = "E2".into(),
            |p| p.email = Some("c@b.io".into()),
            |p| p.username = Some("u".into()),
            |p| p.first_name = Some("F".into()),
            |p| p.last_name = Some("L".into()),
            |p| p.phone = Some("1".into()),
            |p| p.active = false,
            |p| p.groups = ["drivers", "ops"].into_iter().collect(),
            |p| {
                p.attributes.insert("motive.role".into(), "admin".into());
            },
        ];
        for (i, change) in changes.iter().enumerate() {
            let mut p = base.clone();
            change(&mut p);
            assert!(digest(&p, &[]) != d0, "change {i} not seen");
        }
        // Field boundaries count: "ab" + "" is not "a" + "b".
        let mut a = base.clone();
        a.first_name = Some("ab".into());
        a.last_name = None;
        let mut b = base.clone();
        b.first_name = Some("a".into());
        b.last_name = Some("b".into());
        assert!(digest(&a, &[]) != digest(&b, &[]));
        let held = InvalidRecord {
            location: "line 3".into(),
            id: Some("E9".into()),
            email: None,
            message: "malformed email".into(),
        };
        assert!(digest(&base, std::slice::from_ref(&held)) != d0);
        let by_email = InvalidRecord {
            id: None,
            email: Some("x@y.io".into()),
            ..held
        };
        assert!(digest(&base, &[by_email]) != digest(&base, &[]));
    }

    #[test]
    fn another_build_or_config_is_another_input() {
        let text = "state_dir = \"s\"\n[source]\ntype = \"file\"\npath = \"p.json\"\n\
                    [vendors.m]\ntype = \"motive\"\napi_key = \"k\"\n";
        let settings =
            crate::settings::load_str(text, std::path::Path::new("/"), Vec::new()).expect("config");
        let vendor = &settings.vendors["m"];
        let p = people(&[], &[]);
        let base = inputs_of("0.1.0 1 2", p, &settings, vendor);
        assert_eq!(base, inputs_of("0.1.0 1 2", p, &settings, vendor));
        assert_ne!(
            base,
            inputs_of("0.1.1 1 2", p, &settings, vendor),
            "upgrade"
        );
        assert_ne!(
            base,
            inputs_of("0.1.0 1 3", p, &settings, vendor),
            "rebuilt"
        );
        let other = text.replace("api_key = \"k\"", "api_key = \"k\"\non_remove = \"delete\"");
        let other = crate::settings::load_str(&other, std::path::Path::new("/"), Vec::new())
            .expect("config");
        assert_ne!(base, inputs_of("0.1.0 1 2", p, &other, &other.vendors["m"]));
        // A secret is redacted: changing it alone changes no plan and no input.
        let key = text.replace("api_key = \"k\"", "api_key = \"k2\"");
        let key =
            crate::settings::load_str(&key, std::path::Path::new("/"), Vec::new()).expect("config");
        assert_eq!(base, inputs_of("0.1.0 1 2", p, &key, &key.vendors["m"]));
        assert!(build().is_some(), "a test binary has a size and a time");
    }

    #[test]
    fn a_long_stream_digests_the_same_however_it_is_written() {
        let mut one = Digest::default();
        let mut many = Digest::default();
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        one.write(&data);
        for chunk in data.chunks(7) {
            many.write(chunk);
        }
        assert_eq!(one.finish_hash(), many.finish_hash());
        assert_eq!(
            {
                let mut d = Digest::default();
                d.write(&data);
                d.finish_hash()
            },
            blake3::hash(&data)
        );
    }
}
