//! The one parser: a part of the config tree (the TOML file with the `ROSTER__…`
//! environment layered over it) into a typed struct, every error naming the key.
//!
//! Values are read through the `config` crate's own deserializer, which turns text into
//! the number or boolean a field wants. That is why the environment is read without
//! guessing types (`try_parsing(false)`): every value arrives as text, a string key keeps
//! it verbatim (`…API_KEY=123456789`, `true`, `1e5`, `007`), and a number key still gets
//! its number. It is also why a tagged table (`type = "…"`) is split here rather than by
//! serde's internally tagged enums: those buffer the table first and lose the conversion.

use serde::de::DeserializeOwned;

use super::ConfigError;

/// A table of the config tree.
pub type Table = config::Map<String, config::Value>;

/// A table as a value, to parse it.
pub fn value(table: Table) -> config::Value {
    config::Value::new(None, config::ValueKind::Table(table))
}

/// Parses `value` (the table or value at `prefix`) into `T`.
///
/// Unknown keys of the table itself are collected rather than reported one by one in
/// whatever order the table holds them: a typo (`based_n`) is then reported with the key
/// it likely meant, and with a required key it leaves missing.
///
/// # Errors
/// `Invalid` naming `prefix.path.to.key`.
pub fn parse<T: DeserializeOwned>(prefix: &str, value: config::Value) -> Result<T, ConfigError> {
    let mut value = value;
    let mut unknown: Vec<(String, String)> = Vec::new();
    loop {
        match serde_path_to_error::deserialize::<_, T>(value.clone()) {
            Ok(parsed) => {
                return match unknown.into_iter().min() {
                    None => Ok(parsed),
                    Some((key, message)) => Err(ConfigError::invalid(key, message)),
                };
            }
            Err(e) => {
                let path = e.path().to_string();
                let at = join(prefix, if path == "." { "" } else { &path });
                let top_level_name = e
                    .path()
                    .iter()
                    .count()
                    .eq(&1)
                    .then(|| unknown_field(e.inner()))
                    .flatten();
                let (key, message) = describe(&at, e.into_inner());
                match (top_level_name, &mut value.kind) {
                    (Some(name), config::ValueKind::Table(table)) if table.contains_key(&name) => {
                        table.remove(&name);
                        unknown.push((key, message));
                    }
                    _ => {
                        unknown.sort();
                        let also: Vec<String> =
                            unknown.iter().map(|(k, m)| format!("`{k}`: {m}")).collect();
                        let message = if also.is_empty() {
                            message
                        } else {
                            format!("{message}; also unknown: {}", also.join("; "))
                        };
                        return Err(ConfigError::invalid(key, message));
                    }
                }
            }
        }
    }
}

/// The name in serde's "unknown field" error, if it is one.
fn unknown_field(error: &config::ConfigError) -> Option<String> {
    match error {
        config::ConfigError::At { error, .. } => unknown_field(error),
        config::ConfigError::Message(m) => between(m, "unknown field `", "`").map(String::from),
        _ => None,
    }
}

/// Takes `type` out of the table at `key`: the kind, and the rest of the table.
///
/// # Errors
/// A missing or non-text `type`.
pub fn tagged(key: &str, mut table: Table) -> Result<(String, Table), ConfigError> {
    let tag = join(key, "type");
    match table.remove("type") {
        None => Err(ConfigError::invalid(tag, "is required")),
        Some(v) => match v.into_string() {
            Ok(kind) => Ok((kind, table)),
            Err(_) => Err(ConfigError::invalid(tag, "must be text")),
        },
    }
}

/// The error for a `type` no kind answers to, naming the table and the kinds there are.
pub fn unknown_kind(key: &str, what: &str, kind: &str, kinds: &[&str]) -> ConfigError {
    ConfigError::invalid(
        join(key, "type"),
        format!(
            "unknown {what} type `{kind}` (expected one of: {})",
            kinds.join(", ")
        ),
    )
}

/// Moves the entries named in `keys` out of `table` into a table of their own.
pub fn split(table: &mut Table, keys: &[&str]) -> Table {
    keys.iter()
        .filter_map(|k| table.remove(*k).map(|v| ((*k).to_string(), v)))
        .collect()
}

