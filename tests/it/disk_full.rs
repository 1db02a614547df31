//! A full disk in the middle of a pass, for real (issue 11, low): the binary runs under a
//! file-size limit, so sled's write fails with EFBIG as it would with ENOSPC. The pass
//! stops at that write, starts no further vendor call, prints its report, and each
//! person's entry says exactly whether the vendor acknowledged.

use serde_json::{Value, json};

use crate::common::{Env, person};

fn people(last: &str) -> Value {
    json!(
        (0..150)
            .map(|i| person(
                &format!("E{i:02}"),
                "Pat",
                &format!("{last}{i}"),
                &format!("p{i}@example.com")
            ))
            .collect::<Vec<_>>()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_stops_the_pass_and_the_report_says_what_reached_the_vendor() {
    let env = Env::motive().await;
    let motive = &env.sandbox.motive;
    env.write_people(&people("Lee"));
    let (code, r) = env.reconcile().await;
    assert_eq!(code, 0, "{r}");

    // sled keeps its log in 512 KiB segments and sizes the file to the end of the current
    // one when it opens. The first pass left the log well inside the first segment; a
    // file-size limit at its end (1024 blocks of 512 bytes) lets the store open, and
    // this pass, whose records carry 4 KiB more each (600 KiB in all), needs the next
    // segment part-way through.
    let mut changed = people("Ray");
    for p in changed.as_array_mut().expect("people") {
        p["attributes"] = json!({ "motive.carrier_street": "x".repeat(4096) });
    }
    env.write_people(&changed);
    motive.control.clear_calls();
    // SIGXFSZ is ignored so that the write fails rather than the signal killing roster.
    let out = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "trap '' XFSZ; ulimit -f 1024; exec '{}' --config '{}' reconcile --json",
            env!("CARGO_BIN_EXE_roster"),
            env.config.display()
        ))
        .output()
        .await
        .expect("roster runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    let r: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("the report is printed ({e}):\n{stdout}\n{stderr}"));
    assert!(r["stopped"].is_string(), "{r}");
    assert!(!stderr.contains("panicked"), "{stderr}");

    let sent = motive
        .control
        .calls()
        .iter()
        .filter(|c| c.method == "PUT" && c.status == 200)
        .count();
    let m = &r["vendors"]["motive"];
    let recorded = m["updated"].as_u64().expect("updated") as usize;
    let errors = m["errors"].as_array().expect("errors");
    let unrecorded = errors
        .iter()
        .filter(|e| {
            e["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("done at the vendor, not recorded"))
        })
        .count();
    assert_eq!(
        sent,
        recorded + unrecorded,
        "every acknowledged update is either recorded or said not to be: {r}"
    );
    assert!(
        sent < 150,
        "the pass stopped early: {sent} sent, {recorded} recorded, {unrecorded} not"
    );
    assert!(unrecorded >= 1, "{r}");
    assert_eq!(recorded + errors.len(), 150, "{r}");
    for e in errors {
        let message = e["message"].as_str().expect("message");
        assert!(
            message.starts_with("done at the vendor, not recorded")
                || message.contains("not attempted")
                || message.contains("nothing was done at the vendor"),
            "{e}"
        );
    }

    // With room again the next pass finishes the job, and then nothing is left to do.
    let (code, r) = env.reconcile().await;
    assert_eq!(code, 0, "{r}");
    motive.control.clear_calls();
    let (code, r) = env.reconcile().await;
    assert_eq!(code, 0, "{r}");
    assert_eq!(motive.control.writes(), 0, "{r}");
    assert!(motive.users().iter().all(|u| {
        u["last_name"]
            .as_str()
            .is_some_and(|l| l.starts_with("Ray"))
    }));
    assert_eq!(motive.users().len(), 150, "no second account");
}
