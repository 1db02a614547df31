//! roster's benchmark: N synthetic people × 4 vendors, a table of what a pass costs.
//!
//! ```sh
//! cargo bench --bench roster_bench -- --quick                 # 10k people, short scenarios
//! cargo bench --bench roster_bench -- --people 10000,20000,100000,1000000 --runs 7
//! cargo bench --bench roster_bench -- --people 20000,100000 --one-shot  # section 1 only
//! ```
//!
//! Setup: N people (one JSON array, about 190 bytes a person) and a store holding what
//! each of 4 vendors (Motive, DriveKit, Damoov, Rocket.Chat) was last sent for every one
//! of them, plus the audit history a first pass leaves (one entry per person and vendor,
//! at most the default 100000). Scenarios:
//!
//! 1. One-shot runs as users pay for them (a CronJob, a systemd timer), each a process
//!    of its own, median of `--runs` (7; 3 above 100k people) in turn:
//!    `bare`: `examples/bare_parse.rs` — a plain typed serde parse of the same file that
//!    uses nothing of roster (its floor); `no-op`: `roster reconcile` with nothing to do
//!    (4 vendors, and `--vendor motive` alone); `open`: a fresh process opening the
//!    store (`Store::open_with_cache`) right after such a run, i.e. with sled's
//!    recovery of what that run wrote. Peak RSS is the process's own (`wait4`).
//! 2. In one process (the binary re-invokes itself with `--child …`, so that its peak
//!    RSS, `VmHWM`, is its own): `read_file`: roster's file parser; `noop`: a
//!    `pass::run_once` pass where nothing changed, best of 5 in one process (the store
//!    stays open, as in the daemon); `changed`: a pass where 1% of the people changed
//!    their email; the vendors ack instantly in-process (what is measured is roster's
//!    own work: read, map, diff, push executor, store writes and audit history);
//! 3. `push`: updates against the Motive sandbox fake with injected latency, at
//!    concurrency C: operations/s against the ideal C / latency (best of 3 passes);
//! 4. `ratelimit`: updates against the Rocket.Chat fake with a rate limit: achieved rate /
//!    limit and the 429s received;
//! 5. `burst`: the same update pass against the Motive fake without and with a 6 s storm of
//!    429s (`Retry-After: 2`) at its start (goal: at most the storm plus 2 s);
//! 6. `flaky`: 100 updates at concurrency 4 while half of all calls are answered 429 with
//!    `Retry-After: 1` (the same call never refused more than twice in a row).
//!
//! Generated data is cached under `target/roster-bench/N/` (delete it to regenerate).
//! Not a test: nothing here asserts a speed; it is not run in CI.
//!
//! One file of about 800 lines: a `[[bench]]` target with `harness = false` is one
//! program, and its scenarios share the child-process and table plumbing.

// A measuring tool, not production code: a broken setup should stop it loudly.
#![allow(clippy::panic, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use roster::budget::Budget;
use roster::model::{Changes, Fields, Person, PersonId};
use roster::model::{RecordState, VendorRecord};
use roster::pass::{Context, PassOptions};
use roster::plan::Desired;
use roster::settings::Settings;
use roster::shutdown::Shutdown;
use roster::store::{HistoryEntry, Store};
use roster::vendor::{Remote, Vendor, VendorError};
use serde_json::{Value, json};

