//! Building connectors in their unit tests (nothing is sent).

use std::sync::Arc;
use std::time::Duration;

use super::VendorSettings;
use crate::config::{ConfigError, RetrySettings};
use crate::http::{self, FlowSettings, Http};

/// An `Http` for connector unit tests (nothing is sent).
pub(crate) fn test_http(name: &str) -> Http {
    Http::new(http::Options {
        name,
        timeout: Duration::from_secs(1),
        flow: FlowSettings::default(),
        retry: RetrySettings::default(),
        observer: Arc::new(http::Quiet),
    })
    .expect("client")
}

/// Builds one connector from config text (after a file `[source]`), for its unit tests.
pub(crate) fn test_build<T>(
    tables: &str,
    name: &str,
    make: impl FnOnce(&VendorSettings) -> Result<T, ConfigError>,
) -> Result<T, ConfigError> {
    let text = format!("[source]\ntype = \"file\"\npath = \"p.json\"\n{tables}");
    let s = crate::settings::load_str(&text, std::path::Path::new("/"), Vec::new())?;
    make(&s.vendors[name])
}
