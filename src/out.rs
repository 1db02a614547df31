//! Writing what a command prints. `println!` panics when stdout is a pipe whose reader
//! has gone (`roster plan | head -2`); these never do.
//!
//! A reader that stops reading is the reader's choice, not a failure of the command: the
//! rest of the output is dropped quietly and the command keeps its own exit code (the
//! pass it ran, or the state it read, is what the code reports). Any other write error
//! (a full disk behind `> file`) is said once on stderr. Errors written to a closed
//! stderr are dropped.

use std::fmt;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};

/// Set once stdout cannot be written: later output is dropped without trying.
static STDOUT_GONE: AtomicBool = AtomicBool::new(false);

/// The most a captured command may print per stream (what the admin socket sends back);
/// past it the rest is dropped and the stream says so once.
pub const CAPTURE_LIMIT: usize = 256 << 20;

/// What a command printed while it ran under [`capture`] (the daemon answering a command
/// for the CLI over the admin socket: the same code, its output sent back as bytes).
#[derive(Debug, Default)]
pub struct Captured {
    pub stdout: String,
    pub stderr: String,
}

impl Captured {
    fn push(stream: &mut String, args: fmt::Arguments<'_>) {
        if stream.len() >= CAPTURE_LIMIT {
            return;
        }
        let _ = fmt::Write::write_fmt(stream, args);
        if stream.len() >= CAPTURE_LIMIT {
            let mut end = CAPTURE_LIMIT;
            while !stream.is_char_boundary(end) {
                end -= 1;
            }
            stream.truncate(end);
            stream.push_str("\n[output cut at the admin socket's limit]\n");
        }
    }
}

tokio::task_local! {
    /// Set while a command runs for the admin socket: its prints go here instead.
    static CAPTURE: std::cell::RefCell<Captured>;
}

/// Runs `command` with everything it prints through this module collected, not written.
/// Only the task running `command` is captured (commands print from their own task).
pub async fn capture<F: std::future::Future<Output = i32>>(command: F) -> (i32, Captured) {
    CAPTURE
        .scope(std::cell::RefCell::new(Captured::default()), async move {
            let code = command.await;
            let captured = CAPTURE.with(|c| std::mem::take(&mut *c.borrow_mut()));
            (code, captured)
        })
        .await
}

/// `capture` for a command that runs on this thread to its end (the blocking pool).
pub fn capture_sync(command: impl FnOnce() -> i32) -> (i32, Captured) {
    CAPTURE.sync_scope(std::cell::RefCell::new(Captured::default()), || {
        let code = command();
        let captured = CAPTURE.with(|c| std::mem::take(&mut *c.borrow_mut()));
        (code, captured)
    })
}

/// Appends to the capture of the running task, if any; `false` when nothing captures.
fn captured(to_stdout: bool, args: fmt::Arguments<'_>) -> bool {
    CAPTURE
        .try_with(|c| {
            let mut c = c.borrow_mut();
            let stream = if to_stdout {
                &mut c.stdout
            } else {
                &mut c.stderr
            };
            Captured::push(stream, args);
        })
        .is_ok()
}

/// Writes `args` to stdout.
pub fn out(args: fmt::Arguments<'_>) {
    if captured(true, args) || STDOUT_GONE.load(Ordering::Relaxed) {
        return;
    }
    let mut stdout = io::stdout().lock();
    let written = stdout.write_fmt(args).and_then(|()| stdout.flush());
    if let Err(e) = written {
        STDOUT_GONE.store(true, Ordering::Relaxed);
        if e.kind() != io::ErrorKind::BrokenPipe {
            err(format_args!("roster: cannot write the output: {e}\n"));
        }
    }
}

/// Writes `args` to stderr; a failure to do so is dropped (there is nowhere to say it).
pub fn err(args: fmt::Arguments<'_>) {
    if captured(false, args) {
        return;
    }
    let mut stderr = io::stderr().lock();
    let _ = stderr.write_fmt(args).and_then(|()| stderr.flush());
}

/// `println!` to stdout that never panics.
macro_rules! outln {
    () => { $crate::out::out(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::out::out(format_args!("{}\n", format_args!($($arg)*))) };
}

/// `print!` to stdout that never panics.
macro_rules! outp {
    ($($arg:tt)*) => { $crate::out::out(format_args!($($arg)*)) };
}

/// `eprintln!` that never panics.
macro_rules! errln {
    ($($arg:tt)*) => { $crate::out::err(format_args!("{}\n", format_args!($($arg)*))) };
}

pub(crate) use {errln, outln, outp};

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_captured_command_prints_into_its_capture_only() {
        let (code, got) = capture(async {
            outln!("table {}", 1);
            errln!("roster: warning");
            tokio::task::yield_now().await;
            outp!("more");
            3
        })
        .await;
        assert_eq!(code, 3);
        assert_eq!(got.stdout, "table 1\nmore");
        assert_eq!(got.stderr, "roster: warning\n");
    }

    #[test]
    fn a_capture_stops_at_its_limit_and_says_so() {
        let mut s = String::new();
        let chunk = "é".repeat(1 << 20);
        for _ in 0..200 {
            Captured::push(&mut s, format_args!("{chunk}"));
        }
        assert!(s.len() <= CAPTURE_LIMIT + 64, "{}", s.len());
        assert!(s.ends_with("[output cut at the admin socket's limit]\n"));
    }
}
