//! The daemon's side of the admin socket.
//!
//! Binding: a socket left by a daemon killed with SIGKILL refuses connections, so it is
//! replaced; one that answers belongs to a live daemon and is never taken over; any other
//! file at the path is left alone (an error). The new socket is bound under a temporary
//! name, given mode 0600, then renamed into place, so no one ever connects to it with a
//! wider mode, and a stale socket is replaced atomically.
//!
//! Each connection: the peer's uid (SO_PEERCRED) must be the daemon's own or root's;
//! one request of at most `MAX_REQUEST` bytes, read within `READ_TIMEOUT`; it must name
//! this daemon's state directory; one answer, then the connection closes.

use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{debug, info, warn};

use super::protocol::{Answer, Command, MAX_REQUEST, Request, VERSION};
use crate::pass::PassOptions;
use crate::report::Report;
use crate::settings::Settings;
use crate::shutdown::Shutdown;
use crate::store::Store;

/// How long a client has to send its whole request.
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client has to take the answer.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(60);
/// Passes asked for over the socket and not started yet; more are refused.
pub const MAX_QUEUED_PASSES: usize = 16;
/// Connections served at once; more are refused until one ends.
pub const MAX_CONNECTIONS: usize = 32;

/// A pass asked for over the socket, run by the daemon's scheduler after the one in
/// progress (passes never overlap).
pub struct PassRequest {
    pub options: PassOptions,
    pub reply: oneshot::Sender<Requested>,
}

/// What became of a requested pass.
pub enum Requested {
    /// It ran: its report, or the error that ended it.
    Ran(Result<Report, String>),
    /// This replica does not lead (`[ha]`): only the leader runs passes.
    Standby,
    /// It was due to start as the daemon began to stop or this replica lost the Lease.
    NotStarted,
}

/// What the daemon lends the commands it answers.
pub struct Shared {
    pub store: Store,
    /// The daemon's settings, replaced when it reloads its config (SIGHUP).
    pub settings: watch::Receiver<Arc<Settings>>,
    /// The scheduler's queue of requested passes.
    pub passes: mpsc::Sender<PassRequest>,
    /// Whether this replica leads (always with no `[ha]`).
    pub leader: watch::Receiver<bool>,
}

impl Shared {
    /// `Some("leader")` or `Some("standby")` with `[ha]`; `None` without.
    /// The settings the daemon runs with now.
    pub fn settings(&self) -> Arc<Settings> {
        Arc::clone(&self.settings.borrow())
    }

    pub fn role(&self) -> Option<&'static str> {
        self.settings().ha.as_ref().map(|_| {
            if *self.leader.borrow() {
                "leader"
            } else {
                "standby"
            }
        })
    }
}

/// Runs a command for a client: the CLI's own command code, its output captured.
pub trait Handler: Send + Sync + 'static {
    fn handle(self: Arc<Self>, command: Command, served: Arc<Shared>)
    -> BoxFuture<'static, Answer>;
}

/// The longest socket path the kernel takes (`sun_path` is 108 bytes with its NUL).
pub const MAX_PATH: usize = 107;

#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error(
        "config key `server.admin_socket`: {0} is longer than the {MAX_PATH} bytes a Unix socket's path may have; set a shorter one"
    )]
    TooLong(PathBuf),
    #[error(
        "config key `server.admin_socket`: another roster daemon answers on {0} (stop it, or give this one its own socket)"
    )]
    Live(PathBuf),
    #[error(
        "config key `server.admin_socket`: {0} exists and is not a socket; refusing to replace it"
    )]
    NotSocket(PathBuf),
    #[error("config key `server.admin_socket`: cannot listen on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// The bound socket; its file is removed by `serve` when the daemon stops.
pub struct Socket {
    path: PathBuf,
    listener: UnixListener,
    /// The socket file's inode, so only our own file is ever removed.
    ino: u64,
}

