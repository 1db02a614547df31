//! Reading every page: numbered pages, offsets or next links, until the list ends — and
//! failing the whole read on anything that could leave people out.

use std::collections::BTreeSet;

use reqwest::header::HeaderMap;
use serde_json::Value;
use url::Url;

use super::super::record::value_kind as kind;
use super::super::remote::ReadError;
use super::super::remote::shown;
use super::HttpSource;
use super::options::Paging;
use crate::budget::Budget;

impl HttpSource {
    /// Reads every page: the records of each, in order, with their locations.
    ///
    /// # Errors
    /// Anything that could leave a record out.
    pub(super) async fn read_all(
        &self,
        budget: &Budget,
    ) -> Result<Vec<(String, Value)>, ReadError> {
        self.read_pages(budget).await.map_err(ReadError)
    }

    async fn read_pages(&self, budget: &Budget) -> Result<Vec<(String, Value)>, String> {
        let mut out: Vec<(String, Value)> = Vec::new();
        let mut seen = BTreeSet::new();
        let mut url = self.url.clone();
        let mut page_no: u64 = 0;
        let mut expected_total: Option<u64> = None;
        loop {
            page_no += 1;
            if page_no > self.max_pages {
                return Err(format!(
                    "more than max_pages = {} pages; refusing to read on (a paging loop?)",
                    self.max_pages
                ));
            }
            if let Paging::Numbered {
                param,
                start,
                by_offset,
                size,
                ..
            } = &self.paging
            {
                let n = if *by_offset {
                    start + out.len() as u64
                } else {
                    start + page_no - 1
                };
                url = with_query(&self.url, param, &n.to_string());
                if let Some((p, size)) = size {
                    url = with_query(&url, p, &size.to_string());
                }
            }
            if !seen.insert(url.to_string()) {
                return Err(format!(
                    "page {page_no} would fetch {} again (the next link repeats); refusing a \
                     paging loop",
                    shown(&url)
                ));
            }
            let page = self
                .get
                .get(budget, &url, "application/json")
                .await
                .map_err(|e| e.0)?;
            let records = self
                .records_at(&page.body)
                .map_err(|e| format!("page {page_no}: {e}"))?;
            let n = records.len();
            out.extend(
                records
                    .into_iter()
                    .enumerate()
                    .map(|(i, v)| (format!("page {page_no}, record {} (index {i})", i + 1), v)),
            );
            match &self.paging {
                Paging::None => return Ok(out),
                Paging::NextLink(pointer) => {
                    let next = match pointer {
                        Some(p) => match page.body.pointer(p) {
                            None | Some(Value::Null) => None,
                            Some(Value::String(s)) if s.trim().is_empty() => None,
                            Some(Value::String(s)) => Some(s.trim().to_string()),
                            Some(other) => {
                                return Err(format!(
                                    "page {page_no}: the next link at {p} is not a string: {other}"
                                ));
                            }
                        },
                        None => link_next(&page.headers),
                    };
                    match next {
                        None => return Ok(out),
                        Some(next) => {
                            url = url.join(&next).map_err(|e| {
                                format!("page {page_no}: the next link `{next}` is not a URL: {e}")
                            })?;
                            if url.origin() != self.url.origin() {
                                return Err(format!(
                                    "page {page_no}: the next link leads to another host ({}); \
                                     refusing to send the credential there",
                                    shown(&url)
                                ));
                            }
                        }
                    }
                }
                Paging::Numbered { total_pointer, .. } => {
                    let total = match total_pointer {
                        None => None,
                        Some(p) => Some(
                            total_at(&page.body, p).map_err(|e| format!("page {page_no}: {e}"))?,
                        ),
                    };
                    if let (Some(before), Some(now)) = (expected_total, total)
                        && before != now
                    {
                        return Err(format!(
                            "page {page_no}: the total changed from {before} to {now} during the \
                             read; the list moved under the pages, so the read may have missed \
                             or repeated people"
                        ));
                    }
                    expected_total = total.or(expected_total);
                    let got = out.len() as u64;
                    match total {
                        Some(t) if got >= t => {
                            if got > t {
                                return Err(format!("read {got} records but the total says {t}"));
                            }
                            return Ok(out);
                        }
                        Some(t) if n == 0 => {
                            return Err(format!(
                                "page {page_no} is empty after {got} of {t} records; the read is \
                                 incomplete"
                            ));
                        }
                        _ if n == 0 => return Ok(out),
                        _ => {}
                    }
                }
            }
        }
    }

    /// The records of one page, at `records_pointer`.
    ///
    /// # Errors
    /// No array there.
    #[cfg(test)]
    pub(super) fn records(&self, body: &Value) -> Result<Vec<Value>, ReadError> {
        self.records_at(body).map_err(ReadError)
    }

    fn records_at(&self, body: &Value) -> Result<Vec<Value>, String> {
        let at = if self.records_pointer.is_empty() {
            Some(body)
        } else {
            body.pointer(&self.records_pointer)
        };
        match at {
            Some(Value::Array(items)) => Ok(items.clone()),
            // An API that omits an empty list, or sends null for it.
            Some(Value::Null) => Ok(Vec::new()),
            None => Err(format!("no `{}` in the body", self.records_pointer)),
            Some(other) => Err(format!(
                "expected an array at `{}`, found {}",
                if self.records_pointer.is_empty() {
                    "the body"
                } else {
                    &self.records_pointer
                },
                kind(other)
            )),
        }
    }
}

pub(super) fn with_query(url: &Url, key: &str, value: &str) -> Url {
    let mut u = url.clone();
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| k != key)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    u.query_pairs_mut()
        .clear()
        .extend_pairs(kept)
        .append_pair(key, value);
    u
}

fn total_at(body: &Value, pointer: &str) -> Result<u64, String> {
    match body.pointer(pointer) {
        Some(Value::Number(n)) => n
            .as_u64()
            .ok_or_else(|| format!("the total at {pointer} is not a count: {n}")),
        Some(Value::String(s)) => s
            .trim()
            .parse()
            .map_err(|_| format!("the total at {pointer} is not a count: `{s}`")),
        Some(other) => Err(format!(
            "the total at {pointer} is not a count: {}",
            kind(other)
        )),
        None => Err(format!("no total at {pointer}")),
    }
}

/// The `rel="next"` target of an RFC 8288 `Link` header.
pub(super) fn link_next(headers: &HeaderMap) -> Option<String> {
    for value in headers.get_all("link") {
        let Ok(text) = value.to_str() else { continue };
        let mut rest = text;
        while let Some(start) = rest.find('<') {
            let Some(end) = rest[start..].find('>') else {
                break;
            };
            let target = &rest[start + 1..start + end];
            let after = &rest[start + end + 1..];
            let params_end = after.find('<').unwrap_or(after.len());
            let params = &after[..params_end];
            let is_next = params.split(';').any(|p| {
                let p = p.trim().trim_end_matches(',').trim();
                p.strip_prefix("rel=").is_some_and(|v| {
                    v.trim_matches('"')
                        .split_ascii_whitespace()
                        .any(|r| r.eq_ignore_ascii_case("next"))
                })
            });
            if is_next {
                return Some(target.to_string());
            }
            rest = after;
        }
    }
    None
}
