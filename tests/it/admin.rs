//! Issue 14: the CLI beside a running `roster run` (the real binary, the sandbox): every
//! command is answered by the daemon over its admin socket, with the output and exit
//! code it has without a daemon.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use serde_json::{Value, json};

use crate::common::{Env, person};
use crate::daemon::{Daemon, env_with};

/// No scheduled pass during a test: every pass is one the test asks for.
const NEVER: &str = "0 0 0 1 1 * 2090";

/// `roster ARGS`: exit code, stdout, stderr.
async fn roster(env: &Env, args: &[&str]) -> (i32, String, String) {
    let out = env.run(args).await;
    (
        out.status.code().expect("exit code"),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A report without its times, which differ from one pass to the next.
fn timeless(text: &str) -> Value {
    let mut v: Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"));
    if let Some(o) = v.as_object_mut() {
        o.remove("started_at");
        o.remove("finished_at");
    }
    v
}

fn socket(env: &Env) -> std::path::PathBuf {
    env.path("state").join("admin.sock")
}

const QUERIES: &[&[&str]] = &[
    &["status"],
    &["status", "--json"],
    &["history"],
    &["history", "--json"],
    &[
        "history", "--person", "E2", "--vendor", "motive", "--since", "1d",
    ],
    &["explain", "E2"],
    &["explain", "E2", "--json"],
    &["explain", "E9"],
    &["plan"],
    &["plan", "--upcoming", "7d"],
    &["reconcile", "--dry-run", "--vendor", "motive"],
    &["check"],
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_command_beside_the_daemon_answers_as_without_it() {
    let env = env_with(NEVER, "").await;
    let motive = &env.sandbox.motive;
    env.write_people(&json!([
        person("E1", "Ann", "Lee", "ann@example.com"),
        person("E2", "Bob", "Ray", "bob@example.com"),
    ]));
    let (code, _) = env.reconcile().await;
    assert_eq!(code, 0);
    // Pending work for plan/explain: one change, one new person, one invalid record.
    env.write_people(&json!([
        person("E1", "Ann", "Lee", "ann@example.com"),
        person("E2", "Bob", "Raymond", "bob@example.com"),
        person("E3", "Cy", "Dee", "cy@example.com"),
        { "id": "E4", "email": "not-an-email" },
    ]));
    let mut alone = Vec::new();
    for args in QUERIES {
        alone.push(roster(&env, args).await);
    }
    let (plan_code, plan_alone) = env.json(&["plan"]).await;
    assert_eq!(plan_code, 0);

    let d = Daemon::start(&env).await;
    let mode = std::fs::metadata(socket(&env))
        .expect("socket")
        .permissions()
        .mode();
    assert_eq!(
        mode & 0o777,
        0o600,
        "the admin socket is the daemon user's only"
    );
    motive.control.clear_calls();
    for (args, (code, stdout, stderr)) in QUERIES.iter().zip(&alone) {
        let (c, out, err) = roster(&env, args).await;
        assert_eq!(
            (c, &out),
            (*code, stdout),
            "`roster {}` beside the daemon; stderr: {err}",
            args.join(" ")
        );
        // Logs differ (a pass's logs are the daemon's); errors would show here.
        assert!(
            !err.contains("in use by another"),
            "{err} (alone: {stderr})"
        );
    }
    let (code, plan) = env.json(&["plan"]).await;
    assert_eq!(code, plan_code);
    assert_eq!(
        timeless(&plan.to_string()),
        timeless(&plan_alone.to_string())
    );
    let ops = plan["vendors"]["motive"]["operations"]
        .as_array()
        .expect("operations");
    assert_eq!(ops.len(), 2, "update E2, create E3: {plan}");
    assert_eq!(motive.control.writes(), 0, "plan made no vendor write");
    assert_eq!(d.passes(), 0, "no pass ran for the queries");

    // Exit codes other than 0 come back too: an unknown vendor, an unknown explain flag.
    let (code, _, err) = roster(&env, &["plan", "--vendor", "nope"]).await;
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = roster(&env, &["rebuild-state"]).await;
    assert_eq!(code, 2);
    assert!(
        err.contains("rebuild-state needs the state directory") && err.contains("stop the daemon"),
        "{err}"
    );

    // reconcile: exactly one pass, run by the daemon, its report printed.
    let (code, report) = env.reconcile().await;
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["dry_run"], false);
    let m = &report["vendors"]["motive"];
    assert_eq!(
        (m["created"].as_i64(), m["updated"].as_i64()),
        (Some(1), Some(1)),
        "{report}"
    );
    assert_eq!(report["source"]["invalid"], 1);
    assert_eq!(motive.users().len(), 3);
    assert_eq!(d.passes(), 1, "one pass for one reconcile");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(d.passes(), 1, "and no other");
    // The pass was the daemon's: its history is what status and history now show.
    let (code, history, _) = roster(&env, &["history", "--person", "E3"]).await;
    assert_eq!(code, 0);
    assert!(history.contains("motive E3 create"), "{history}");
    let (code, status) = env.json(&["status"]).await;
    assert_eq!(code, 0);
    assert_eq!(status["vendors"]["motive"]["active"], 3, "{status}");
    assert!(status.get("replica").is_none(), "no [ha]: no replica role");

    // --force is never implied: a pass that trips a limit beside the daemon is refused.
    std::fs::write(
        &env.config,
        std::fs::read_to_string(&env.config)
            .expect("config")
            .replace("max_deactivation_ratio = 1.0", "max_deactivations = 1"),
    )
    .expect("config");
    let d = restart_after_kill(&env, d).await;
    env.write_people(&json!([person("E1", "Ann", "Lee", "ann@example.com")]));
    let (code, report) = env.reconcile().await;
    assert_eq!(code, 3, "refused: {report}");
    assert!(report["refused"].is_string());
    assert_eq!(
        motive
            .users()
            .iter()
            .filter(|u| u["status"] == "active")
            .count(),
        3
    );
    let (code, report) = env.json(&["reconcile", "--force"]).await;
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["vendors"]["motive"]["deactivated"], 2);
    let started = d
        .logs
        .lock()
        .expect("logs")
        .iter()
        .filter(|l| l["fields"]["message"] == "Pass starting.")
        .count();
    assert_eq!(
        (started, d.passes()),
        (2, 1),
        "one refused pass, then one forced"
    );
}

/// Kills the daemon of `env` with SIGKILL and starts another.
async fn restart_after_kill(env: &Env, mut d: Daemon) -> Daemon {
    d.signal("KILL");
    d.child.wait().await.expect("killed");
    Daemon::start(env).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_reconciles_run_one_pass_after_the_other() {
    let env = env_with(NEVER, "").await;
    let motive = &env.sandbox.motive;
    env.write_people(&json!([
        person("E1", "Ann", "Lee", "ann@example.com"),
        person("E2", "Bob", "Ray", "bob@example.com"),
    ]));
    let d = Daemon::start(&env).await;
    // Every call takes a while, so two passes would overlap if they could.
    motive.control.set_latency(Duration::from_millis(300));
    let (a, b) = tokio::join!(
        env.json(&["reconcile", "--full"]),
        env.json(&["reconcile", "--full"])
    );
    assert_eq!(a.0, 0, "{}", a.1);
    assert_eq!(b.0, 0, "{}", b.1);
    assert_eq!(d.passes(), 2);
    assert_eq!(
        motive.users().len(),
        2,
        "created once: {:?}",
        motive.users()
    );
    // One created both people; the other found them linked.
    let created: Vec<i64> = [&a.1, &b.1]
        .iter()
        .map(|r| r["vendors"]["motive"]["created"].as_i64().expect("created"))
        .collect();
    assert!(created == [2, 0] || created == [0, 2], "{created:?}");
    for r in [&a.1, &b.1] {
        assert!(
            r["vendors"]["motive"]["drift"].is_object(),
            "a full pass: {r}"
        );
    }
    // The two passes' times do not overlap, and the daemon's log says the same.
    let span = |r: &Value| {
        let t = |k: &str| {
            chrono::DateTime::parse_from_rfc3339(r[k].as_str().expect("time")).expect("rfc3339")
        };
        (t("started_at"), t("finished_at"))
    };
    let (mut first, mut second) = (span(&a.1), span(&b.1));
    if second.0 < first.0 {
        std::mem::swap(&mut first, &mut second);
    }
    assert!(first.1 <= second.0, "{first:?} overlaps {second:?}");
    let logs = d.logs.lock().expect("logs").clone();
    let events: Vec<&str> = logs
        .iter()
        .filter_map(|l| l["fields"]["message"].as_str())
        .filter(|m| *m == "Pass starting." || *m == "Pass complete.")
        .collect();
    assert_eq!(
        events,
        [
            "Pass starting.",
            "Pass complete.",
            "Pass starting.",
            "Pass complete."
        ]
    );
    // Both listings reached the vendor, the second after the first pass's last call.
    let lists = motive
        .control
        .calls()
        .iter()
        .filter(|c| {
            c.method == "GET" && c.path.ends_with("/users") && !c.query.contains("external")
        })
        .count();
    assert!(lists >= 2, "each full pass listed the accounts");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_socket_left_by_sigkill_is_replaced_at_the_next_start() {
    let env = env_with(NEVER, "").await;
    env.write_people(&json!([person("E1", "Ann", "Lee", "ann@example.com")]));
    let mut d = Daemon::start(&env).await;
    let (code, before) = env.json(&["status"]).await;
    assert_eq!(code, 0);
    d.signal("KILL");
    d.child.wait().await.expect("killed");
    assert!(
        socket(&env).exists(),
        "SIGKILL leaves the socket file behind"
    );
    // Without a daemon the CLI opens the store itself, stale socket or not.
    let (code, alone) = env.json(&["status"]).await;
    assert_eq!((code, &alone), (0, &before));

    let d = Daemon::start(&env).await;
    let replaced = d.logs.lock().expect("logs").iter().any(|l| {
        l["fields"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("Replacing a stale admin socket"))
    });
    assert!(replaced, "the daemon says it replaced the stale socket");
    let (code, again) = env.json(&["status"]).await;
    assert_eq!((code, &again), (0, &before), "answered by the new daemon");
    let (code, report) = env.reconcile().await;
    assert_eq!(code, 0, "{report}");
    assert_eq!(d.passes(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_of_another_state_directory_is_never_used() {
    let a = env_with(NEVER, "").await;
    let b = env_with(NEVER, "").await;
    for env in [&a, &b] {
        env.write_people(&json!([person("E1", "Ann", "Lee", "ann@example.com")]));
    }
    let _da = Daemon::start(&a).await;
    let _db = Daemon::start(&b).await;
    // B's CLI pointed at A's socket (a shared `server.admin_socket`, say).
    let text = std::fs::read_to_string(&b.config).expect("config");
    std::fs::write(
        &b.config,
        format!("{text}admin_socket = \"{}\"\n", socket(&a).display()),
    )
    .expect("config");
    let (code, out, err) = roster(&b, &["status"]).await;
    assert_eq!(code, 2, "{out}");
    assert!(out.is_empty(), "nothing of A's is shown: {out}");
    assert!(err.contains("in use by another roster process"), "{err}");
    assert!(err.contains("serves the state directory"), "{err}");
    let (code, _, err) = roster(&b, &["reconcile"]).await;
    assert_eq!(code, 2, "{err}");
    assert_eq!(b.sandbox.motive.users().len(), 0);
    assert_eq!(a.sandbox.motive.users().len(), 0);
}

/// Another user is refused by the daemon's peer check even when the socket's mode would
/// let them connect (here: made 0666 on purpose). Needs root to run the client as nobody.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_user_is_refused() {
    if !running_as_root() {
        eprintln!(
            "another_user_is_refused: not root, cannot run a client as nobody; the peer check's unit test covers the rule"
        );
        return;
    }
    let env = env_with(NEVER, "").await;
    env.write_people(&json!([person("E1", "Ann", "Lee", "ann@example.com")]));
    let _d = Daemon::start(&env).await;
    // Let nobody reach the config, the people file, the store (to find it locked) and
    // the socket: only the daemon's own check is left to refuse them.
    open_up(env.dir.path());
    let bin = runnable_by_nobody(&env);
    let nobody = |args: &[&str]| {
        let mut c = std::process::Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(&bin)
            .arg("--config")
            .arg(&env.config)
            .args(args)
            .env_remove("RUST_LOG");
        c.output().expect("setpriv runs")
    };
    let out = nobody(&["status"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(out.stdout.is_empty());
    assert!(
        err.contains("uid 65534 may not use this admin socket"),
        "refused by the peer check: {err}"
    );
    let out = nobody(&["reconcile"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(env.sandbox.motive.users().len(), 0, "no pass for nobody");
    // Root (this test) is let in.
    let (code, _) = env.json(&["status"]).await;
    assert_eq!(code, 0);
}

/// The roster binary where nobody can run it: the build's own, or (when the checkout
/// is in a directory only root may enter) a link or copy in the test's directory.
fn runnable_by_nobody(env: &Env) -> std::path::PathBuf {
    let built = std::path::PathBuf::from(env!("CARGO_BIN_EXE_roster"));
    let runs = |bin: &std::path::Path| {
        std::process::Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(bin)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if runs(&built) {
        return built;
    }
    let here = env.path("roster-bin");
    if std::fs::hard_link(&built, &here).is_err() {
        std::fs::copy(&built, &here).expect("copy the binary");
    }
    std::fs::set_permissions(&here, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    assert!(runs(&here), "nobody can run {}", here.display());
    here
}

fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

fn open_up(dir: &std::path::Path) {
    let mode = |p: &std::path::Path, m| {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).expect("chmod");
    };
    mode(dir, 0o777);
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("entry").path();
        let meta = std::fs::symlink_metadata(&path).expect("meta");
        if meta.is_dir() {
            open_up(&path);
        } else {
            mode(&path, 0o666);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconcile_given_up_before_its_pass_starts_runs_no_pass() {
    let env = env_with(NEVER, "").await;
    let motive = &env.sandbox.motive;
    env.write_people(&json!([
        person("E1", "Ann", "Lee", "ann@example.com"),
        person("E2", "Bob", "Ray", "bob@example.com"),
        person("E3", "Cy", "Dee", "cy@example.com"),
    ]));
    let d = Daemon::start(&env).await;
    motive.control.set_latency(Duration::from_millis(1000));
    let first = tokio::spawn({
        let out = env.command(&["reconcile", "--json"]).output();
        async move { out.await.expect("reconcile") }
    });
    let logged = |m: &str| {
        d.logs
            .lock()
            .expect("logs")
            .iter()
            .filter(|l| {
                l["fields"]["message"]
                    .as_str()
                    .is_some_and(|x| x.starts_with(m))
            })
            .count()
    };
    crate::daemon::wait_for(Duration::from_secs(10), || {
        (logged("Pass starting.") == 1).then_some(())
    })
    .await
    .expect("the first pass starts");
    // A second reconcile waits behind it; its user gives up (Ctrl-C) while the first
    // pass still runs (3 people, a lookup and a create each, 1 s per call, 2 at a time).
    let mut second = env
        .command(&["reconcile"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(
        logged("Pass complete."),
        0,
        "the first pass is still running"
    );
    second.start_kill().expect("kill");
    second.wait().await.expect("killed");
    let out = first.await.expect("first");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(motive.users().len(), 3);
    crate::daemon::wait_for(Duration::from_secs(10), || {
        (logged("A pass asked for over the admin socket was given up") == 1).then_some(())
    })
    .await
    .expect("the given-up pass is skipped, and logged");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(logged("Pass starting."), 1, "only the first pass ran");
}
