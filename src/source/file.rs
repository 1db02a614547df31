//! The file source: a JSON array, JSON lines, or CSV, chosen by the file's extension.
//!
//! A file that cannot be opened or whose overall structure is broken (not an array, a
//! CSV header with an unknown column) fails the whole read. A single bad record is
//! reported with its place and left out.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use serde_json::{Map, Value};

use crate::config::ConfigError;

use super::{
    Build, FIELDS, Place, RecordError, Snapshot, SnapshotBuilder, Source, SourceError, parse_record,
};

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

fn parse(reader: impl std::io::BufRead, format: Format) -> Result<SnapshotBuilder, ReadError> {
    let mut builder = SnapshotBuilder::default();
    // Each record becomes a `Person` as soon as it is read: the whole file is never held
    // as a JSON tree (at a million people that tree alone is over a gigabyte).
    let mut add = |location: Place, value: Result<Value, String>| {
        let parsed = value
            .map_err(|message| RecordError {
                id: None,
                email: None,
                message,
            })
            .and_then(|v| parse_record(&v));
        builder.add(location, parsed);
    };
    match format {
        Format::JsonArray => {
            use serde::de::Deserializer as _;
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
                add(
                    Place::Line(i + 1),
                    serde_json::from_str(&l).map_err(|e| format!("not valid JSON: {e}")),
                );
            }
        }
        Format::Csv => csv_records(reader, &mut add)?,
    }
    Ok(builder)
}

/// Visits a JSON array, handing each element to the callback with its place.
struct EachElement<'f, F>(&'f mut F);

impl<'de, F: FnMut(Place, Result<Value, String>)> serde::de::Visitor<'de> for EachElement<'_, F> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON array of people")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut i = 0usize;
        while let Some(v) = seq.next_element::<Value>()? {
            (self.0)(Place::Element(i), Ok(v));
            i += 1;
        }
        Ok(())
    }
}

/// CSV columns: every person field but `attributes`, which comes as `attributes.NAME`.
fn csv_columns() -> impl Iterator<Item = &'static str> {
    FIELDS.iter().copied().filter(|f| *f != "attributes")
}

/// Hands each CSV row to `add` with its place, as an object of the person fields; a row
/// that could not even be read comes as an error text.
fn csv_records(
    reader: impl std::io::Read,
    add: &mut impl FnMut(Place, Result<Value, String>),
) -> Result<(), ReadError> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(reader);
    let headers = reader
        .headers()
        .map_err(|e| ReadError::Malformed(format!("cannot read the CSV header: {e}")))?
        .clone();
    for h in &headers {
        if !csv_columns().any(|c| c == h) && !h.starts_with("attributes.") {
            return Err(ReadError::Malformed(format!(
                "unknown CSV column `{h}` (expected {} or attributes.NAME)",
                csv_columns().collect::<Vec<_>>().join(", ")
            )));
        }
    }
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
                let mut obj = Map::new();
                let mut attrs = Map::new();
                for (h, cell) in headers.iter().zip(row.iter()) {
                    if cell.is_empty() {
                        continue;
                    }
                    match h.strip_prefix("attributes.") {
                        Some(name) => {
                            attrs.insert(name.to_string(), Value::String(cell.to_string()));
                        }
                        None => {
                            obj.insert(h.to_string(), Value::String(cell.to_string()));
                        }
                    }
                }
                if !attrs.is_empty() {
                    obj.insert("attributes".into(), Value::Object(attrs));
                }
                add(Place::Line(line as usize), Ok(Value::Object(obj)));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str, format: Format) -> Result<Snapshot, String> {
        parse(text.as_bytes(), format)
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

    #[test]
    fn missing_file_is_unreadable() {
        let e = read_file(Path::new("/nonexistent/people.json")).expect_err("missing");
        assert!(matches!(e, SourceError::Unreadable { .. }));
    }
}
