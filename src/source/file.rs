//! The file source: a JSON array, JSON lines, or CSV, chosen by the file's extension.
//!
//! A file that cannot be opened or whose overall structure is broken (not an array, a
//! CSV header with an unknown column) fails the whole read. A single bad record is
//! reported with its place and left out.

use std::path::{Path, PathBuf};

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde::de::{DeserializeSeed, Deserializer as _};

use crate::config::ConfigError;

use super::json_array;
use super::raw::{Field, RawAttributes, RawGroups, RawRecord, RecordSeed, Scalar};
use super::record::validate;
use super::{Build, FIELDS, Place, RecordError, Snapshot, SnapshotBuilder, Source, SourceError};

pub struct FileSource {
    path: PathBuf,
}

/// The `[source]` keys of `type = "file"`.
#[derive(Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// `.json` (an array), `.jsonl`/`.ndjson`, or `.csv`.
    path: PathBuf,
}

impl FileSource {
    pub fn new(path: PathBuf) -> Self {
        Self { path }
    }

    /// # Errors
    /// A missing `path` or an unknown key.
    pub fn from_options(o: &Options, b: &Build) -> Result<Self, ConfigError> {
        if format_of(&o.path).is_none() {
            return Err(ConfigError::invalid(
                "source.path",
                format!(
                    "{} has an unknown extension (expected .json, .jsonl, .ndjson or .csv)",
                    o.path.display()
                ),
            ));
        }
        Ok(Self::new(b.path(&o.path)))
    }
}

#[async_trait]
impl Source for FileSource {
    async fn fetch(&self, _budget: &crate::budget::Budget) -> Result<Snapshot, SourceError> {
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || read_file(&path))
            .await
            .map_err(|error| SourceError::Unreadable {
                path: self.path.display().to_string(),
                message: error.to_string(),
            })?
    }

    fn describe(&self) -> String {
        format!("file {}", self.path.display())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    JsonArray,
    JsonLines,
    Csv,
}

fn format_of(path: &Path) -> Option<Format> {
    match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
        "json" => Some(Format::JsonArray),
        "jsonl" | "ndjson" => Some(Format::JsonLines),
        "csv" => Some(Format::Csv),
        _ => None,
    }
}

/// Reads and parses a whole source file.
///
/// The file is parsed as it is read, never held whole: at a million people the text
/// alone is some 200 MB, next to the people parsed from it.
///
/// # Errors
/// The file cannot be read, has an unknown extension, or is structurally broken.
pub fn read_file(path: &Path) -> Result<Snapshot, SourceError> {
    let shown = path.display().to_string();
    let format = format_of(path).ok_or_else(|| SourceError::Unreadable {
        path: shown.clone(),
        message: "unknown extension (expected .json, .jsonl or .csv)".into(),
    })?;
    let file = std::fs::File::open(path).map_err(|error| SourceError::Unreadable {
        path: shown.clone(),
        message: error.to_string(),
    })?;
    let reader = std::io::BufReader::with_capacity(1 << 20, file);
    let builder = parse(reader, format).map_err(|e| match e {
        ReadError::Io(message) => SourceError::Unreadable {
            path: shown,
            message,
        },
        ReadError::Malformed(message) => SourceError::Malformed {
            path: shown,
            message,
        },
    })?;
    Ok(builder.finish())
}

/// Why a read stopped: the file could not be read, or its structure is broken.
#[derive(Debug)]
enum ReadError {
    Io(String),
    Malformed(String),
}

impl ReadError {
    fn json(e: &serde_json::Error) -> Self {
        match e.classify() {
            serde_json::error::Category::Io => Self::Io(e.to_string()),
            serde_json::error::Category::Data => Self::Malformed(e.to_string()),
            _ => Self::Malformed(format!("not valid JSON: {e}")),
        }
    }
}

