//! The CLI's side of the admin socket: one request, one answer.

use std::io;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

use super::protocol::{Answer, Command, MAX_ANSWER, Request, VERSION};
use crate::settings::Settings;

/// How long connecting may take (a live daemon accepts at once).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum AskError {
    /// No daemon listens there (no socket file, or a stale one): nothing was asked.
    #[error("no daemon answers on {path}: {source}")]
    NoDaemon {
        path: std::path::PathBuf,
        #[source]
        source: io::Error,
    },
    /// A daemon was reached but the exchange failed.
    #[error("the daemon's admin socket {path}: {message}")]
    Failed {
        path: std::path::PathBuf,
        message: String,
    },
}

/// How long the answer may take: a command reads the source within the pass budget; a
/// pass waits for the one in progress, then runs its own.
fn answer_timeout(settings: &Settings, command: &Command) -> Duration {
    let budget = settings.retry.pass_budget_secs;
    let passes = match command {
        Command::Pass { dry_run: false, .. } => 2,
        _ => 1,
    };
    Duration::from_secs(budget.saturating_mul(passes).saturating_add(60))
}

/// Asks the daemon of `settings`' state directory to run `command`.
///
/// # Errors
/// `NoDaemon` when nothing listens on the socket; `Failed` for any later failure.
pub async fn ask(settings: &Settings, command: Command) -> Result<Answer, AskError> {
    let path = settings.server.admin_socket.clone();
    let failed = |message: String| AskError::Failed {
        path: path.clone(),
        message,
    };
    let state_dir = std::fs::canonicalize(&settings.state_dir).map_err(|e| {
        failed(format!(
            "cannot resolve {}: {e}",
            settings.state_dir.display()
        ))
    })?;
    let timeout = answer_timeout(settings, &command);
    let request = Request {
        version: VERSION,
        state_dir,
        command,
    };
    let bytes = serde_json::to_vec(&request).map_err(|e| failed(e.to_string()))?;
    let mut stream = match tokio::time::timeout(CONNECT_TIMEOUT, UnixStream::connect(&path)).await {
        Ok(Ok(s)) => s,
        Ok(Err(source))
            if matches!(
                source.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused
            ) =>
        {
            return Err(AskError::NoDaemon { path, source });
        }
        Ok(Err(e)) => return Err(failed(format!("cannot connect: {e}"))),
        Err(_) => return Err(failed("no answer to the connection".into())),
    };
    let mut answer = Vec::new();
    let exchanged = tokio::time::timeout(timeout, async {
        // One line; the connection stays open until the answer, since closing it gives
        // the command up. A daemon that refuses may answer before it has read
        // everything: its answer is still there to read.
        let sent = async {
            stream.write_all(&bytes).await?;
            stream.write_all(b"\n").await
        };
        if let Err(e) = sent.await
            && !matches!(
                e.kind(),
                io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
            )
        {
            return Err(e);
        }
        (&mut stream)
            .take(MAX_ANSWER as u64 + 1)
            .read_to_end(&mut answer)
            .await
    })
    .await;
    match exchanged {
        Err(_) => {
            return Err(failed(format!(
                "no answer within {}s (the daemon keeps running what was asked)",
                timeout.as_secs()
            )));
        }
        Ok(Err(e)) => return Err(failed(format!("the exchange failed: {e}"))),
        Ok(Ok(_)) if answer.len() > MAX_ANSWER => {
            return Err(failed(format!(
                "the answer is larger than {MAX_ANSWER} bytes"
            )));
        }
        Ok(Ok(_)) => {}
    }
    serde_json::from_slice(&answer).map_err(|e| {
        failed(if answer.is_empty() {
            "the daemon closed the connection without answering (it may be shutting down)".into()
        } else {
            format!("unreadable answer: {e}")
        })
    })
}
