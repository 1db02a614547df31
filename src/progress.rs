//! Progress of a long pass: bars per vendor in a terminal, periodic log lines in the
//! daemon. Both are `sync::ProgressHook`s fed by the executor after each operation.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use tracing::info;

use crate::sync::ProgressHook;

/// One bar per vendor on stderr, made when the vendor's first operation finishes.
pub fn terminal_bars() -> ProgressHook {
    let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
    let bars: Mutex<HashMap<String, ProgressBar>> = Mutex::new(HashMap::new());
    let style = ProgressStyle::with_template("{prefix:>14} [{bar:30}] {pos}/{len} {elapsed}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    Arc::new(move |vendor, done, total| {
        let mut bars = bars.lock().unwrap_or_else(|p| p.into_inner());
        let bar = bars.entry(vendor.to_string()).or_insert_with(|| {
            let b = multi.add(ProgressBar::new(total as u64));
            b.set_style(style.clone());
            b.set_prefix(vendor.to_string());
            b
        });
        bar.set_position(done as u64);
        if done >= total {
            bar.finish();
        }
    })
}

/// A log line per vendor at most every `every`, and one when the vendor is done, so long
/// passes show they are moving in the daemon's logs.
pub fn log_lines(every: Duration) -> ProgressHook {
    let last: Mutex<HashMap<String, Instant>> = Mutex::new(HashMap::new());
    Arc::new(move |vendor, done, total| {
        let mut last = last.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let started = *last.entry(vendor.to_string()).or_insert(now);
        let due = now.duration_since(started) >= every;
        if due || (done == total && total > 0 && now.duration_since(started) >= every / 2) {
            info!(vendor, done, total, "Pass progress.");
            last.insert(vendor.to_string(), now);
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hooks_accept_progress_from_several_vendors() {
        let bars = terminal_bars();
        let logs = log_lines(Duration::from_millis(0));
        for (v, total) in [("motive", 3), ("chat", 2)] {
            for done in 1..=total {
                bars(v, done, total);
                logs(v, done, total);
            }
        }
    }
}
