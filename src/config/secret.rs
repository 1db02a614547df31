//! Credentials from the config: `Secret`, which never prints, and the one resolver of
//! every credential key `K` — given inline as `K`, or as a file in `K_file`.
//!
//! A secret file must be a regular file of at most `MAX_FILE_BYTES` (a FIFO would block
//! forever and `/dev/zero` would grow without end), and roster warns when others may read
//! it. A trailing newline is dropped; an empty secret is an error.

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use tracing::warn;

use super::ConfigError;

/// The largest secret file roster reads.
pub const MAX_FILE_BYTES: u64 = 16 * 1024;

#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

/// What is wrong with a secret file (its path and why; never its content).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FileError(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for the one place that sends it (a request header or body).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Reads a secret file (see the module docs for what is refused).
    ///
    /// # Errors
    /// What is wrong with the file, for the caller to report with the key at fault.
    pub fn from_file(path: &Path) -> Result<Self, FileError> {
        let meta = std::fs::metadata(path)
            .map_err(|e| FileError(format!("cannot read {}: {e}", path.display())))?;
        if !meta.is_file() {
            return Err(FileError(format!(
                "{} is not a regular file",
                path.display()
            )));
        }
        if meta.len() > MAX_FILE_BYTES {
            return Err(FileError(format!(
                "{} is larger than {} KiB; a secret file holds the secret only",
                path.display(),
                MAX_FILE_BYTES / 1024
            )));
        }
        let mut raw = String::new();
        std::fs::File::open(path)
            .and_then(|f| f.take(MAX_FILE_BYTES + 1).read_to_string(&mut raw))
            .map_err(|e| FileError(format!("cannot read {}: {e}", path.display())))?;
        if raw.len() as u64 > MAX_FILE_BYTES {
            return Err(FileError(format!(
                "{} grew past {} KiB",
                path.display(),
                MAX_FILE_BYTES / 1024
            )));
        }
        let secret = raw.trim_end_matches(['\n', '\r']);
        if secret.is_empty() {
            return Err(FileError(format!("{} is empty", path.display())));
        }
        if readable_by_others(&meta) {
            warn!(path = %path.display(), "A secret file is readable by other users; chmod o-r it.");
        }
        Ok(Self(secret.to_string()))
    }
}

#[cfg(unix)]
fn readable_by_others(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o004 != 0
}

#[cfg(not(unix))]
fn readable_by_others(_meta: &std::fs::Metadata) -> bool {
    false
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

/// Resolves the credential keys of one table (`prefix`, e.g. `vendors.motive`), with
/// file paths relative to the config file's directory.
#[derive(Debug, Clone)]
pub struct Secrets<'a> {
    pub prefix: String,
    pub base_dir: &'a Path,
}

impl Secrets<'_> {
    /// `key` inline or `key_file`; `None` when neither is given.
    ///
    /// # Errors
    /// Both given, an empty value, or a file that cannot be used (named by its key).
    pub fn optional(
        &self,
        key: &str,
        inline: Option<Secret>,
        file: Option<PathBuf>,
    ) -> Result<Option<Secret>, ConfigError> {
        let full = super::parse::join(&self.prefix, key);
        match (inline, file) {
            (Some(_), Some(_)) => Err(ConfigError::invalid(
                full,
                format!("give either `{key}` or `{key}_file`, not both"),
            )),
            (Some(s), None) if s.expose().is_empty() => Err(ConfigError::invalid(full, "is empty")),
            (Some(s), None) => Ok(Some(s)),
            (None, Some(path)) => Secret::from_file(&self.base_dir.join(path))
                .map(Some)
                .map_err(|e| ConfigError::invalid(format!("{full}_file"), e.to_string())),
            (None, None) => Ok(None),
        }
    }

    /// As `optional`, but one of the two must be given.
    ///
    /// # Errors
    /// As `optional`, or neither given.
    pub fn required(
        &self,
        key: &str,
        inline: Option<Secret>,
        file: Option<PathBuf>,
    ) -> Result<Secret, ConfigError> {
        self.optional(key, inline, file)?.ok_or_else(|| {
            ConfigError::invalid(
                super::parse::join(&self.prefix, key),
                format!("is required (or `{key}_file`)"),
            )
        })
    }

    /// The path of `file`, relative to the config file's directory.
    pub fn path(&self, file: &Path) -> PathBuf {
        self.base_dir.join(file)
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

    #[test]
    fn a_secret_file_must_be_a_small_regular_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let e = Secret::from_file(dir.path())
            .expect_err("a directory")
            .to_string();
        assert!(e.contains("not a regular file"), "{e}");
        let big = dir.path().join("big");
        std::fs::write(&big, vec![b'x'; 20_000]).expect("write");
        let e = Secret::from_file(&big).expect_err("too big").to_string();
        assert!(e.contains("larger than 16 KiB"), "{e}");
        #[cfg(unix)]
        {
            let e = Secret::from_file(Path::new("/dev/zero"))
                .expect_err("a device")
                .to_string();
            assert!(e.contains("not a regular file"), "{e}");
            let fifo = dir.path().join("fifo");
            let made = std::process::Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .is_ok_and(|s| s.success());
            if made {
                let e = Secret::from_file(&fifo).expect_err("a FIFO").to_string();
                assert!(e.contains("not a regular file"), "{e}");
            }
        }
        let empty = dir.path().join("empty");
        std::fs::write(&empty, "\n").expect("write");
        assert!(
            Secret::from_file(&empty)
                .expect_err("empty")
                .to_string()
                .contains("empty")
        );
    }

    #[test]
    fn one_resolver_names_the_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("tok"), "s3cret\n").expect("write");
        let s = Secrets {
            prefix: "vendors.motive".into(),
            base_dir: dir.path(),
        };
        let got = s
            .required("token", None, Some("tok".into()))
            .expect("file read");
        assert_eq!(got.expose(), "s3cret");
        let e = s
            .required("token", Some(Secret::new("a")), Some("tok".into()))
            .expect_err("both");
        assert!(e.to_string().contains("vendors.motive.token"), "{e}");
        let e = s.required("token", None, None).expect_err("missing");
        assert!(e.to_string().contains("vendors.motive.token"), "{e}");
        let e = s
            .required("token", None, Some("nope".into()))
            .expect_err("no file");
        assert!(e.to_string().contains("vendors.motive.token_file"), "{e}");
        assert_eq!(s.optional("token", None, None).expect("none"), None);
    }
}
