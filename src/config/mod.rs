//! The config toolkit every part that takes config uses: the error, the one parser
//! (`parse`), the one secret resolver (`secret`), and the tables every config has
//! (`common`). A leaf: it knows no source, vendor or store; each source and vendor kind
//! owns its options, and `settings` puts the whole config together.

pub mod common;
mod error;
pub mod parse;
pub mod secret;

pub use common::{HistorySettings, LogFormat, RateLimit, RetrySettings, Safety};
pub use error::ConfigError;
pub use secret::{Secret, Secrets};
