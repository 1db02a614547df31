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

/// Writes `args` to stdout.
pub fn out(args: fmt::Arguments<'_>) {
    if STDOUT_GONE.load(Ordering::Relaxed) {
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
