//! The admin socket: how the CLI reaches a running daemon, which owns the store (sled
//! allows one process per state directory).
//!
//! - `protocol` — the request (state directory, command) and the answer (what the
//!   command printed, its exit code), as JSON; their size limits.
//! - `server`   — the daemon's side: binding the Unix socket (mode 0600, a stale one
//!   replaced, a live one never), checking each peer's uid, one request and one answer
//!   per connection; the commands themselves are run by a `Handler` (the CLI's code).
//! - `client`   — the CLI's side: ask the daemon, or say there is none.
//!
//! It carries no secret: the socket's mode and the peer's credentials are the access
//! control, as for any local admin socket.

pub mod client;
pub mod protocol;
pub mod server;

pub use protocol::{Answer, Command, Request};