pub fn join(prefix: &str, key: &str) -> String {
    match (prefix.is_empty(), key.is_empty()) {
        (true, _) => key.to_string(),
        (_, true) => prefix.to_string(),
        _ => format!("{prefix}.{key}"),
    }
}

/// The key at fault and the message, from `config`'s error at `at`. Type errors name
/// what was expected (a secret is text and takes any value, so no secret's value can
/// show here); serde's "missing field" and "unknown field" name the key itself.
fn describe(at: &str, error: config::ConfigError) -> (String, String) {
    match error {
        config::ConfigError::At { error, .. } => describe(at, *error),
        config::ConfigError::Type {
            unexpected,
            expected,
            ..
        } => (
            at.to_string(),
            format!("expected {expected}, found {unexpected}"),
        ),
        config::ConfigError::NotFound(name) => (join(at, &name), "is required".into()),
        config::ConfigError::Message(m) => {
            if let Some(name) = between(&m, "missing field `", "`") {
                (join(at, name), "is required".into())
            } else if let Some(name) = between(&m, "unknown field `", "`") {
                // serde_path_to_error's path already ends at the unknown key.
                let parent = at
                    .strip_suffix(name)
                    .map(|p| p.trim_end_matches('.'))
                    .unwrap_or(at);
                let known = m
                    .split_once(", expected ")
                    .map(|(_, rest)| rest.to_string())
                    .unwrap_or_default();
                (join(parent, name), unknown_key(parent, name, &known))
            } else {
                (at.to_string(), m)
            }
        }
        other => (at.to_string(), other.to_string()),
    }
}

/// "unknown key", with the closest known key when one is close (a typo), and the list.
fn unknown_key(parent: &str, name: &str, known: &str) -> String {
    let names: Vec<&str> = known
        .split(['`', ','])
        .map(str::trim)
        .filter(|n| !n.is_empty() && *n != "one of" && *n != "or" && !n.starts_with("one of"))
        .collect();
    let mut out = String::from("unknown key");
    if let Some(n) = closest(name, names) {
        out.push_str(&format!("; did you mean `{}`?", join(parent, n)));
    }
    if !known.is_empty() {
        out.push_str(&format!(" (expected {known})"));
    }
    out
}

/// The candidate `name` is most likely a typo of, if any is close enough.
pub fn closest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|n| (strsim::damerau_levenshtein(name, n), n))
        .filter(|(d, n)| *d <= 2.max(n.len() / 3))
        .min()
        .map(|(_, n)| n)
}

fn between<'a>(s: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let rest = s.strip_prefix(start)?;
    rest.split_once(end).map(|(name, _)| name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        base_dn: String,
        page_size: Option<u32>,
    }

    fn table(pairs: &[(&str, config::Value)]) -> config::Value {
        value(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_string(), v.clone()))
                .collect(),
        )
    }

    #[test]
    fn errors_name_the_whole_key_and_a_typo_its_likely_meaning() {
        let e = parse::<Inner>("source", table(&[("based_n", "x".into())])).expect_err("typo");
        let text = e.to_string();
        assert!(text.contains("`source.based_n`"), "{text}");
        assert!(text.contains("did you mean `source.base_dn`"), "{text}");
        // A typo that leaves a required key missing: the missing key first, every
        // unknown key after it, the same whatever order the table holds them in.
        let e = parse::<Inner>(
            "source",
            table(&[("group_based_n", "x".into()), ("based_n", "y".into())]),
        )
        .expect_err("missing");
        let text = e.to_string();
        assert!(
            text.starts_with("config key `source.base_dn`: is required"),
            "{text}"
        );
        assert!(
            text.contains("`source.based_n`") && text.contains("`source.group_based_n`"),
            "{text}"
        );
        let e = parse::<Inner>("source", table(&[])).expect_err("missing");
        assert!(
            e.to_string().contains("`source.base_dn`: is required"),
            "{e}"
        );
        let e = parse::<Inner>(
            "source",
            table(&[("base_dn", "x".into()), ("page_size", "many".into())]),
        )
        .expect_err("not a number");
        assert!(e.to_string().contains("`source.page_size`"), "{e}");
        // Text turns into the number a key wants (as environment values arrive).
        let ok: Inner = parse(
            "source",
            table(&[("base_dn", "x".into()), ("page_size", "40".into())]),
        )
        .expect("parsed");
        assert_eq!(ok.page_size, Some(40));
    }
}
