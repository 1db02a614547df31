use super::*;
use crate::model::Op;
use crate::notify::event::Condition;
use crate::report::{Credentials, OpError, VendorReport};
use chrono::TimeZone;

fn t(h: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 2, h, 0, 0)
        .single()
        .expect("date")
}

/// A failed operation as the pass reports it: `kind` and `status` typed, the message
/// free text (here quoting person data, as vendors' messages do).
fn failed(person: &str, op: Op, kind: &str, status: Option<u16>, message: &str) -> OpError {
    OpError {
        person: person.into(),
        op,
        message: message.into(),
        outcome: Outcome::Failed,
        kind: Some(kind.into()),
        status,
    }
}

/// A pass where Motive rejected seven operations with messages that quote the
/// person's data, and one was skipped.
fn failing_report() -> Report {
    let mut r = Report {
        started_at: Some(t(1)),
        finished_at: Some(t(1)),
        ..Report::default()
    };
    r.source.records = 12;
    let mut errors: Vec<OpError> = (0..7)
        .map(|i| {
            failed(
                &format!("E10{i}"),
                Op::Create,
                "rejected",
                Some(422),
                &format!("rejected (422): email ann.lee{i}@example.com is taken"),
            )
        })
        .collect();
    errors.push(OpError {
        outcome: Outcome::Skipped,
        ..failed(
            "E200",
            Op::Create,
            "unmappable",
            None,
            "time_tracking_mode `x` for Ann Lee",
        )
    });
    r.vendors.insert(
        "motive".into(),
        VendorReport {
            created: 3,
            failed: 7,
            skipped: 1,
            errors,
            credentials: Some(Credentials::Accepted),
            ..VendorReport::default()
        },
    );
    r
}

fn raised(condition: Condition, repeat: bool) -> Alert {
    Alert {
        condition,
        change: Change::Raised {
            repeat,
            since: t(0),
        },
    }
}

#[test]
fn error_classes_are_the_typed_kind_and_status_never_the_message() {
    let mut r = failing_report();
    if let Some(v) = r.vendors.get_mut("motive") {
        // Wording that once meant another class: only the typed fields count.
        v.errors[0].message = "credentials rejected (401): server error 500".into();
        v.errors[1].kind = None;
        v.errors[1].status = None;
        v.errors[2] = failed("E102", Op::Update, "server", Some(503), "busy");
        v.errors[3] = failed("E103", Op::Update, "not_sent", None, "not sent: x");
    }
    let alert = raised(Condition::at(Problem::OperationsFailed, "motive"), false);
    let body = webhook(&alert, &r, t(2));
    let shown: Vec<(String, Value)> = body["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| {
            (
                e["error"].as_str().unwrap_or_default().into(),
                e["status"].clone(),
            )
        })
        .collect();
    assert_eq!(
        shown[..4],
        [
            ("rejected".into(), json!(422)),
            ("other".into(), Value::Null),
            ("server".into(), json!(503)),
            ("not_sent".into(), Value::Null),
        ]
    );
}

#[test]
fn webhook_body_has_event_outcome_counts_and_first_errors_only() {
    let r = failing_report();
    let alert = raised(Condition::at(Problem::OperationsFailed, "motive"), false);
    let body = webhook(&alert, &r, t(2));
    assert_eq!(body["version"], 1);
    assert_eq!(body["event"], "operations_failed");
    assert_eq!(body["status"], "firing");
    assert_eq!(body["condition"], "operations_failed/motive");
    assert_eq!(body["vendor"], "motive");
    assert_eq!(body["repeat"], false);
    assert_eq!(body["time"], "2026-11-02T02:00:00Z");
    assert_eq!(body["pass"]["outcome"], "failed_operations");
    assert_eq!(body["pass"]["exit_code"], 1);
    assert_eq!(body["pass"]["source"]["records"], 12);
    assert_eq!(body["pass"]["vendors"]["motive"]["created"], 3);
    assert_eq!(body["pass"]["vendors"]["motive"]["failed"], 7);
    assert_eq!(body["pass"]["vendors"]["motive"]["credentials"], "accepted");
    assert_eq!(body["errors_total"], 7);
    let errors = body["errors"].as_array().expect("errors");
    assert_eq!(errors.len(), FIRST_ERRORS);
    assert_eq!(
        errors[0],
        json!({"vendor": "motive", "person": "E100", "op": "create", "error": "rejected", "status": 422})
    );
    let text = body.to_string();
    assert!(
        !text.contains("example.com") && !text.contains("Ann Lee"),
        "no person data beyond ids: {text}"
    );
    assert!(
        body["summary"]
            .as_str()
            .expect("summary")
            .contains("7 operations failed at motive"),
        "{body}"
    );
}