impl Socket {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Binds the admin socket at `path` (see the module comment for stale and live ones).
///
/// # Errors
/// A live daemon on `path`, a file that is not a socket, or any I/O failure.
pub async fn bind(path: &Path) -> Result<Socket, BindError> {
    let io_err = |source| BindError::Io {
        path: path.to_path_buf(),
        source,
    };
    if path.as_os_str().len() > MAX_PATH {
        return Err(BindError::TooLong(path.to_path_buf()));
    }
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err(e)),
        Ok(m) if !m.file_type().is_socket() => {
            return Err(BindError::NotSocket(path.to_path_buf()));
        }
        Ok(_) => {
            match tokio::time::timeout(Duration::from_secs(2), UnixStream::connect(path)).await {
                Ok(Ok(_)) | Err(_) => return Err(BindError::Live(path.to_path_buf())),
                Ok(Err(e)) if e.kind() == io::ErrorKind::ConnectionRefused => {
                    info!(path = %path.display(), "Replacing a stale admin socket (its daemon is gone).");
                }
                Ok(Err(e)) => return Err(io_err(e)),
            }
        }
    }
    // In the same directory (for the rename), no longer than `admin.sock`.
    let temporary = path.with_file_name(format!(".a{}", std::process::id()));
    let _ = std::fs::remove_file(&temporary);
    let listener = UnixListener::bind(&temporary).map_err(io_err)?;
    let placed = std::fs::set_permissions(&temporary, std::fs::Permissions::from_mode(0o600))
        .and_then(|()| std::fs::rename(&temporary, path))
        .and_then(|()| std::fs::symlink_metadata(path));
    match placed {
        Ok(m) => Ok(Socket {
            path: path.to_path_buf(),
            listener,
            ino: m.ino(),
        }),
        Err(e) => {
            let _ = std::fs::remove_file(&temporary);
            Err(io_err(e))
        }
    }
}

/// May a peer of uid `peer` talk to a daemon running as `own`? Only the same user, or
/// root (who could read the state directory anyway).
pub fn peer_allowed(peer: u32, own: u32) -> bool {
    peer == own || peer == 0
}

/// Accepts connections until `shutdown`, then removes the socket file.
pub async fn serve(
    socket: Socket,
    served: Arc<Shared>,
    handler: Arc<dyn Handler>,
    mut shutdown: Shutdown,
) {
    // The state directory a request must name: compared canonical, as the client sends it.
    // (A reload keeps the state directory: it needs a restart.)
    let state_dir = served.settings().state_dir.clone();
    let ours = std::fs::canonicalize(&state_dir).unwrap_or(state_dir);
    let ours = Arc::new(ours);
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        tokio::select! {
            _ = shutdown.wait() => break,
            accepted = socket.listener.accept() => match accepted {
                Ok((mut stream, _)) => {
                    let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
                        warn!("Admin socket: too many connections at once; one refused.");
                        tokio::spawn(async move {
                            let busy = Answer::Refused {
                                message: format!("{MAX_CONNECTIONS} requests are being served; try again"),
                            };
                            let bytes = serde_json::to_vec(&busy).unwrap_or_default();
                            let _ = tokio::time::timeout(WRITE_TIMEOUT, async {
                                stream.write_all(&bytes).await?;
                                stream.shutdown().await
                            })
                            .await;
                        });
                        continue;
                    };
                    let (served, handler, ours) = (Arc::clone(&served), Arc::clone(&handler), Arc::clone(&ours));
                    tokio::spawn(async move {
                        connection(stream, &ours, served, handler).await;
                        drop(slot);
                    });
                }
                Err(e) => {
                    warn!(error = %e, "Admin socket: accept failed.");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
        }
    }
    // Only our own file: a daemon started since (after a stale-socket check) keeps its.
    if std::fs::symlink_metadata(&socket.path).is_ok_and(|m| m.ino() == socket.ino) {
        let _ = std::fs::remove_file(&socket.path);
    }
}

