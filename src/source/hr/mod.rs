//! The HTTP source: an HR system's JSON API, read page by page, each person mapped from
//! the JSON by JSON pointers (RFC 6901).
//!
//! Pagination: `none` (one request), `next_link` (a URL in the body at `next_pointer`, or
//! the `Link: <…>; rel="next"` header), `page` (a page-number parameter) or `offset` (an
//! offset parameter, e.g. Keycloak's `first`/`max`). Numbered pages end at an empty page,
//! or when `total_pointer`'s count is reached; a short page does not end the read,
//! because servers cap page sizes silently.
//!
//! Completeness: any failed request (after `retries`), timeout, non-2xx status, body that
//! is not JSON or has no array at `records_pointer`, a next link seen before, more than
//! `max_pages` pages, or a total that changes between pages or is not reached, fails the
//! whole read. One record that cannot be mapped is an `InvalidRecord` located as
//! `page N, record M`.
//!
//! Files: `options.rs` (the `[source]` keys and what they mean together), `pages.rs`
//! (reading every page), `mapping.rs` (a record into a person).

mod mapping;
#[cfg(test)]
mod no_panic;
mod options;
mod pages;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use async_trait::async_trait;
use url::Url;

use super::remote::{JsonGet, shown};
use super::{Snapshot, Source, SourceError};
use crate::budget::Budget;
use crate::http;

use mapping::Mapping;
pub use options::Options;
use options::Paging;

pub struct HttpSource {
    url: Url,
    get: JsonGet,
    records_pointer: String,
    paging: Paging,
    max_pages: u64,
    map: Mapping,
}

#[async_trait]
impl Source for HttpSource {
    async fn fetch(&self, budget: &Budget) -> Result<Snapshot, SourceError> {
        let records = self
            .read_all(budget)
            .await
            .map_err(|e| SourceError::Unreadable {
                path: self.describe(),
                message: e.to_string(),
            })?;
        Ok(self.map.snapshot(records))
    }

    fn flow(&self) -> Option<&Arc<http::Flow>> {
        Some(self.get.flow())
    }

    fn describe(&self) -> String {
        let paging = match &self.paging {
            Paging::None => "",
            Paging::NextLink(_) => ", next links",
            Paging::Numbered {
                by_offset: false, ..
            } => ", numbered pages",
            Paging::Numbered {
                by_offset: true, ..
            } => ", offsets",
        };
        format!(
            "http {}{paging}{}",
            shown(&self.url),
            self.get.describe_auth()
        )
    }
}
