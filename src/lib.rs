//! roster keeps the user lists of fleet and collaboration vendors in step with one
//! source of truth.
//!
//! Layout, from the leaves up (a module uses only those above it; see ARCHITECTURE.md):
//!
//! - `model`    — the domain: people, fields, records, accounts, operation names.
//! - `plan`     — PURE: what each vendor needs (`diff`, `desire`, `drift`); only `model`.
//! - `config`   — the config toolkit: errors, the one parser, the one secret resolver.
//! - `shutdown`, `budget` — one trigger; a pass's deadline shared by every wait.
//! - `out`      — what commands print: stdout and stderr writes that never panic.
//! - `retry`    — the only `backoff` user: the retry policy.
//! - `http`     — every outbound call: the client, flow control, sessions.
//! - `source`   — the `Source` trait and one file or folder per kind: people in.
//! - `vendor`   — the `Vendor` trait and one file or folder per vendor: calls out.
//! - `store`    — the only sled user: records, history, meta.
//! - `ha`       — leader election on a Kubernetes Lease (the only `kube` user): only the
//!   leader runs passes.
//! - `report`   — the JSON report, the summary table, exit codes.
//! - `notify`   — `[[notify]]` alerts after a pass: refused, credentials, failures, recovery.
//! - `settings` — the whole config, typed per kind.
//! - `pass`     — one pass: read, plan, safety gate, push, report; hooks for listeners.
//! - `progress` — progress bars (terminal) or log lines (daemon), as pass hooks.
//! - `admin`    — the admin socket: the CLI asks a running daemon to run its commands
//!   (protocol, daemon side, client side).
//! - `daemon`   — `roster run`: schedule, signals, `/healthz` `/readyz` `/metrics`
//!   `/trigger`, metrics.
//! - `cli`      — the commands (used by the thin `main.rs`), `explain` and
//!   `rebuild-state` among them.

pub mod admin;
pub mod budget;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod ha;
pub mod http;
pub mod model;
pub mod notify;
pub mod out;
pub mod pass;
pub mod plan;
pub mod progress;
pub mod report;
pub mod retry;
pub mod settings;
pub mod shutdown;
pub mod source;
pub mod store;
pub mod vendor;