#[test]
fn webhook_body_of_a_refusal_and_of_a_recovery() {
    let r = Report {
        refused: Some(format!("safety limit: motive: {}", "x".repeat(2000))),
        ..Report::default()
    };
    let body = webhook(&raised(Condition::pass_refused(), true), &r, t(5));
    assert_eq!(body["event"], "pass_refused");
    assert_eq!(body["repeat"], true);
    assert_eq!(body["since"], "2026-11-02T00:00:00Z");
    assert_eq!(body["vendor"], Value::Null);
    assert_eq!(body["pass"]["outcome"], "refused");
    assert_eq!(body["pass"]["exit_code"], 3);
    let reason = body["pass"]["refused"].as_str().expect("reason");
    assert!(reason.starts_with("safety limit: motive") && reason.chars().count() <= 501);
    assert!(
        body["summary"]
            .as_str()
            .expect("summary")
            .contains("Refused since 2026-11-02T00:00:00Z")
    );

    let back = Alert {
        condition: Condition::at(Problem::CredentialsRejected, "motive"),
        change: Change::Recovered { since: t(0) },
    };
    let body = webhook(&back, &failing_report(), t(5));
    assert_eq!(body["event"], "recovered");
    assert_eq!(body["status"], "resolved");
    assert_eq!(body["recovered"], "credentials_rejected");
    assert_eq!(body["errors"], json!([]));
    assert_eq!(
        body["summary"],
        "motive accepts roster's credentials again (rejected since 2026-11-02T00:00:00Z)."
    );
}

#[test]
fn slack_body_is_escaped_text_only() {
    let mut r = failing_report();
    if let Some(v) = r.vendors.get_mut("motive") {
        v.errors[0].person = "<E&1>".into();
    }
    let body = slack(
        &raised(Condition::at(Problem::OperationsFailed, "motive"), false),
        &r,
    );
    let obj = body.as_object().expect("object");
    assert_eq!(obj.len(), 1, "only `text`: {body}");
    let text = body["text"].as_str().expect("text");
    assert!(
        text.starts_with(":warning: *roster*: 7 operations failed at motive"),
        "{text}"
    );
    assert!(
        text.contains("&lt;E&amp;1&gt; create (rejected 422)"),
        "{text}"
    );
    assert!(text.contains("and 2 more"), "{text}");
    assert!(!text.contains("example.com"), "{text}");

    let creds = Report {
        vendors: [(
            "motive".to_string(),
            VendorReport {
                failed: 2,
                credentials: Some(Credentials::Rejected),
                // In person order the one not attempted comes first; the status
                // is the refused call's.
                errors: vec![
                    failed(
                        "E0",
                        Op::Update,
                        "auth",
                        None,
                        "not attempted: the vendor rejected roster's credentials",
                    ),
                    failed(
                        "E1",
                        Op::Update,
                        "auth",
                        Some(401),
                        "credentials rejected (401): invalid key; no further calls",
                    ),
                ],
                ..VendorReport::default()
            },
        )]
        .into(),
        ..Report::default()
    };
    let text = slack(
        &raised(Condition::at(Problem::CredentialsRejected, "motive"), false),
        &creds,
    )["text"]
        .as_str()
        .expect("text")
        .to_string();
    assert_eq!(
        text,
        ":rotating_light: *roster*: motive rejected roster's credentials (401); no further \
         calls were made to it in this pass (2 operations not done)."
    );
}
