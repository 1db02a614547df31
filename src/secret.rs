//! A string that must never be printed: credentials from the config.
//!
//! Owns: `Secret`. Its `Debug` and `Display` are redacted so that a `{:?}` of any struct
//! holding one cannot leak it into logs, errors or `--json` output.

use std::fmt;
use std::path::Path;

use serde::Deserialize;

#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for the one place that sends it (a request header or body).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Reads a secret file, dropping the trailing newline editors and `echo` add.
    ///
    /// # Errors
    /// The I/O error, for the caller to report with the config key at fault.
    pub fn from_file(path: &Path) -> std::io::Result<Self> {
        let raw = std::fs::read_to_string(path)?;
        Ok(Self(raw.trim_end_matches(['\n', '\r']).to_string()))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_never_show_the_value() {
        let s = Secret::new("hunter2");
        assert!(!format!("{s:?}").contains("hunter2"));
        assert!(!format!("{s}").contains("hunter2"));
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn file_secret_drops_trailing_newline_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("tok");
        std::fs::write(&p, " abc \n").expect("write");
        assert_eq!(Secret::from_file(&p).expect("read").expose(), " abc ");
    }
}
