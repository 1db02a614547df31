//! Alerts when a pass fails: `[[notify]]` targets (a generic JSON webhook, or Slack's
//! incoming-webhook text) hear of refused passes, rejected vendor credentials and
//! operations that failed after all retries — once per condition, again after
//! `repeat_after`, and once when it ends.
//!
//! Layout: `config` (the `[[notify]]` tables), `event` (PURE: a `Report` → conditions
//! seen active or clear), `state` (PURE: the de-duplication state machine, clock passed
//! in), `body` (PURE: the two formats), `deliver` (the POST and its retries, on the one
//! client of `http::client`), and
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use axum::Router;
    use axum::routing::post;
    use serde_json::Value;

    use crate::config::Secret;

    /// A receiver keeping every JSON body; its URL.
    async fn receiver() -> (String, Arc<Mutex<Vec<Value>>>) {
        let got = Arc::new(Mutex::new(Vec::new()));
        let keep = Arc::clone(&got);
        let app = Router::new().route(
            "/hook",
            post(move |axum::Json(body): axum::Json<Value>| {
                let keep = Arc::clone(&keep);
                async move {
                    keep.lock().expect("lock").push(body);
                    "ok"
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        (format!("http://{addr}/hook"), got)
    }

    fn target(label: &str, url: &str, events: &[EventName]) -> TargetSettings {
        TargetSettings {
            label: label.into(),
            format: Format::Webhook,
            url: Secret::new(url),
            events: events.to_vec(),
            repeat_after: Duration::from_secs(3600),
            timeout: Duration::from_secs(2),
        }
    }

    fn notifier(targets: &[TargetSettings]) -> Notifier {
        let mut n = Notifier::new(targets).expect("client");
        n.policy = deliver::Policy {
            attempts: 2,
            first_wait: Duration::from_millis(1),
            max_wait: Duration::from_millis(10),
        };
        n
    }

    fn refused() -> Report {
        Report {
            refused: Some("safety limit: motive".into()),
            ..Report::default()
        }
    }

    fn events(got: &Arc<Mutex<Vec<Value>>>) -> Vec<String> {
        got.lock()
            .expect("lock")
            .iter()
            .map(|b| b["event"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    #[tokio::test]
    async fn an_unsubscribed_recovery_is_not_sent_but_ends_the_condition() {
        let store = Store::temporary().expect("store");
        let (url, got) = receiver().await;
        let n = notifier(&[target("only-refusals", &url, &[EventName::PassRefused])]);
        n.after_pass(&store, &refused()).await;
        n.after_pass(&store, &refused()).await;
        n.after_pass(&store, &Report::default()).await;
        assert_eq!(events(&got), ["pass_refused"]);
        // Refused again later: a new first alert, not a silent continuation.
        n.after_pass(&store, &refused()).await;
        assert_eq!(events(&got), ["pass_refused", "pass_refused"]);
        assert_eq!(got.lock().expect("lock")[1]["repeat"], false);
    }

    #[tokio::test]
    async fn each_target_keeps_its_own_state() {
        let store = Store::temporary().expect("store");
        let (url, got) = receiver().await;
        let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let down = format!("http://{}/hook", closed.local_addr().expect("addr"));
        drop(closed);
        let all = EventName::ALL;
        n_pass(
            &store,
            &[target("up", &url, &all), target("down", &down, &all)],
        )
        .await;
        assert_eq!(events(&got), ["pass_refused"]);
        let up: Option<AlertState> = store.alert_state("up").expect("state");
        let down_state: Option<AlertState> = store.alert_state("down").expect("state");
        assert!(up.is_some_and(|s| s.held.contains_key("pass_refused")));
        assert!(down_state.is_none(), "undelivered: nothing recorded");
        // The same receiver now under the name that failed: it is still owed the alert.
        n_pass(
            &store,
            &[target("up", &url, &all), target("down", &url, &all)],
        )
        .await;
        assert_eq!(events(&got), ["pass_refused", "pass_refused"]);
    }

    async fn n_pass(store: &Store, targets: &[TargetSettings]) {
        notifier(targets).after_pass(store, &refused()).await;
    }

    #[tokio::test]
    async fn an_unreadable_state_starts_afresh() {
        let store = Store::temporary().expect("store");
        store
            .set_alert_state("t", &"not an alert state")
            .await
            .expect("write");
        let (url, got) = receiver().await;
        let n = notifier(&[target("t", &url, &EventName::ALL)]);
        n.after_pass(&store, &refused()).await;
        assert_eq!(events(&got), ["pass_refused"]);
        let state: Option<AlertState> = store.alert_state("t").expect("rewritten");
        assert!(state.is_some());
    }
}