// The allocator the `roster` binary uses (see src/main.rs), so figures match it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const CHUNK: usize = 20_000;
/// Parse and no-op timings are the best of this many runs in the same process (the
/// machines this runs on share their cores: single runs vary by ±30%).
const REPS: usize = 5;
/// The audit history a prepared store holds at most: roster's default `max_entries`.
const HISTORY: usize = 100_000;
/// Marks a prepared data set; bumped when what `prepare` writes changes.
const READY: &str = "ready-2";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().is_some_and(|a| a == "--measure") {
        measure(&args[1..]);
    }
    if let Some(i) = args.iter().position(|a| a == "--child") {
        let rest = &args[i + 1..];
        let out = child(rest);
        println!("RESULT {out}");
        return;
    }
    let mut people = vec![10_000usize, 20_000, 100_000, 1_000_000];
    let mut runs = None;
    let mut latency_ms = 50u64;
    let mut concurrency = 16usize;
    let mut quick = false;
    let mut one_shot_only = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--quick" => {
                quick = true;
                people = vec![10_000];
            }
            "--people" => {
                people = it
                    .next()
                    .expect("--people needs a list")
                    .split(',')
                    .map(|n| n.trim().parse().expect("--people: whole numbers"))
                    .collect();
            }
            "--runs" => {
                runs = Some(
                    it.next()
                        .and_then(|v| v.parse::<usize>().ok())
                        .filter(|&n| n > 0)
                        .expect("--runs N (at least 1)"),
                );
            }
            "--latency-ms" => {
                latency_ms = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--latency-ms N");
            }
            "--concurrency" => {
                concurrency = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--concurrency N");
            }
            "--one-shot" => one_shot_only = true,
            // `cargo bench` passes `--bench`.
            "--bench" => {}
            other => panic!("unknown argument `{other}`"),
        }
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/roster-bench");
    std::fs::create_dir_all(&root).expect("bench dir");

    println!(
        "roster benchmark — {} ({} cores)",
        cpu_name(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    for &n in &people {
        let dir = root.join(n.to_string());
        if !dir.join(READY).exists() {
            eprintln!("preparing {n} people × 4 vendors in {} …", dir.display());
            run_child(&["prepare", &n.to_string(), path_str(&dir)]);
        }
    }

    println!();
    let bare = bare_parse_binary();
    let roster = PathBuf::from(env!("CARGO_BIN_EXE_roster"));
    println!(
        "1. one-shot runs, each its own process: median of {} runs (3 above 100k people \
         unless --runs), peak RSS of the process",
        runs.map_or_else(|| "7".to_string(), |r| r.to_string())
    );
    println!(
        "   bare = {} (serde, no roster); no-op = roster reconcile, nothing to do; open = the \
         store opened after such a run",
        bare.display()
    );
    println!(
        "{:>9} | {:>9} {:>7} | {:>9} {:>7} {:>6} | {:>9} {:>6} | {:>8} {:>9}",
        "people",
        "bare s",
        "RSS MiB",
        "no-op×4 s",
        "RSS MiB",
        "×bare",
        "motive s",
        "×bare",
        "open ms",
        "store MiB"
    );
    for &n in &people {
        let dir = root.join(n.to_string());
        let runs = runs.unwrap_or(if n > 100_000 { 3 } else { 7 });
        let row = one_shot(&bare, &roster, &dir, runs);
        println!(
            "{:>9} | {:>9.3} {:>7.0} | {:>9.3} {:>7.0} {:>6.2} | {:>9.3} {:>6.2} | {:>8.1} {:>9.0}",
            n,
            row.bare.secs,
            row.bare.rss_mib,
            row.all.secs,
            row.all.rss_mib,
            row.all.secs / row.bare.secs,
            row.motive.secs,
            row.motive.secs / row.bare.secs,
            row.open_ms,
            row.store_mib
        );
    }

    if one_shot_only {
        return;
    }
    println!();
    println!(
        "2. passes in one process, 4 vendors (child process per row; peak RSS is the whole process)"
    );
    println!(
        "{:>9} | {:>10} {:>9} | {:>10} {:>9} {:>7} | {:>10} {:>9} {:>7}",
        "people",
        "read_file",
        "RSS MiB",
        "no-op s",
        "RSS MiB",
        "×parse",
        "1% chg s",
        "RSS MiB",
        "×parse"
    );
    for &n in &people {
        let dir = root.join(n.to_string());
        let parse = run_child(&["parse", path_str(&dir)]);
        let noop = run_child(&["noop", path_str(&dir)]);
        let changed = run_child(&["changed", path_str(&dir)]);
        let p = secs(&parse);
        println!(
            "{:>9} | {:>10.3} {:>9.0} | {:>10.3} {:>9.0} {:>7.2} | {:>10.3} {:>9.0} {:>7.2}",
            n,
            p,
            mib(&parse),
            secs(&noop),
            mib(&noop),
            secs(&noop) / p,
            secs(&changed),
            mib(&changed),
            secs(&changed) / p
        );
        for (what, r) in [("no-op", &noop), ("1% changed", &changed)] {
            if let Some(note) = r.get("note").and_then(Value::as_str) {
                eprintln!("  {n} {what}: {note}");
            }
        }
    }

    println!();
    let ops = if quick {
        concurrency * 10
    } else {
        concurrency * 40
    };
    let push = run_child(&[
        "push",
        &ops.to_string(),
        &concurrency.to_string(),
        &latency_ms.to_string(),
    ]);
    let ideal = concurrency as f64 / (latency_ms as f64 / 1000.0);
    let rate = push["ops"].as_f64().unwrap_or(0.0) / secs(&push);
    println!(
        "3. push throughput (Motive fake, {latency_ms} ms latency, concurrency {concurrency}, {ops} updates)"
    );
    println!(
        "   {:.3} s, {:.1} ops/s, ideal C/latency {:.1} ops/s, ratio {:.2}, peak RSS {:.0} MiB",
        secs(&push),
        rate,
        ideal,
        rate / ideal,
        mib(&push)
    );

    println!();
    let (calls, window_ms, updates) = if quick { (10, 500, 40) } else { (10, 1000, 80) };
    for known in ["unknown", "configured"] {
        let rl = run_child(&[
            "ratelimit",
            &updates.to_string(),
            &calls.to_string(),
            &window_ms.to_string(),
            known,
        ]);
        let limit = f64::from(calls) / (window_ms as f64 / 1000.0);
        let sent = rl["calls"].as_f64().unwrap_or(0.0);
        let took = secs(&rl);
        // A fixed window that opens at the first call: the best possible time to send
        // `sent` calls is (windows needed - 1) × window.
        let windows = (sent / f64::from(calls)).ceil().max(1.0);
        let best = (windows - 1.0) * window_ms as f64 / 1000.0;
        println!(
            "4. rate limit (Rocket.Chat fake, {calls} calls / {window_ms} ms per route, limit {} to roster): {updates} updates",
            known
        );
        println!(
            "   {:.3} s, {} users.update calls, achieved {:.1}/s of limit {:.1}/s = {:.2}; \
             best possible fixed-window time {:.1} s ({:.0}% of it); 429s received: {}",
            took,
            sent,
            sent / took,
            limit,
            sent / took / limit,
            best,
            if took > 0.0 { best / took * 100.0 } else { 0.0 },
            rl["429s"]
        );
    }

    println!();
    let (burst_secs, updates, c) = (6u64, 60usize, 4usize);
    let b = run_child(&[
        "burst",
        &updates.to_string(),
        &c.to_string(),
        &latency_ms.to_string(),
        &burst_secs.to_string(),
    ]);
    println!(
        "5. through a {burst_secs} s 429 burst (Motive fake, Retry-After 2 s, {latency_ms} ms latency, C = {c}, {updates} updates)"
    );
    println!(
        "   without the burst {:.2} s; with it {:.2} s = burst + {:.2} s (goal: ≤ burst + 2 s); 429s received: {}",
        b["plain"].as_f64().unwrap_or(f64::NAN),
        secs(&b),
        secs(&b) - burst_secs as f64,
        b["429s"]
    );

    println!();
    let (updates, c) = (100usize, 4usize);
    let f = run_child(&[
        "flaky",
        &updates.to_string(),
        &c.to_string(),
        &latency_ms.to_string(),
    ]);
    println!(
        "6. 50 % random 429s, Retry-After 1 s (Motive fake, {latency_ms} ms latency, C = {c}, {updates} updates)"
    );
    println!(
        "   {:.2} s ({} ops, {}); without the 429s {:.2} s; 429s received: {}",
        secs(&f),
        f["ops"],
        f["note"].as_str().unwrap_or_default(),
        f["plain"].as_f64().unwrap_or(f64::NAN),
        f["429s"]
    );
}

/// Builds `examples/bare_parse.rs` (release) and returns its path.
fn bare_parse_binary() -> PathBuf {
    let out = Command::new(env!("CARGO"))
        .args([
            "build",
            "--release",
            "--example",
            "bare_parse",
            "--message-format=json-render-diagnostics",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stderr(std::process::Stdio::inherit())
        .output()
        .expect("run cargo build --example bare_parse");
    assert!(
        out.status.success(),
        "building examples/bare_parse.rs failed"
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|m| m["target"]["name"] == "bare_parse")
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
        .expect("cargo named the bare_parse executable")
}

/// The median wall time and peak RSS of one kind of process.
struct Measured {
    secs: f64,
    rss_mib: f64,
}

struct OneShot {
    bare: Measured,
    all: Measured,
    motive: Measured,
    open_ms: f64,
    store_mib: f64,
}

/// Runs each process `runs` times in turn (so that they share the machine's moods) and
/// keeps the medians.
fn one_shot(bare: &Path, roster: &Path, dir: &Path, runs: usize) -> OneShot {
    let config = dir.join("roster.toml");
    let people = dir.join("people.json");
    let reconcile = |only: Option<&str>| {
        let mut c = Command::new(roster);
        c.arg("--config").arg(&config).args(["reconcile", "--json"]);
        if let Some(v) = only {
            c.args(["--vendor", v]);
        }
        c
    };
    // The first run after preparing replays what preparing wrote; not counted.
    check_noop(&spawn_measured(&reconcile(None)).2, None);
    let (mut b, mut a, mut m, mut open) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        let (secs, rss, out) = spawn_measured(Command::new(bare).arg(&people));
        assert!(
            String::from_utf8_lossy(&out)
                .trim()
                .parse::<usize>()
                .is_ok(),
            "bare_parse printed no count"
        );
        b.push((secs, rss));
        let (secs, rss, out) = spawn_measured(&reconcile(None));
        check_noop(&out, None);
        a.push((secs, rss));
        let opened = run_child(&["open", path_str(dir)]);
        open.push(opened["secs"].as_f64().unwrap_or(f64::NAN));
        let (secs, rss, out) = spawn_measured(&reconcile(Some("motive")));
        check_noop(&out, Some("motive"));
        m.push((secs, rss));
    }
    let measured = |v: &[(f64, u64)]| Measured {
        secs: median(v.iter().map(|x| x.0).collect()),
        rss_mib: median(v.iter().map(|x| x.1 as f64).collect()) / 1024.0,
    };
    OneShot {
        bare: measured(&b),
        all: measured(&a),
        motive: measured(&m),
        open_ms: median(open) * 1000.0,
        store_mib: dir_bytes(&dir.join("state")) as f64 / f64::from(1 << 20),
    }
}

/// A no-op pass's JSON report: exit 0, every vendor (or only `only`) all unchanged.
fn check_noop(stdout: &[u8], only: Option<&str>) {
    let report: Value = serde_json::from_slice(stdout)
        .unwrap_or_else(|e| panic!("roster printed no JSON report ({e})"));
    let vendors = report["vendors"]
        .as_object()
        .expect("vendors in the report");
    assert_eq!(
        vendors.len(),
        if only.is_some() { 1 } else { 4 },
        "{report}"
    );
    for (name, v) in vendors {
        for k in [
            "created",
            "updated",
            "deactivated",
            "reactivated",
            "adopted",
            "failed",
        ] {
            assert_eq!(v[k], 0, "{name}: {k} in a no-op pass: {report}");
        }
        assert!(v["unchanged"].as_u64().unwrap_or(0) > 0, "{report}");
    }
}

/// Runs a process to its end: wall seconds, its peak RSS in KiB, its stdout. Fails
/// unless it exits 0. The bench re-invokes itself as `--measure PROGRAM ARGS…`, a parent
/// whose only child is that process, so its children's peak RSS is that process's own.
fn spawn_measured(cmd: &Command) -> (f64, u64, Vec<u8>) {
    let mut wrapped = Command::new(std::env::current_exe().expect("own path"));
    wrapped
        .arg("--measure")
        .arg(cmd.get_program())
        .args(cmd.get_args())
        .envs(cmd.get_envs().filter_map(|(k, v)| Some((k, v?))));
    if let Some(dir) = cmd.get_current_dir() {
        wrapped.current_dir(dir);
    }
    let out = wrapped.output().expect("spawn the measuring parent");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{cmd:?} failed: {err}");
    let line = err
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("MEASURED "))
        .unwrap_or_else(|| panic!("no measurement from {cmd:?}: {err}"));
    let (secs, kib) = line.split_once(' ').expect("two figures");
    (
        secs.parse().expect("seconds"),
        kib.parse().expect("KiB"),
        out.stdout,
    )
}

/// The measuring parent (see `spawn_measured`): runs `args` with its stdout passed
/// through and its stderr dropped, then reports `MEASURED seconds peak-KiB` on stderr.
fn measure(args: &[String]) -> ! {
    use nix::sys::resource::{UsageWho, getrusage};
    let (program, rest) = args.split_first().expect("--measure PROGRAM ARGS…");
    let t = Instant::now();
    let status = Command::new(program)
        .args(rest)
        .stderr(std::process::Stdio::null())
        .status()
        .expect("spawn");
    let secs = t.elapsed().as_secs_f64();
    if !status.success() {
        eprintln!("{program} exited with {status}");
        std::process::exit(1);
    }
    let usage = getrusage(UsageWho::RUSAGE_CHILDREN).expect("getrusage");
    eprintln!("MEASURED {secs} {}", usage.max_rss());
    std::process::exit(0);
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => dir_bytes(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

fn secs(v: &Value) -> f64 {
    v["secs"].as_f64().unwrap_or(f64::NAN)
}

fn mib(v: &Value) -> f64 {
    v["peak_rss_kib"].as_f64().unwrap_or(f64::NAN) / 1024.0
}

fn cpu_name() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

fn run_child(args: &[&str]) -> Value {
    let exe = std::env::current_exe().expect("own path");
    let out = Command::new(exe)
        .arg("--child")
        .args(args)
        .stderr(std::process::Stdio::inherit())
        .output()
        .expect("run child");
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("RESULT "))
        .unwrap_or_else(|| panic!("child {args:?} failed ({}): {text}", out.status));
    serde_json::from_str(line).expect("child result")
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn child(args: &[String]) -> Value {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let mut result = match args.first().map(String::as_str) {
        Some("prepare") => {
            let n: usize = args[1].parse().expect("n");
            rt.block_on(prepare(n, Path::new(&args[2])))
        }
        Some("parse") => {
            let file = Path::new(&args[1]).join("people.json");
            let mut best = f64::MAX;
            let mut people = 0;
            for _ in 0..REPS {
                let t = Instant::now();
                let snapshot = roster::source::file::read_file(&file).expect("parse");
                best = best.min(t.elapsed().as_secs_f64());
                people = snapshot.people.len();
            }
            json!({ "secs": best, "people": people })
        }
        Some("noop") => rt.block_on(noop(Path::new(&args[1]))),
        Some("open") => {
            let state = Path::new(&args[1]).join("state");
            let t = Instant::now();
            let store = Store::open_with_cache(&state, roster::store::DEFAULT_CACHE_MB)
                .expect("open the store");
            let secs = t.elapsed().as_secs_f64();
            drop(store);
            json!({ "secs": secs })
        }
        Some("changed") => rt.block_on(changed(Path::new(&args[1]))),
        Some("push") => rt.block_on(push(
            args[1].parse().expect("ops"),
            args[2].parse().expect("concurrency"),
            args[3].parse().expect("latency"),
        )),
        Some("burst") => rt.block_on(burst(
            args[1].parse().expect("updates"),
            args[2].parse().expect("concurrency"),
            args[3].parse().expect("latency"),
            args[4].parse().expect("burst secs"),
        )),
        Some("flaky") => rt.block_on(flaky(
            args[1].parse().expect("updates"),
            args[2].parse().expect("concurrency"),
            args[3].parse().expect("latency"),
        )),
        Some("ratelimit") => rt.block_on(ratelimit(
            args[1].parse().expect("updates"),
            args[2].parse().expect("calls"),
            args[3].parse().expect("window"),
            args[4] == "configured",
        )),
        other => panic!("unknown child scenario {other:?}"),
    };
    drop(rt);
    result["peak_rss_kib"] = json!(peak_rss_kib());
    result
}

fn person(i: usize, email_tag: &str) -> Value {
    let first = format!("First{i}");
    let last = format!("Last{i}");
    json!({
        "id": format!("E{i:08}"),
        "first_name": first,
        "last_name": last,
        "email": format!("first{i}.last{i}{email_tag}@example.com"),
        "username": format!("first{i}.last{i}"),
        "phone": format!("+1555{:07}", i % 10_000_000),
        "groups": ["drivers", "staff"],
    })
}

/// Writes `people.json` as one JSON array, streaming.
fn write_people(path: &Path, n: usize, changed_every: usize) {
    use std::io::Write;
    let mut w = std::io::BufWriter::new(std::fs::File::create(path).expect("create people"));
    w.write_all(b"[\n").expect("write");
    for i in 0..n {
        let tag = if changed_every > 0 && i % changed_every == 0 {
            ".new"
        } else {
            ""
        };
        serde_json::to_writer(&mut w, &person(i, tag)).expect("write");
        w.write_all(if i + 1 < n { b",\n" } else { b"\n" })
            .expect("write");
    }
    w.write_all(b"]\n").expect("write");
    w.flush().expect("flush");
}

fn config(
    dir: &Path,
    state: &Path,
    file: &str,
    urls: &BTreeMap<&str, String>,
    chat_extra: &str,
    concurrency: usize,
) -> Settings {
    let text = config_text(state, file, urls, chat_extra, concurrency);
    roster::settings::load_str(&text, dir, Vec::new()).expect("bench config")
}

/// The bench's config: the four vendors (unreachable unless `urls` says otherwise: the
/// scenarios that push answer in process or use the sandbox), safety limits off.
fn config_text(
    state: &Path,
    file: &str,
    urls: &BTreeMap<&str, String>,
    chat_extra: &str,
    concurrency: usize,
) -> String {
    let url = |k: &str| {
        urls.get(k)
            .cloned()
            .unwrap_or_else(|| "http://127.0.0.1:9".into())
    };
    let c = roster_sandbox::Credentials::default();
    format!(
        r#"
state_dir = "{state}"
[safety]
max_deactivation_ratio = 1.0
max_source_drop_ratio = 1.0
[source]
type = "file"
path = "{file}"

[vendors.motive]
type = "motive"
base_url = "{motive_url}"
api_key = "{motive}"
concurrency = {concurrency}
[vendors.motive.defaults]
role = "driver"
eld_mode = "logs"
time_tracking_mode = "logs"

[vendors.drivekit]
type = "drivekit"
base_url = "{drivekit_url}"
api_key = "{drivekit}"
concurrency = {concurrency}

[vendors.telematics]
type = "telematics"
base_url = "{telematics_url}"
email = "{tm_email}"
password = "{tm_password}"
instance_id = "{tm_id}"
instance_key = "{tm_key}"
concurrency = {concurrency}

[vendors.chat]
type = "rocketchat"
base_url = "{rc_url}"
user_id = "{rc_user}"
auth_token = "{rc_token}"
concurrency = {concurrency}
{chat_extra}
"#,
        state = state.display(),
        motive_url = url("motive"),
        drivekit_url = url("drivekit"),
        telematics_url = url("telematics"),
        rc_url = url("rocketchat"),
        motive = c.motive_api_key,
        drivekit = c.drivekit_api_key,
        tm_email = c.telematics_email,
        tm_password = c.telematics_password,
        tm_id = c.telematics_instance_id,
        tm_key = c.telematics_instance_key,
        rc_user = c.rocketchat_user_id,
        rc_token = c.rocketchat_auth_token,
    )
}

/// The four vendors with no server behind them (nothing is pushed in these scenarios, or
/// `Ack` answers in process), and the store at `state`.
fn offline(dir: &Path, state: &Path, file: &str) -> (Context, Store) {
    let settings = config(dir, state, file, &BTreeMap::new(), "", 16);
    let store = Store::open_with_cache(state, settings.state_cache_mb).expect("store");
    (
        Context::build(settings, std::sync::Arc::new(roster::pass::NoHooks)).expect("context"),
        store,
    )
}

async fn prepare(n: usize, dir: &Path) -> Value {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).expect("dir");
    let t = Instant::now();
    write_people(&dir.join("people.json"), n, 0);
    write_people(&dir.join("people-changed.json"), n, 100);
    let (ctx, store) = offline(dir, &dir.join("state"), "people.json");
    let now = chrono::Utc::now();
    let mut start = 0;
    while start < n {
        let end = (start + CHUNK).min(n);
        let people: Vec<Person> = (start..end)
            .map(|i| roster::source::parse_record(&person(i, "")).expect("valid person"))
            .collect();
        for (settings, vendor) in &ctx.vendors {
            let records: Vec<(PersonId, VendorRecord)> = people
                .iter()
                .map(|p| {
                    let Desired::Active(fields) =
                        roster::pass::desire(settings, vendor.as_ref(), p)
                    else {
                        panic!("{}: person {} is not active", settings.name, p.id);
                    };
                    let record = VendorRecord {
                        remote_id: Some(format!("r-{}", p.id)),
                        state: RecordState::Active,
                        fields,
                        linked_at: now,
                        updated_at: now,
                    };
                    (p.id.clone(), record)
                })
                .collect();
            store
                .put_many(&settings.name, records.iter().map(|(k, v)| (k, v)))
                .await
                .expect("seed");
        }
        start = end;
    }
    // The audit history a first pass leaves (and keeps, up to `max_entries`): one
    // create per person and vendor, the newest `HISTORY` of them.
    let names: Vec<&str> = ctx.vendors.iter().map(|(s, _)| s.name.as_str()).collect();
    let entries = (n * names.len()).min(HISTORY);
    let first = n * names.len() - entries;
    let start = now - chrono::Duration::hours(1);
    for k in first..n * names.len() {
        store
            .record_history(&HistoryEntry {
                time: start + chrono::Duration::microseconds(k as i64),
                vendor: names[k % names.len()].to_string(),
                person: format!("E{:08}", k / names.len()),
                op: roster::model::Op::Create,
                outcome: roster::model::Outcome::Ok,
                fields: vec![
                    "email".into(),
                    "first_name".into(),
                    "last_name".into(),
                    "username".into(),
                ],
                message: None,
            })
            .expect("history");
    }
    store
        .prune_history(HISTORY, chrono::Duration::days(365))
        .await
        .expect("prune");
    store.flush().await.expect("flush");
    // The same config as a file, for `roster` run as a process.
    let text = config_text(&dir.join("state"), "people.json", &BTreeMap::new(), "", 16);
    std::fs::write(dir.join("roster.toml"), text).expect("config file");
    std::fs::write(dir.join(READY), b"").expect("marker");
    json!({ "secs": t.elapsed().as_secs_f64() })
}

async fn noop(dir: &Path) -> Value {
    let (ctx, store) = offline(dir, &dir.join("state"), "people.json");
    let mut best = f64::MAX;
    let mut last = None;
    for _ in 0..REPS {
        let t = Instant::now();
        let report =
            roster::pass::run_once(&ctx, &store, &PassOptions::default(), &Shutdown::never())
                .await
                .expect("pass");
        best = best.min(t.elapsed().as_secs_f64());
        last = Some(report);
    }
    summary(best, &last.expect("one pass"))
}

fn summary(secs: f64, report: &roster::report::Report) -> Value {
    let mut ops = 0;
    let mut unchanged = 0;
    let mut failed = 0;
    for v in report.vendors.values() {
        ops += v.created + v.updated + v.deactivated + v.reactivated + v.adopted + v.deleted;
        unchanged += v.unchanged;
        failed += v.failed + v.skipped;
    }
    let note = format!(
        "{ops} ops, {unchanged} unchanged, {failed} failed/skipped{}",
        report
            .refused
            .as_ref()
            .map(|r| format!(", REFUSED: {r}"))
            .unwrap_or_default()
    );
    json!({ "secs": secs, "ops": ops, "note": note })
}

/// A vendor that maps like the real connector and acknowledges every write at once.
struct Ack(Arc<dyn Vendor>);

#[async_trait]
impl Vendor for Ack {
    fn name(&self) -> &str {
        self.0.name()
    }
    fn map(&self, person: &Person) -> Result<Fields, roster::model::MapError> {
        self.0.map(person)
    }
    fn flow(&self) -> &Arc<roster::http::Flow> {
        self.0.flow()
    }
    async fn check(&self, _: &Budget) -> Result<(), VendorError> {
        Ok(())
    }
    async fn lookup(
        &self,
        _: &Budget,
        _: &PersonId,
        _: &Fields,
    ) -> Result<Option<Remote>, VendorError> {
        Ok(None)
    }
    async fn create(
        &self,
        _: &Budget,
        person: &PersonId,
        _: &Fields,
    ) -> Result<String, VendorError> {
        Ok(format!("r-{person}"))
    }
    async fn update(
        &self,
        _: &Budget,
        _: &str,
        _: &Changes,
        _: &Fields,
    ) -> Result<(), VendorError> {
        Ok(())
    }
    async fn set_active(&self, _: &Budget, _: &str, _: bool) -> Result<(), VendorError> {
        Ok(())
    }
}

async fn changed(dir: &Path) -> Value {
    // The pass rewrites records: work on a copy of the prepared store.
    let scratch = dir.join("scratch-state");
    let _ = std::fs::remove_dir_all(&scratch);
    let status = Command::new("cp")
        .arg("-r")
        .arg(dir.join("state"))
        .arg(&scratch)
        .status()
        .expect("cp");
    assert!(status.success(), "copying the store failed");
    let (mut ctx, store) = offline(dir, &scratch, "people-changed.json");
    ctx.vendors = ctx
        .vendors
        .into_iter()
        .map(|(s, v)| (s, Arc::new(Ack(v)) as Arc<dyn Vendor>))
        .collect();
    let t = Instant::now();
    let report = roster::pass::run_once(&ctx, &store, &PassOptions::default(), &Shutdown::never())
        .await
        .expect("pass");
    let secs = t.elapsed().as_secs_f64();
    drop(store);
    let _ = std::fs::remove_dir_all(&scratch);
    summary(secs, &report)
}

/// A sandbox-backed environment with one vendor selected.
async fn sandbox_pass(
    sandbox: &roster_sandbox::Sandbox,
    dir: &Path,
    store: &Store,
    only: &str,
    extra: &str,
    concurrency: usize,
) -> (f64, roster::report::Report) {
    let urls: BTreeMap<&str, String> = ["motive", "drivekit", "telematics", "rocketchat"]
        .into_iter()
        .map(|v| (v, sandbox.url(v)))
        .collect();
    let mut settings = config(
        dir,
        &dir.join("state"),
        "people.json",
        &urls,
        extra,
        concurrency,
    );
    settings.retry.max_interval_secs = 120;
    settings.retry.max_elapsed_secs = 600;
    settings.retry.pass_budget_secs = 3600;
    let ctx =
        Context::build(settings, std::sync::Arc::new(roster::pass::NoHooks)).expect("context");
    let opts = PassOptions {
        only: vec![only.to_string()],
        ..PassOptions::default()
    };
    let t = Instant::now();
    let report = roster::pass::run_once(&ctx, store, &opts, &Shutdown::never())
        .await
        .expect("pass");
    (t.elapsed().as_secs_f64(), report)
}

fn write_small(dir: &Path, n: usize, tag: &str) {
    let people: Vec<Value> = (0..n).map(|i| person(i, tag)).collect();
    std::fs::write(
        dir.join("people.json"),
        serde_json::to_vec(&people).expect("json"),
    )
    .expect("write");
}

async fn push(ops: usize, concurrency: usize, latency_ms: u64) -> Value {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let sandbox = roster_sandbox::Sandbox::start(roster_sandbox::Credentials::default())
        .await
        .expect("sandbox");
    let store = Store::open(&dir.join("state")).expect("store");
    write_small(dir, ops, "");
    let (_, first) = sandbox_pass(&sandbox, dir, &store, "motive", "", concurrency).await;
    assert_eq!(first.vendors["motive"].created, ops, "seeding pass");
    sandbox
        .motive
        .control
        .set_latency(Duration::from_millis(latency_ms));
    // Best of three update passes (every email changes each time), like the timings above.
    let mut best: Option<(f64, roster::report::Report)> = None;
    for rep in 0..3 {
        write_small(dir, ops, &format!(".new{rep}"));
        let (secs, report) = sandbox_pass(&sandbox, dir, &store, "motive", "", concurrency).await;
        assert_eq!(report.vendors["motive"].updated, ops, "update pass {rep}");
        if best.as_ref().is_none_or(|(b, _)| secs < *b) {
            best = Some((secs, report));
        }
    }
    let (secs, report) = best.expect("three passes");
    let mut out = summary(secs, &report);
    out["ops"] = json!(report.vendors["motive"].updated);
    out
}

/// A seeded Motive fake with `updates` people and `latency_ms` per call, and the time
/// of one plain update pass.
async fn seeded_motive(
    dir: &Path,
    updates: usize,
    concurrency: usize,
    latency_ms: u64,
) -> (roster_sandbox::Sandbox, Store, f64) {
    let sandbox = roster_sandbox::Sandbox::start(roster_sandbox::Credentials::default())
        .await
        .expect("sandbox");
    let store = Store::open(&dir.join("state")).expect("store");
    write_small(dir, updates, "");
    let (_, first) = sandbox_pass(&sandbox, dir, &store, "motive", "", concurrency).await;
    assert_eq!(first.vendors["motive"].created, updates, "seeding pass");
    sandbox
        .motive
        .control
        .set_latency(Duration::from_millis(latency_ms));
    write_small(dir, updates, ".plain");
    let (plain, report) = sandbox_pass(&sandbox, dir, &store, "motive", "", concurrency).await;
    assert_eq!(report.vendors["motive"].updated, updates, "plain pass");
    (sandbox, store, plain)
}

async fn burst(updates: usize, concurrency: usize, latency_ms: u64, burst_secs: u64) -> Value {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let (sandbox, store, plain) = seeded_motive(dir, updates, concurrency, latency_ms).await;
    write_small(dir, updates, ".burst");
    sandbox.motive.control.clear_calls();
    sandbox.motive.control.storm(
        Duration::from_secs(burst_secs),
        roster_sandbox::StormReply::RetryAfter(2),
    );
    let (secs, report) = sandbox_pass(&sandbox, dir, &store, "motive", "", concurrency).await;
    assert_eq!(report.vendors["motive"].updated, updates, "burst pass");
    let mut out = summary(secs, &report);
    out["plain"] = json!(plain);
    out["429s"] = json!(sandbox.motive.control.count_status(429));
    out
}

async fn flaky(updates: usize, concurrency: usize, latency_ms: u64) -> Value {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let (sandbox, store, plain) = seeded_motive(dir, updates, concurrency, latency_ms).await;
    write_small(dir, updates, ".flaky");
    sandbox.motive.control.clear_calls();
    sandbox
        .motive
        .control
        .flaky(0.5, roster_sandbox::StormReply::RetryAfter(1), 2);
    let (secs, report) = sandbox_pass(&sandbox, dir, &store, "motive", "", concurrency).await;
    let mut out = summary(secs, &report);
    out["ops"] = json!(report.vendors["motive"].updated);
    out["plain"] = json!(plain);
    out["429s"] = json!(sandbox.motive.control.count_status(429));
    out
}

async fn ratelimit(updates: usize, calls: u32, window_ms: u64, configured: bool) -> Value {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let sandbox = roster_sandbox::Sandbox::start(roster_sandbox::Credentials::default())
        .await
        .expect("sandbox");
    sandbox.rocketchat.disable_rate_limit();
    let store = Store::open(&dir.join("state")).expect("store");
    write_small(dir, updates, "");
    let (_, first) = sandbox_pass(&sandbox, dir, &store, "chat", "", 16).await;
    assert_eq!(first.vendors["chat"].created, updates, "seeding pass");
    write_small(dir, updates, ".new");
    sandbox
        .rocketchat
        .set_rate_limit(calls, Duration::from_millis(window_ms));
    sandbox.rocketchat.control.clear_calls();
    let limit = if configured {
        format!(
            "rate_limit = {{ calls = {calls}, per_secs = {} }}",
            window_ms as f64 / 1000.0
        )
    } else {
        String::new()
    };
    let (secs, report) = sandbox_pass(&sandbox, dir, &store, "chat", &limit, 16).await;
    let control = &sandbox.rocketchat.control;
    let sent = control
        .calls()
        .iter()
        .filter(|c| c.path.contains("users.update"))
        .count();
    let mut out = summary(secs, &report);
    out["calls"] = json!(sent);
    out["429s"] = json!(control.count_status(429));
    out
}