async fn connection(
    mut stream: UnixStream,
    ours: &Path,
    served: Arc<Shared>,
    handler: Arc<dyn Handler>,
) {
    let answer = match admit(&mut stream, ours).await {
        Ok(command) => {
            debug!(?command, "Admin socket: command.");
            // A client that goes away (Ctrl-C) gives its command up: a pass it asked for
            // that has not started yet is not run.
            tokio::select! {
                answer = handler.handle(command, served) => answer,
                () = gone(&mut stream) => {
                    info!("Admin socket: the client went away; its command is given up.");
                    return;
                }
            }
        }
        Err(message) => {
            warn!(reason = %message, "Admin socket: request refused.");
            Answer::Refused { message }
        }
    };
    let bytes = match serde_json::to_vec(&answer) {
        Ok(b) => b,
        Err(e) => {
            warn!(error = %e, "Admin socket: cannot encode the answer.");
            return;
        }
    };
    let written = tokio::time::timeout(WRITE_TIMEOUT, async {
        stream.write_all(&bytes).await?;
        stream.shutdown().await
    })
    .await;
    if !matches!(written, Ok(Ok(()))) {
        debug!("Admin socket: the client did not take the answer.");
    }
}

/// Reads one line (the request) into `line`, without its newline; `false` when it is
/// longer than `MAX_REQUEST` (the rest of it is read, up to 16 MiB, and dropped, so the
/// client reads the refusal rather than a connection reset by unread data).
async fn read_line(stream: &mut UnixStream, line: &mut Vec<u8>) -> io::Result<bool> {
    let mut chunk = [0u8; 8192];
    let mut dropped = 0usize;
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(line.len() <= MAX_REQUEST);
        }
        let end = chunk[..n].iter().position(|b| *b == b'\n');
        if line.len() <= MAX_REQUEST {
            line.extend_from_slice(&chunk[..end.unwrap_or(n)]);
        } else {
            dropped += n;
        }
        if end.is_some() || dropped > 16 << 20 {
            return Ok(line.len() <= MAX_REQUEST);
        }
    }
}

/// Resolves when the client closes its end (it sends nothing after its request).
async fn gone(stream: &mut UnixStream) {
    let mut byte = [0u8; 1];
    while let Ok(1..) = stream.read(&mut byte).await {}
}

