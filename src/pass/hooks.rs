//! What a pass tells the outside while it runs: retries, progress, and (through
//! `http::Observer`) throttling and pacing. The daemon's metrics and the progress
//! displays listen here.
//!
//! Adding a hook: a new method with a do-nothing default on `Hooks`, forwarded in the
//! `Arc<T>` and `Both` impls below, called where the event happens, and implemented by
//! whoever listens; nothing else changes.

use std::sync::Arc;
use std::time::Duration;

use crate::http::Observer;
use crate::vendor::VendorError;

pub trait Hooks: Observer {
    /// A vendor call failed and will be tried again after `wait`.
    fn retry(&self, _vendor: &str, _error: &VendorError, _wait: Duration) {}
    /// `done` of `total` operations at `vendor` are finished.
    fn progress(&self, _vendor: &str, _done: usize, _total: usize) {}
}

/// Hears nothing.
pub struct NoHooks;

impl Observer for NoHooks {}
impl Hooks for NoHooks {}

impl<T: Hooks + ?Sized> Observer for Arc<T> {
    fn throttled(&self, remote: &str, route: &str) {
        (**self).throttled(remote, route);
    }
    fn pacing(&self, remote: &str, rate: Option<f64>, hold: Option<Duration>) {
        (**self).pacing(remote, rate, hold);
    }
}

impl<T: Hooks + ?Sized> Hooks for Arc<T> {
    fn retry(&self, vendor: &str, error: &VendorError, wait: Duration) {
        (**self).retry(vendor, error, wait);
    }
    fn progress(&self, vendor: &str, done: usize, total: usize) {
        (**self).progress(vendor, done, total);
    }
}

/// Two listeners heard together (e.g. the daemon's metrics and its progress log).
pub struct Both<A, B>(pub A, pub B);

impl<A: Hooks, B: Hooks> Observer for Both<A, B> {
    fn throttled(&self, remote: &str, route: &str) {
        self.0.throttled(remote, route);
        self.1.throttled(remote, route);
    }
    fn pacing(&self, remote: &str, rate: Option<f64>, hold: Option<Duration>) {
        self.0.pacing(remote, rate, hold);
        self.1.pacing(remote, rate, hold);
    }
}

impl<A: Hooks, B: Hooks> Hooks for Both<A, B> {
    fn retry(&self, vendor: &str, error: &VendorError, wait: Duration) {
        self.0.retry(vendor, error, wait);
        self.1.retry(vendor, error, wait);
    }
    fn progress(&self, vendor: &str, done: usize, total: usize) {
        self.0.progress(vendor, done, total);
        self.1.progress(vendor, done, total);
    }
}
