//! Alerts when a pass fails: `[[notify]]` targets (a generic JSON webhook, or Slack's
//! incoming-webhook text) hear of refused passes, rejected vendor credentials and
//! operations that failed after all retries — once per condition, again after
//! `repeat_after`, and once when it ends.
//!
//! Layout: `config` (the `[[notify]]` tables), `event` (PURE: a `Report` → conditions
//! seen active or clear), `state` (PURE: the de-duplication state machine, clock passed
//! in), `body` (PURE: the two formats), `deliver` (the HTTP client and retries), and
//! here the one entry point, `Notifier::after_pass`, which the pass callers (one-shot
//! `reconcile`, the daemon) call after every pass.
//!
//! Each target's state lives in the store's `meta` tree, so de-duplication holds across
//! one-shot runs (a CronJob or timer runs one process per pass). An alert that cannot be
//! delivered leaves the state as it was and is decided again after the next pass.
//! Delivery never fails a pass and never changes its exit code.

pub mod body;
pub mod config;
pub mod deliver;
pub mod event;
pub mod state;

use chrono::{DateTime, Utc};
use tracing::{info, warn};

pub use config::{EventName, Format, TargetSettings};
pub use deliver::DeliveryError;

use crate::report::Report;
use crate::store::Store;
use event::{Condition, Seen};
use state::AlertState;

/// Every configured target, ready to send.
pub struct Notifier {
    targets: Vec<Target>,
    policy: deliver::Policy,
}

struct Target {
    settings: TargetSettings,
    client: reqwest::Client,
}

impl Notifier {
    /// One HTTP client per target (each has its own timeout).
    ///
    /// # Errors
    /// A client that cannot be built.
    pub fn new(targets: &[TargetSettings]) -> Result<Self, DeliveryError> {
        let targets = targets
            .iter()
            .map(|settings| {
                Ok(Target {
                    settings: settings.clone(),
                    client: deliver::client(settings.timeout)?,
                })
            })
            .collect::<Result<_, DeliveryError>>()?;
        Ok(Self {
            targets,
            policy: deliver::Policy::default(),
        })
    }

    /// Sends what `report` calls for to every target (concurrently), and records it.
    /// Dry runs send nothing. Problems are logged, never returned: an alert must not
    /// fail the pass it reports on.
    pub async fn after_pass(&self, store: &Store, report: &Report) {
        if self.targets.is_empty() || report.dry_run {
            return;
        }
        let observed = event::observe(report);
        let now = Utc::now();
        futures::future::join_all(
            self.targets
                .iter()
                .map(|t| t.after_pass(store, report, &observed, now, self.policy)),
        )
        .await;
    }
}

impl Target {
    async fn after_pass(
        &self,
        store: &Store,
        report: &Report,
        observed: &[(Condition, Seen)],
        now: DateTime<Utc>,
        policy: deliver::Policy,
    ) {
        let label = self.settings.label.as_str();
        let mut state: AlertState = match store.alert_state(label) {
            Ok(s) => s.unwrap_or_default(),
            Err(error) => {
                // Losing it costs at most a repeated alert or a missed recovery message.
                warn!(notify = label, error = %error, "Alert state unreadable; starting afresh.");
                AlertState::default()
            }
        };
        let wanted: Vec<(Condition, Seen)> = observed
            .iter()
            .filter(|(c, _)| self.settings.wants(c.problem.event()))
            .cloned()
            .collect();
        let alerts = state::due(&state, &wanted, now, self.settings.repeat_after);
        let mut changed = false;
        for alert in &alerts {
            let event = alert.event().as_str();
            let condition = alert.condition.key();
            if !self.settings.wants(alert.event()) {
                // Not subscribed (a recovery): the state still moves on.
                state::record(&mut state, alert, now);
                changed = true;
                continue;
            }
            let body = body::render(self.settings.format, alert, report, now);
            match deliver::post(&self.client, &self.settings.url, &body, policy, label).await {
                Ok(()) => {
                    info!(notify = label, event, condition = %condition, "Alert sent.");
                    state::record(&mut state, alert, now);
                    changed = true;
                }
                Err(error) => {
                    // The rest would most likely fail the same way; all are decided
                    // again after the next pass.
                    warn!(notify = label, event, condition = %condition, error = %error,
                          "Alert not delivered; it is tried again after the next pass.");
                    break;
                }
            }
        }
        if changed && let Err(error) = store.set_alert_state(label, &state).await {
            warn!(notify = label, error = %error, "Could not record what was alerted; an alert may be repeated.");
        }
    }
}