/// The request, then the peer check (the request is read first, within its bounds, so
/// a refused client reads the refusal rather than a reset connection); `Err` is the
/// refusal's message.
async fn admit(stream: &mut UnixStream, ours: &Path) -> Result<Command, String> {
    let mut bytes = Vec::new();
    let read = tokio::time::timeout(READ_TIMEOUT, read_line(stream, &mut bytes)).await;
    let own = rustix::process::geteuid().as_raw();
    let peer = stream
        .peer_cred()
        .map_err(|e| format!("cannot read the peer's credentials: {e}"))?
        .uid();
    if !peer_allowed(peer, own) {
        return Err(format!(
            "uid {peer} may not use this admin socket: only the daemon's user (uid {own}) and root may"
        ));
    }
    match read {
        Err(_) => {
            return Err(format!(
                "no whole request within {}s",
                READ_TIMEOUT.as_secs()
            ));
        }
        Ok(Err(e)) => return Err(format!("cannot read the request: {e}")),
        Ok(Ok(false)) => {
            return Err(format!("the request is larger than {MAX_REQUEST} bytes"));
        }
        Ok(Ok(_)) => {}
    }
    let request: Request =
        serde_json::from_slice(&bytes).map_err(|e| format!("unreadable request: {e}"))?;
    if request.version != VERSION {
        return Err(format!(
            "protocol version {} is not this daemon's ({VERSION}): use the same roster version for the CLI and the daemon",
            request.version
        ));
    }
    if request.state_dir != ours {
        return Err(format!(
            "this daemon serves the state directory {}, not {}",
            ours.display(),
            request.state_dir.display()
        ));
    }
    Ok(request.command)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_same_user_or_root_may_connect() {
        assert!(peer_allowed(999, 999));
        assert!(peer_allowed(0, 999), "root may");
        assert!(peer_allowed(0, 0));
        assert!(!peer_allowed(65534, 999), "another user may not");
        assert!(
            !peer_allowed(65534, 0),
            "another user may not talk to root's daemon"
        );
        assert!(!peer_allowed(1000, 1001));
    }

    /// Answers every command with its name, exit code 0.
    struct Echo;

    impl Handler for Echo {
        fn handle(self: Arc<Self>, command: Command, _: Arc<Shared>) -> BoxFuture<'static, Answer> {
            Box::pin(async move {
                Answer::Done {
                    stdout: format!("{command:?}"),
                    stderr: String::new(),
                    exit_code: 0,
                }
            })
        }
    }

    async fn exchange(path: &Path, request: &[u8]) -> Answer {
        let mut stream = UnixStream::connect(path).await.expect("connect");
        let _ = stream.write_all(request).await;
        let _ = stream.write_all(b"\n").await;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await.expect("read");
        serde_json::from_slice(&answer).expect("an answer")
    }

    #[tokio::test]
    async fn requests_are_bounded_and_must_name_this_state_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        let settings = crate::settings::load_str(
            "state_dir = \"state\"\n[source]\ntype = \"file\"\npath = \"p.json\"\n\
             [vendors.motive]\ntype = \"motive\"\napi_key = \"k\"\n",
            dir.path(),
            Vec::new(),
        )
        .expect("settings");
        std::fs::create_dir_all(&settings.state_dir).expect("state dir");
        let ours = std::fs::canonicalize(&settings.state_dir).expect("canonical");
        let path = dir.path().join("admin.sock");
        let socket = bind(&path).await.expect("bind");
        let (passes, _requests) = mpsc::channel(1);
        let (_leader_tx, leader) = watch::channel(true);
        let shared = Arc::new(Shared {
            store: Store::temporary().expect("store"),
            settings: watch::channel(Arc::new(settings)).1,
            passes,
            leader,
        });
        let (stop, shutdown) = crate::shutdown::channel();
        let server = tokio::spawn(serve(socket, shared, Arc::new(Echo), shutdown));
        let request = |state_dir: &Path| {
            serde_json::to_vec(&Request {
                version: VERSION,
                state_dir: state_dir.to_path_buf(),
                command: Command::Status { json: true },
            })
            .expect("encode")
        };

        match exchange(&path, &request(&ours)).await {
            Answer::Done { stdout, .. } => assert_eq!(stdout, "Status { json: true }"),
            other => panic!("{other:?}"),
        }
        let refused = |a: Answer| match a {
            Answer::Refused { message } => message,
            other => panic!("expected a refusal, got {other:?}"),
        };
        let m = refused(exchange(&path, &request(dir.path())).await);
        assert!(m.contains("serves the state directory"), "{m}");
        let m = refused(exchange(&path, &vec![b' '; MAX_REQUEST + 10]).await);
        assert!(m.contains("larger than"), "{m}");
        let m = refused(exchange(&path, b"{\"version\":1}").await);
        assert!(m.contains("unreadable request"), "{m}");
        let mut old = serde_json::to_value(Request {
            version: VERSION,
            state_dir: ours.clone(),
            command: Command::RebuildState,
        })
        .expect("value");
        old["version"] = serde_json::json!(0);
        let m = refused(exchange(&path, old.to_string().as_bytes()).await);
        assert!(m.contains("protocol version 0"), "{m}");

        stop.trigger();
        server.await.expect("server stops");
        assert!(!path.exists(), "the socket is removed on a clean stop");
    }

    #[tokio::test]
    async fn a_stale_socket_is_replaced_a_live_one_and_other_files_are_not() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("admin.sock");
        // Stale: bound by a listener that is gone (as after SIGKILL).
        drop(std::os::unix::net::UnixListener::bind(&path).expect("bind"));
        assert!(path.exists());
        let socket = bind(&path).await.expect("a stale socket is replaced");
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        // Live: a second daemon on the same path is refused.
        match bind(&path).await {
            Err(BindError::Live(p)) => assert_eq!(p, path),
            other => panic!("expected Live, got {:?}", other.err()),
        }
        drop(socket);
        let long = dir.path().join("d".repeat(MAX_PATH)).join("admin.sock");
        assert!(matches!(bind(&long).await, Err(BindError::TooLong(_))));
        let file = dir.path().join("not-a-socket");
        std::fs::write(&file, "keep me").expect("write");
        assert!(matches!(bind(&file).await, Err(BindError::NotSocket(_))));
        assert_eq!(std::fs::read_to_string(&file).expect("read"), "keep me");
    }
}
