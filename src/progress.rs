//! Progress of a long pass: bars per vendor in a terminal, periodic log lines in the
//! daemon. Both are `Hooks` fed by the executor after each operation.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use tracing::info;

use crate::http::Observer;
use crate::pass::Hooks;

/// One bar per vendor on stderr, made when the vendor's first operation finishes.
pub struct TerminalBars {
    multi: MultiProgress,
    bars: Mutex<HashMap<String, ProgressBar>>,
    style: ProgressStyle,
}

impl TerminalBars {
    pub fn new() -> Self {
        Self {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
            bars: Mutex::new(HashMap::new()),
            style: ProgressStyle::with_template("{prefix:>14} [{bar:30}] {pos}/{len} {elapsed}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        }
    }
}

impl Default for TerminalBars {
    fn default() -> Self {
        Self::new()
    }
}

impl Observer for TerminalBars {}

impl Hooks for TerminalBars {
    fn progress(&self, vendor: &str, done: usize, total: usize) {
        let mut bars = self.bars.lock().unwrap_or_else(|p| p.into_inner());
        let bar = bars.entry(vendor.to_string()).or_insert_with(|| {
            let b = self.multi.add(ProgressBar::new(total as u64));
            b.set_style(self.style.clone());
            b.set_prefix(vendor.to_string());
            b
        });
        bar.set_position(done as u64);
        if done >= total {
            bar.finish();
        }
    }
}

/// A log line per vendor at most every `every`, and one when the vendor is done, so long
/// passes show they are moving in the daemon's logs.
pub struct LogLines {
    every: Duration,
    last: Mutex<HashMap<String, Instant>>,
}

impl LogLines {
    pub fn new(every: Duration) -> Self {
        Self {
            every,
            last: Mutex::new(HashMap::new()),
        }
    }
}

impl Observer for LogLines {}

impl Hooks for LogLines {
    fn progress(&self, vendor: &str, done: usize, total: usize) {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let started = *last.entry(vendor.to_string()).or_insert(now);
        let due = now.duration_since(started) >= self.every;
        if due || (done == total && total > 0 && now.duration_since(started) >= self.every / 2) {
            info!(vendor, done, total, "Pass progress.");
            last.insert(vendor.to_string(), now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hooks_accept_progress_from_several_vendors() {
        let bars = TerminalBars::new();
        let logs = LogLines::new(Duration::from_millis(0));
        for (v, total) in [("motive", 3), ("chat", 2)] {
            for done in 1..=total {
                bars.progress(v, done, total);
                logs.progress(v, done, total);
            }
        }
    }
}