fn parse(
    mut reader: impl std::io::BufRead + std::io::Seek,
    format: Format,
) -> Result<SnapshotBuilder, ReadError> {
    skip_bom(&mut reader)?;
    if format == Format::JsonArray {
        // Element by element from blocks of the file, unless the split meets something
        // unusual: then from the start again, by serde_json's own reader.
        let mut builder = SnapshotBuilder::default();
        let mut i = 0;
        let complete = json_array::each_element(&mut reader, |element| {
            // Checked as UTF-8 at once, not string by string as a slice would be.
            let Ok(text) = std::str::from_utf8(element) else {
                return false;
            };
            let mut de = serde_json::Deserializer::from_str(text);
            match RecordSeed
                .deserialize(&mut de)
                .and_then(|r| de.end().map(|()| r))
            {
                Ok(r) => {
                    builder.add(Place::Element(i), validate(r));
                    i += 1;
                    true
                }
                Err(_) => false,
            }
        })
        .map_err(|e| ReadError::Io(e.to_string()))?;
        if complete {
            return Ok(builder);
        }
        reader
            .seek(std::io::SeekFrom::Start(0))
            .map_err(|e| ReadError::Io(e.to_string()))?;
        skip_bom(&mut reader)?;
    }
    let mut builder = SnapshotBuilder::default();
    // Each record becomes a `Person` as soon as it is read: the whole file is never held,
    // nor any record as a JSON tree (see `raw`).
    let mut add = |location: Place, raw: Result<RawRecord, String>| {
        let parsed = raw
            .map_err(|message| RecordError {
                id: None,
                email: None,
                message,
            })
            .and_then(validate);
        builder.add(location, parsed);
    };
    match format {
        Format::JsonArray => {
            let mut de = serde_json::Deserializer::from_reader(reader);
            de.deserialize_any(EachElement(&mut add))
                .map_err(|e| ReadError::json(&e))?;
            de.end().map_err(|e| ReadError::json(&e))?;
        }
        Format::JsonLines => {
            for (i, l) in reader.lines().enumerate() {
                let l = l.map_err(|e| match e.kind() {
                    std::io::ErrorKind::InvalidData => {
                        ReadError::Malformed(format!("line {} is not UTF-8", i + 1))
                    }
                    _ => ReadError::Io(e.to_string()),
                })?;
                if l.trim().is_empty() {
                    continue;
                }
                add(Place::Line(i + 1), json_line(&l));
            }
        }
        Format::Csv => csv_records(reader, &mut add)?,
    }
    Ok(builder)
}

/// A UTF-8 byte order mark is not part of the text (editors on Windows write one).
fn skip_bom(reader: &mut impl std::io::BufRead) -> Result<(), ReadError> {
    const BOM: &[u8] = b"\xEF\xBB\xBF";
    let start = reader
        .fill_buf()
        .map_err(|e| ReadError::Io(e.to_string()))?;
    if start.starts_with(BOM) {
        reader.consume(BOM.len());
    }
    Ok(())
}

/// One JSON line as a record; broken JSON makes that line invalid, not the file.
fn json_line(line: &str) -> Result<RawRecord, String> {
    let mut de = serde_json::Deserializer::from_str(line);
    RecordSeed
        .deserialize(&mut de)
        .and_then(|r| de.end().map(|()| r))
        .map_err(|e| format!("not valid JSON: {e}"))
}

/// Visits a JSON array, handing each element to the callback with its place.
struct EachElement<'f, F>(&'f mut F);

impl<'de, F: FnMut(Place, Result<RawRecord, String>)> serde::de::Visitor<'de>
    for EachElement<'_, F>
{
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON array of people")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut i = 0usize;
        while let Some(r) = seq.next_element_seed(RecordSeed)? {
            (self.0)(Place::Element(i), Ok(r));
            i += 1;
        }
        Ok(())
    }
}

/// CSV columns: every person field but `attributes`, which comes as `attributes.NAME`.
fn csv_columns() -> impl Iterator<Item = &'static str> {
    FIELDS.iter().copied().filter(|f| *f != "attributes")
}

/// Where a CSV column goes.
enum Column {
    Field(Field),
    Attribute(String),
}

