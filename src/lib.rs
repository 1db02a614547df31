//! roster keeps the user lists of fleet and collaboration vendors in step with one
//! source of truth.
//!
//! Layout (data flows top to bottom; see ARCHITECTURE.md):
//!
//! - `config`   — TOML + `ROSTER__…` environment → validated `Settings`.
//! - `source`   — the `Source` trait and its kinds: people in.
//! - `model`    — `Person`, `PersonId`, `Fields`: what sources produce and vendors consume.
//! - `diff`     — PURE: desired fields vs stored records → `Plan`.
//! - `drift`    — PURE: stored records vs the vendor's listing (`--full`).
//! - `store`    — the only sled user: per-vendor records and the last report.
//! - `vendor`   — the `Vendor` trait and one file per vendor: calls out.
//! - `retry`    — the only `backoff` user: the retry policy for vendor calls.
//! - `pace`     — per-vendor rate limit (governor) that adapts to 429s.
//! - `push`     — runs one vendor's plan: concurrency, retries, store write per ack.
//! - `sync`     — one pass: read, plan, safety gate, push, report.
//! - `report`   — the JSON report, summary table and exit codes.
//! - `shutdown` — one trigger, many listeners.
//! - `progress` — progress bars (terminal) or periodic log lines (daemon).
//! - `cli`      — the command line (used by the thin `main.rs`).
//! - `explain`  — `roster explain`: one person, every vendor, and why.
//! - `rebuild`  — `roster rebuild-state`: relink every account by lookup, no writes.
//! - `daemon`   — `roster run`: scheduler loop, signals, HTTP endpoints, shutdown.
//! - `schedule` — PURE: the next cron tick.
//! - `server`   — `/healthz`, `/readyz`, `/metrics`, `POST /trigger`.
//! - `metrics`  — the Prometheus registry; one method per notable occurrence.
//! - `ha`       — leader election on a Kubernetes Lease: only the leader runs passes.

pub mod cli;
pub mod config;
pub mod daemon;
pub mod diff;
pub mod drift;
pub mod explain;
pub mod ha;
pub mod metrics;
pub mod model;
pub mod pace;
pub mod progress;
pub mod push;
pub mod rebuild;
pub mod report;
pub mod retry;
pub mod schedule;
pub mod secret;
pub mod server;
pub mod shutdown;
pub mod source;
pub mod store;
pub mod sync;
pub mod vendor;