/// The header's columns; an unknown or repeated column fails the whole file (every row
/// would be read wrong).
fn csv_header(headers: &csv::StringRecord) -> Result<Vec<Column>, ReadError> {
    let mut columns = Vec::with_capacity(headers.len());
    for (i, h) in headers.iter().enumerate() {
        if headers.iter().take(i).any(|earlier| earlier == h) {
            return Err(ReadError::Malformed(format!(
                "duplicate CSV column `{h}` (columns {} and {}); which one is meant cannot be \
                 known",
                headers.iter().position(|e| e == h).map_or(0, |p| p + 1),
                i + 1
            )));
        }
        columns.push(match h.strip_prefix("attributes.") {
            Some(name) => Column::Attribute(name.to_string()),
            None => match Field::of(h).filter(|f| *f != Field::Attributes) {
                Some(field) => Column::Field(field),
                None => {
                    return Err(ReadError::Malformed(format!(
                        "unknown CSV column `{h}` (expected {} or attributes.NAME)",
                        csv_columns().collect::<Vec<_>>().join(", ")
                    )));
                }
            },
        });
    }
    Ok(columns)
}

/// Hands each CSV row to `add` with its place, as the person fields it fills (an empty
/// cell is an absent field); a row that could not even be read comes as an error text.
fn csv_records(
    reader: impl std::io::Read,
    add: &mut impl FnMut(Place, Result<RawRecord, String>),
) -> Result<(), ReadError> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(reader);
    let headers = reader
        .headers()
        .map_err(|e| ReadError::Malformed(format!("cannot read the CSV header: {e}")))?;
    let columns = csv_header(headers)?;
    for row in reader.records() {
        match row {
            Err(e) if matches!(e.kind(), csv::ErrorKind::Io(_)) => {
                return Err(ReadError::Io(e.to_string()));
            }
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                add(
                    Place::Line(line as usize),
                    Err(format!("malformed CSV row: {e}")),
                );
            }
            Ok(row) => {
                let line = row.position().map_or(0, |p| p.line());
                let mut r = RawRecord::default();
                let mut attributes = BTreeMap::new();
                for (column, cell) in columns.iter().zip(row.iter()) {
                    if cell.is_empty() {
                        continue;
                    }
                    match column {
                        Column::Attribute(name) => {
                            attributes.insert(name.clone(), cell.to_string());
                        }
                        Column::Field(Field::Groups) => r.groups = RawGroups::Str(cell.into()),
                        Column::Field(field) => {
                            if let Some(slot) = r.scalar(*field) {
                                *slot = Scalar::Str(cell.to_string());
                            }
                        }
                    }
                }
                if !attributes.is_empty() {
                    r.attributes = RawAttributes::Map(attributes);
                }
                add(Place::Line(line as usize), Ok(r));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str, format: Format) -> Result<Snapshot, String> {
        parse(std::io::Cursor::new(text.as_bytes()), format)
            .map(SnapshotBuilder::finish)
            .map_err(|e| format!("{e:?}"))
    }

    fn ids(s: &Snapshot) -> Vec<&str> {
        s.people.iter().map(|p| p.id.as_str()).collect()
    }

    #[test]
    fn json_array_with_bad_and_duplicate_records() {
        let s = read(
            r#"[{"id":"1","email":"a@b.io"},{"email":"x@y.io"},{"id":"2"},{"id":"2","first_name":"B"}]"#,
            Format::JsonArray,
        )
        .expect("parses");
        assert_eq!(ids(&s), ["1"]);
        assert_eq!(s.invalid.len(), 3);
        assert!(s.invalid.iter().any(|r| r.location == "record 2 (index 1)"
            && r.message.contains("missing `id`")
            && r.email.as_deref() == Some("x@y.io")));
        assert!(
            s.invalid
                .iter()
                .any(|r| r.message.contains("duplicate id `2`"))
        );
    }

    #[test]
    fn json_syntax_error_fails_whole_source() {
        assert!(read(r#"[{"id":"1"},"#, Format::JsonArray).is_err());
        assert!(read(r#"{"id":"1"}"#, Format::JsonArray).is_err());
    }

    /// A syntax error is serde_json's own verdict on the whole file, named at its line
    /// and column in the file (not in the element), and nothing read before it counts.
    #[test]
    fn json_syntax_errors_are_named_at_their_place_in_the_file() {
        let e =
            read("[\n{\"id\":\"1\"},\n{\"id\" \"2\"}\n]", Format::JsonArray).expect_err("broken");
        assert!(e.contains("expected `:` at line 3 column 7"), "{e}");
        let e = read("[{\"id\":\"1\"},]", Format::JsonArray).expect_err("trailing comma");
        assert!(e.contains("trailing comma"), "{e}");
        let e = read("[{\"id\":\"1\"}] [", Format::JsonArray).expect_err("trailing text");
        assert!(e.contains("trailing characters"), "{e}");
        let e = read("[{\"id\":\"1\"}", Format::JsonArray).expect_err("cut short");
        assert!(e.contains("EOF"), "{e}");
    }

    #[test]
    fn jsonl_reports_line_numbers() {
        let s = read(
            "{\"id\":\"1\"}\n\n{oops\n{\"id\":\"3\",\"active\":\"x\"}\n",
            Format::JsonLines,
        )
        .expect("parses");
        assert_eq!(ids(&s), ["1"]);
        let locs: Vec<&str> = s.invalid.iter().map(|r| r.location.as_str()).collect();
        assert_eq!(locs, ["line 3", "line 4"]);
        assert_eq!(s.invalid[1].id.as_deref(), Some("3"));
    }

    #[test]
    fn csv_maps_groups_and_attributes() {
        let s = read(
            "id,email,active,groups,attributes.motive.eld_mode\n\
             1,a@b.io,true,drivers;ops,logs\n\
             2,bad-email,,,\n",
            Format::Csv,
        )
        .expect("parses");
        assert_eq!(ids(&s), ["1"]);
        let p = &s.people[0];
        assert!(p.groups.contains("ops"));
        assert_eq!(p.attributes["motive.eld_mode"], "logs");
        assert_eq!(s.invalid[0].location, "line 3");
        assert!(s.invalid[0].message.contains("malformed email"));
    }

    #[test]
    fn csv_unknown_column_fails_whole_source() {
        let e = read("id,frist_name\n1,x\n", Format::Csv).expect_err("refused");
        assert!(e.contains("frist_name"));
    }

    /// What `parse_record` (every other source's way in) makes of the same record.
    fn via_value(
        text: &str,
    ) -> Result<crate::model::Person, (Option<String>, Option<String>, String)> {
        let value: serde_json::Value = serde_json::from_str(text).expect("json");
        super::super::parse_record(&value).map_err(|e| (e.id, e.email, e.message))
    }

    /// The typed parse says exactly what the `Value` route says, record by record: the
    /// same person, or the same message with the same salvaged id and email.
    #[test]
    fn typed_parse_agrees_with_parse_record_on_every_field_shape() {
        let records = [
            r#"{"id":" E1 ","email":" a@b.io ","username":"ann","first_name":"Ann","last_name":"Lee","phone":"+1","active":false,"groups":[" drivers ","ops","ops"],"attributes":{"motive.role":"driver","n":3,"f":1.5,"b":true,"z":null}}"#,
            r#"{"id":42,"groups":"a; b;;"}"#,
            r#"{"id":-7,"active":"no"}"#,
            r#"{"id":1.5}"#,
            r#"{"id":"1","active":"YES","groups":null,"attributes":null,"phone":null}"#,
            r#"{"email":"a@b.io"}"#,
            r#"{"id":null}"#,
            r#"{"id":"  "}"#,
            r#"{"id":true,"email":"x@y.io"}"#,
            r#"{"id":["1"]}"#,
            r#"{"id":{"v":1}}"#,
            r#"{"id":"1","email":"nope"}"#,
            r#"{"id":"1","email":"a@b"}"#,
            r#"{"id":"1","email":7}"#,
            r#"{"id":"1","email":"  "}"#,
            r#"{"id":"1","active":"maybe"}"#,
            r#"{"id":"1","active":3}"#,
            r#"{"id":"1","active":[true]}"#,
            r#"{"id":"1","groups":["a",""]}"#,
            r#"{"id":"1","groups":["a",1]}"#,
            r#"{"id":"1","groups":{"a":1}}"#,
            r#"{"id":"1","groups":7}"#,
            r#"{"id":"1","attributes":{"a":[1]}}"#,
            r#"{"id":"1","attributes":{"a":{"b":1}}}"#,
            r#"{"id":"1","attributes":"x"}"#,
            r#"{"id":"1","attributes":[]}"#,
            r#"{"id":"1","username":false}"#,
            r#"{"id":"1","first_name":{"x":[1,{"y":2}]}}"#,
            r#"{"id":"1","last_name":12}"#,
            r#"{"id":"1","phone":[]}"#,
            r#"{"id":"9","email":"x@y.io","frist_name":"x"}"#,
            r#"[1,2]"#,
            r#""text""#,
            r#"3"#,
            r#"null"#,
            r#"true"#,
        ];
        for text in records {
            let expected = via_value(text);
            for (format, input) in [
                (Format::JsonArray, format!("[{text}]")),
                (Format::JsonLines, format!("{text}\n")),
            ] {
                let s = read(&input, format).expect("parses");
                let got = match (s.people.first(), s.invalid.first()) {
                    (Some(p), None) => Ok(p.clone()),
                    (None, Some(r)) => Err((r.id.clone(), r.email.clone(), r.message.clone())),
                    _ => panic!("{text}: one record, one outcome: {s:?}"),
                };
                assert_eq!(got, expected, "{format:?} {text}");
            }
        }
    }

    #[test]
    fn a_key_given_twice_makes_that_record_invalid_naming_the_key() {
        for (format, text, place) in [
            (
                Format::JsonArray,
                r#"[{"id":"1"},{"id":"2","email":"a@b.io","email":"c@d.io"}]"#,
                "record 2 (index 1)",
            ),
            (
                Format::JsonLines,
                "{\"id\":\"1\"}\n{\"id\":\"2\",\"email\":\"a@b.io\",\"email\":\"c@d.io\"}\n",
                "line 2",
            ),
        ] {
            let s = read(text, format).expect("the file is read");
            assert_eq!(ids(&s), ["1"], "{format:?}");
            let r = &s.invalid[0];
            assert_eq!(r.location, place);
            assert!(r.message.contains("duplicate key `email`"), "{}", r.message);
            // The person is still protected: their id is known.
            assert_eq!(r.id.as_deref(), Some("2"));
        }
        let s = read(
            r#"[{"id":"3","attributes":{"x":"a","y":"b","x":null}}]"#,
            Format::JsonArray,
        )
        .expect("read");
        assert!(
            s.invalid[0]
                .message
                .contains("duplicate key `attributes.x`"),
            "{:?}",
            s.invalid
        );
        let s = read(r#"[{"id":"4","id":"4"}]"#, Format::JsonArray).expect("read");
        assert!(s.invalid[0].message.contains("duplicate key `id`"));
    }

    #[test]
    fn a_csv_column_given_twice_fails_the_whole_file_naming_it() {
        let e = read(
            "id,email,first_name,email\n1,a@b.io,A,c@d.io\n",
            Format::Csv,
        )
        .expect_err("refused");
        assert!(
            e.contains("duplicate CSV column `email`") && e.contains("columns 2 and 4"),
            "{e}"
        );
        let e = read(
            "id,attributes.motive.role,attributes.motive.role\n1,a,b\n",
            Format::Csv,
        )
        .expect_err("refused");
        assert!(e.contains("`attributes.motive.role`"), "{e}");
        // Told apart after trimming, as the rows are read.
        let e = read("id, email,email \n1,a@b.io,c@d.io\n", Format::Csv).expect_err("refused");
        assert!(e.contains("duplicate CSV column `email`"), "{e}");
    }

    #[test]
    fn a_utf8_byte_order_mark_is_not_part_of_the_text() {
        let bom = "\u{feff}";
        for (format, text) in [
            (Format::JsonArray, r#"[{"id":"1","email":"a@b.io"}]"#),
            (Format::JsonLines, "{\"id\":\"1\",\"email\":\"a@b.io\"}\n"),
            (Format::Csv, "id,email\n1,a@b.io\n"),
        ] {
            let s = read(&format!("{bom}{text}"), format).expect("read");
            assert_eq!(ids(&s), ["1"], "{format:?}");
            assert!(s.invalid.is_empty(), "{format:?}: {:?}", s.invalid);
        }
        // Only at the very start.
        let e = read(&format!("[{bom}{{\"id\":\"1\"}}]"), Format::JsonArray).expect_err("bad");
        assert!(e.contains("JSON"), "{e}");
    }

    #[test]
    fn missing_file_is_unreadable() {
        let e = read_file(Path::new("/nonexistent/people.json")).expect_err("missing");
        assert!(matches!(e, SourceError::Unreadable { .. }));
    }
}
