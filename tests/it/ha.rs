//! High availability (issue 17): two real `roster run` processes, one Lease on the
//! sandbox's fake Kubernetes API server, the vendor sandbox telling the two apart by the
//! `User-Agent` that names each replica.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::Method;
use roster_sandbox::kube::KubeServer;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Child;

use crate::common::{Env, MOTIVE_KEY, motive_vendor_with, person};

const KUBE_TOKEN: &str = "sandbox-kube-bearer-token";
const NS: &str = "sync";
const TRIGGER: &str = "trigger-token-for-tests-0001";
/// The tests' Lease timings (the suggestion): 3 s lease, 2 s renew deadline.
const LEASE: Duration = Duration::from_secs(3);
const DEADLINE: Duration = Duration::from_secs(2);

struct Cluster {
    env: Env,
    kube: KubeServer,
    kubeconfig: PathBuf,
}

impl Cluster {
    /// The vendor sandbox (Motive, `concurrency` calls at once), `n` people, and the
    /// fake API server.
    async fn new(n: usize, concurrency: usize) -> Self {
        let env = Env::new(
            "max_deactivation_ratio = 1.0\nmax_source_drop_ratio = 1.0",
            &motive_vendor_with(
                "motive",
                MOTIVE_KEY,
                &format!("concurrency = {concurrency}\n"),
            ),
        )
        .await;
        let people: Vec<Value> = (1..=n)
            .map(|i| {
                person(
                    &format!("E{i:03}"),
                    "P",
                    &format!("L{i}"),
                    &format!("p{i}@example.com"),
                )
            })
            .collect();
        env.write_people(&json!(people));
        let kube = KubeServer::start(KUBE_TOKEN)
            .await
            .expect("fake API server");
        let kubeconfig = env.path("kubeconfig");
        std::fs::write(&kubeconfig, kube.kubeconfig(KUBE_TOKEN, NS)).expect("kubeconfig");
        Self {
            env,
            kube,
            kubeconfig,
        }
    }

    /// `roster run` as replica `id` with its own store, leasing `sync/roster`.
    async fn replica(&self, id: &str, lease: Duration, deadline: Duration) -> Replica {
        let base = std::fs::read_to_string(&self.env.config).expect("config");
        let text = format!(
            "schedule = \"*/1 * * * * *\"\nlog_format = \"json\"\nshutdown_grace_secs = 5\n{}\n\
             [server]\nlisten = \"127.0.0.1:0\"\ntrigger_token = \"{TRIGGER}\"\n\n\
             [ha]\nlease = \"roster\"\nidentity = \"{id}\"\nlease_duration_secs = {}\nrenew_deadline_secs = {}\n",
            base.replace(
                "state_dir = \"state\"",
                &format!("state_dir = \"state-{id}\"")
            )
            // Short vendor calls: no fence to wait after a takeover (2 + 1 - 3 = 0).
            .replace("request_timeout_secs = 5", "request_timeout_secs = 1"),
            lease.as_secs(),
            deadline.as_secs(),
        );
        let config = self.env.path(&format!("{id}.toml"));
        std::fs::write(&config, text).expect("config");
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_roster"))
            .arg("--config")
            .arg(&config)
            .arg("run")
            .env_remove("RUST_LOG")
            .env_remove("KUBERNETES_SERVICE_HOST")
            .env("KUBECONFIG", &self.kubeconfig)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn roster run");
        let stderr = child.stderr.take().expect("stderr");
        let logs = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&logs);
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                crate::common::assert_no_secrets(&line);
                assert!(!line.contains(KUBE_TOKEN), "the API token leaked: {line}");
                let v = serde_json::from_str(&line).unwrap_or(json!({ "raw": line }));
                sink.lock().expect("logs").push(v);
            }
        });
        let replica = Replica {
            id: id.to_string(),
            child,
            addr: String::new(),
            logs,
        };
        let addr = wait_for(Duration::from_secs(20), || {
            replica.find(|l| {
                (l["fields"]["message"] == "Daemon started; serving /healthz /readyz /metrics.")
                    .then(|| l["fields"]["addr"].as_str().map(String::from))
                    .flatten()
            })
        })
        .await
        .unwrap_or_else(|| panic!("{id} announces its address: {:?}", replica.all()));
        Replica { addr, ..replica }
    }

    fn holder(&self) -> Option<String> {
        self.kube.api.holder(NS, "roster")
    }

    /// Vendor calls whose User-Agent names `id`.
    fn calls_by(&self, id: &str) -> Vec<roster_sandbox::Call> {
        let agent = format!("roster/0.1.0 ({id})");
        self.env
            .sandbox
            .motive
            .control
            .calls()
            .into_iter()
            .filter(|c| c.user_agent == agent)
            .collect()
    }

    /// Every person exists exactly once at the vendor.
    fn assert_each_person_once(&self, n: usize) {
        let motive = &self.env.sandbox.motive;
        for i in 1..=n {
            let id = format!("E{i:03}");
            assert_eq!(motive.by_external_id(&id).len(), 1, "{id} exactly once");
        }
        assert_eq!(motive.users().len(), n, "no other account");
    }
}

struct Replica {
    id: String,
    child: Child,
    addr: String,
    logs: Arc<Mutex<Vec<Value>>>,
}

impl Replica {
    fn all(&self) -> Vec<Value> {
        self.logs.lock().expect("logs").clone()
    }

    fn find<T>(&self, f: impl FnMut(&Value) -> Option<T>) -> Option<T> {
        self.logs.lock().expect("logs").iter().find_map(f)
    }

    fn count(&self, message: &str) -> usize {
        self.logs
            .lock()
            .expect("logs")
            .iter()
            .filter(|l| l["fields"]["message"] == message)
            .count()
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    async fn get(&self, path: &str) -> (u16, String) {
        let r = reqwest::get(self.url(path)).await.expect("GET");
        let status = r.status().as_u16();
        (status, r.text().await.expect("body"))
    }

    /// `roster_leader` on /metrics.
    async fn leader_metric(&self) -> Option<f64> {
        let (_, text) = self.get("/metrics").await;
        text.lines()
            .find(|l| l.starts_with("roster_leader "))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    }

    fn signal(&self, sig: &str) {
        let pid = self.child.id().expect("pid").to_string();
        let ok = std::process::Command::new("kill")
            .args([format!("-{sig}"), pid])
            .status()
            .expect("kill")
            .success();
        assert!(ok);
    }

    /// The "Pass finished for vendor." line of its first pass.
    fn first_vendor_report(&self) -> Option<Value> {
        self.find(|l| {
            (l["fields"]["message"] == "Pass finished for vendor.").then(|| l["fields"].clone())
        })
    }
}

async fn wait_for<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let end = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() > end {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Waits until exactly one of the two says `roster_leader 1` (and the other 0); returns
/// (leader, standby) indices.
async fn one_leader(replicas: [&Replica; 2], limit: Duration) -> (usize, usize) {
    let end = Instant::now() + limit;
    loop {
        let a = replicas[0].leader_metric().await;
        let b = replicas[1].leader_metric().await;
        match (a, b) {
            (Some(1.0), Some(0.0)) => return (0, 1),
            (Some(0.0), Some(1.0)) => return (1, 0),
            (Some(1.0), Some(1.0)) => panic!("two leaders at once"),
            _ => {}
        }
        assert!(
            Instant::now() < end,
            "no leader within {limit:?}: {a:?} {b:?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Polls `/metrics` of `r` until `roster_leader` is `want`; returns when.
async fn until_leader_metric(r: &Replica, want: f64, limit: Duration) -> Instant {
    let end = Instant::now() + limit;
    loop {
        if r.leader_metric().await == Some(want) {
            return Instant::now();
        }
        assert!(
            Instant::now() < end,
            "{}: roster_leader never became {want}",
            r.id
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_one_replica_leads_and_the_standby_calls_no_vendor() {
    let c = Cluster::new(6, 4).await;
    let (r0, r1) = tokio::join!(
        c.replica("roster-0", LEASE, DEADLINE),
        c.replica("roster-1", LEASE, DEADLINE)
    );
    let replicas = [&r0, &r1];
    let (l, s) = one_leader(replicas, Duration::from_secs(10)).await;
    let (leader, standby) = (replicas[l], replicas[s]);
    assert_eq!(c.holder().as_deref(), Some(leader.id.as_str()));

    wait_for(Duration::from_secs(15), || {
        (leader.count("Pass complete.") >= 2).then_some(())
    })
    .await
    .expect("the leader runs passes");
    c.assert_each_person_once(6);
    // A new leader's first pass is a full one (drift read of every vendor).
    let first = leader
        .find(|l| (l["fields"]["message"] == "Pass starting.").then(|| l["fields"].clone()))
        .expect("a pass started");
    assert_eq!(
        (first["reason"].as_str(), first["full"].as_bool()),
        (Some("new leader"), Some(true)),
        "{first}"
    );
    assert!(
        c.env
            .sandbox
            .motive
            .control
            .calls()
            .iter()
            .any(|c| c.method == "GET" && c.path == "/v1/users"),
        "the full pass listed the vendor's accounts"
    );

    // The standby: healthy, ready as a standby, refuses on-demand passes.
    assert_eq!(standby.get("/healthz").await.0, 200);
    assert_eq!(
        standby.get("/readyz").await,
        (200, "ready (standby)\n".to_string())
    );
    assert_eq!(leader.get("/readyz").await, (200, "ready\n".to_string()));
    let r = reqwest::Client::new()
        .post(standby.url("/trigger"))
        .bearer_auth(TRIGGER)
        .send()
        .await
        .expect("post");
    assert_eq!(r.status().as_u16(), 409);
    standby.signal("USR1");
    wait_for(Duration::from_secs(5), || {
        standby.find(|l| {
            l["fields"]["message"]
                .as_str()
                .filter(|m| m.starts_with("Pass requested, but this replica is a standby"))
                .map(|_| ())
        })
    })
    .await
    .expect("SIGUSR1 on the standby is logged and ignored");
    // The CLI beside each replica (issue 14): status names the role; reconcile on the
    // standby runs nothing and says why.
    let cli = |id: &str, args: &[&str]| {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_roster"));
        cmd.arg("--config")
            .arg(c.env.path(&format!("{id}.toml")))
            .args(args)
            .env_remove("RUST_LOG");
        cmd
    };
    for (replica, role) in [(standby, "standby"), (leader, "leader")] {
        let out = cli(&replica.id, &["status", "--json"])
            .output()
            .await
            .expect("status");
        assert_eq!(out.status.code(), Some(0));
        let status: Value = serde_json::from_slice(&out.stdout).expect("json");
        assert_eq!(status["replica"], role, "{status}");
    }
    let out = cli(&standby.id, &["reconcile"])
        .output()
        .await
        .expect("reconcile");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("this replica is a standby"), "{err}");
    tokio::time::sleep(Duration::from_millis(1500)).await;

    assert_eq!(
        standby.count("Pass starting."),
        0,
        "the standby ran no pass"
    );
    assert!(
        c.calls_by(&standby.id).is_empty(),
        "the standby made no vendor call"
    );
    let all = c.env.sandbox.motive.control.calls();
    assert!(!all.is_empty());
    let agent = format!("roster/0.1.0 ({})", leader.id);
    assert!(
        all.iter().all(|call| call.user_agent == agent),
        "every vendor call is the leader's"
    );
    assert_eq!(standby.leader_metric().await, Some(0.0));
    assert!(
        standby.find(|l| (l["fields"]["message"]
            == "Standby: the lease is held by another replica.")
            .then(|| l["fields"]["holder"].clone()))
            == Some(json!(leader.id)),
        "the standby logs who leads"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_leader_mid_pass_hands_over_within_the_lease_and_duplicates_nothing() {
    const N: usize = 12;
    let c = Cluster::new(N, 2).await;
    let motive = &c.env.sandbox.motive;
    // Every create is carried out at once and answered 500 ms later: the leader is
    // killed with creates done at the vendor that its store never heard of.
    motive
        .control
        .delay_after_commit(Method::POST, "/v1/users", Duration::from_millis(500));
    let (r0, r1) = tokio::join!(
        c.replica("roster-0", LEASE, DEADLINE),
        c.replica("roster-1", LEASE, DEADLINE)
    );
    let replicas = [&r0, &r1];
    let (l, s) = one_leader(replicas, Duration::from_secs(10)).await;
    let (leader, standby) = (replicas[l], replicas[s]);
    wait_for(Duration::from_secs(15), || {
        (motive.users().len() >= 3).then_some(())
    })
    .await
    .expect("the leader's pass is creating people");

    let pid = leader.child.id().expect("pid").to_string();
    let killed = Instant::now();
    let ok = std::process::Command::new("kill")
        .args(["-KILL", &pid])
        .status()
        .expect("kill")
        .success();
    assert!(ok);
    let made = motive.users().len();
    assert!(made < N, "killed mid-pass ({made} of {N} made)");
    motive.control.clear_faults();

    let led = until_leader_metric(standby, 1.0, LEASE * 3).await;
    let took = led - killed;
    // The standby takes over once it has seen the lease unchanged for its duration; its
    // tries (and this poll) come every 0.5 s, hence the margin.
    assert!(
        took <= LEASE + Duration::from_secs(2),
        "took over after {took:?}"
    );
    eprintln!("ha: takeover {took:?} after SIGKILL of the leader (lease {LEASE:?})");
    assert_eq!(c.holder().as_deref(), Some(standby.id.as_str()));

    wait_for(Duration::from_secs(20), || {
        (standby.count("Pass complete.") >= 1).then_some(())
    })
    .await
    .expect("the new leader completes a pass");
    let first = standby
        .find(|l| (l["fields"]["message"] == "Pass starting.").then(|| l["fields"].clone()))
        .expect("a pass");
    assert_eq!(
        (first["reason"].as_str(), first["full"].as_bool()),
        (Some("new leader"), Some(true))
    );
    // Its store was empty: what the killed leader made is adopted by lookup, the rest created.
    let report = standby.first_vendor_report().expect("report");
    assert_eq!(report["adopted"], json!(made), "{report}");
    assert_eq!(report["created"], json!(N - made), "{report}");
    c.assert_each_person_once(N);
    let late: Vec<_> = motive
        .control
        .calls()
        .into_iter()
        .filter(|call| call.at > killed + Duration::from_millis(100))
        .filter(|call| call.user_agent != format!("roster/0.1.0 ({})", standby.id))
        .collect();
    assert!(
        late.is_empty(),
        "after the kill only the new leader calls: {late:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_on_the_leader_releases_the_lease_and_the_standby_takes_over_at_once() {
    // A long lease: waiting for it to expire would take 10 s.
    let (lease, deadline) = (Duration::from_secs(10), Duration::from_secs(5));
    let c = Cluster::new(3, 4).await;
    let (r0, r1) = tokio::join!(
        c.replica("roster-0", lease, deadline),
        c.replica("roster-1", lease, deadline)
    );
    let mut replicas = [r0, r1];
    let (l, s) = one_leader([&replicas[0], &replicas[1]], Duration::from_secs(10)).await;
    wait_for(Duration::from_secs(15), || {
        (replicas[l].count("Pass complete.") >= 1).then_some(())
    })
    .await
    .expect("the leader's first pass");
    c.assert_each_person_once(3);
    c.env.sandbox.motive.control.clear_calls();

    let sent = Instant::now();
    replicas[l].signal("TERM");
    let status = tokio::time::timeout(Duration::from_secs(10), replicas[l].child.wait())
        .await
        .expect("exits")
        .expect("wait");
    assert_eq!(status.code(), Some(0));
    assert_eq!(
        replicas[l].count("Lease released: a standby can take over at once."),
        1
    );
    let led = until_leader_metric(&replicas[s], 1.0, lease).await;
    let took = led - sent;
    assert!(
        took < Duration::from_secs(3),
        "took over {took:?} after SIGTERM, not after the 10 s lease"
    );
    eprintln!("ha: takeover {took:?} after SIGTERM of the leader (it released the lease)");
    assert_eq!(c.holder().as_deref(), Some(replicas[s].id.as_str()));

    // Its full pass finds every account by lookup and writes nothing.
    wait_for(Duration::from_secs(15), || {
        (replicas[s].count("Pass complete.") >= 1).then_some(())
    })
    .await
    .expect("the new leader's pass");
    let report = replicas[s].first_vendor_report().expect("report");
    assert_eq!(
        (report["adopted"].as_u64(), report["created"].as_u64()),
        (Some(3), Some(0)),
        "{report}"
    );
    assert_eq!(c.env.sandbox.motive.control.writes(), 0);
    c.assert_each_person_once(3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_api_server_stops_the_leader_before_its_lease_could_expire() {
    const N: usize = 20;
    let mut c = Cluster::new(N, 2).await;
    let motive = &c.env.sandbox.motive;
    motive
        .control
        .delay_after_commit(Method::POST, "/v1/users", Duration::from_millis(400));
    let (r0, r1) = tokio::join!(
        c.replica("roster-0", LEASE, DEADLINE),
        c.replica("roster-1", LEASE, DEADLINE)
    );
    let replicas = [&r0, &r1];
    let (l, s) = one_leader(replicas, Duration::from_secs(10)).await;
    let (leader, standby) = (replicas[l], replicas[s]);
    let renewals = || {
        c.kube
            .api
            .calls()
            .iter()
            .filter(|call| call.method == "PUT" && call.status == 200)
            .filter(|call| call.holder.as_deref() == Some(leader.id.as_str()))
            .count()
    };
    wait_for(Duration::from_secs(15), || {
        (motive.users().len() >= 3 && renewals() >= 1).then_some(())
    })
    .await
    .expect("the leader's pass is creating people, and it has renewed the lease");

    // The API server stops answering (a partition): renewals hang.
    let cut = Instant::now();
    c.kube.api.set_reachable(false);
    until_leader_metric(leader, 0.0, LEASE * 2).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let made = motive.users().len();
    assert!(made < N, "the pass stopped part-way ({made} of {N})");
    let last_renewal = c
        .kube
        .api
        .calls()
        .iter()
        .filter(|call| call.method != "GET" && call.status < 300 && call.at < cut)
        .filter(|call| call.holder.as_deref() == Some(leader.id.as_str()))
        .map(|call| call.at)
        .max()
        .expect("the leader renewed before the cut");
    let last_call = c
        .calls_by(&leader.id)
        .iter()
        .map(|call| call.at)
        .max()
        .expect("calls");
    let after = last_call.saturating_duration_since(last_renewal);
    assert!(
        after < LEASE,
        "the leader's last vendor call came {after:?} after its last renewal: its lease \
         ({LEASE:?}) could have expired"
    );
    assert!(
        after <= DEADLINE + Duration::from_millis(600),
        "stopped at the renew deadline: {after:?}"
    );
    eprintln!(
        "ha: the leader's last vendor call came {after:?} after its last renewal \
         (deadline {DEADLINE:?}, lease {LEASE:?})"
    );
    assert!(
        c.calls_by(&standby.id).is_empty(),
        "nobody else writes while nobody can renew"
    );
    assert!(
        leader
            .find(|l| (l["fields"]["message"]
                == "Leadership lost: stopped starting vendor calls; standby now.")
                .then_some(()))
            .is_some()
    );
    // The calls in flight at the step-down finished and were recorded as made; the rest
    // are left for the next leader.
    let report = leader
        .first_vendor_report()
        .expect("the interrupted pass reported");
    assert!(report["failed"].as_u64().is_some_and(|f| f > 0), "{report}");

    // The API server is back: one of them leads, runs a full pass, and nothing is doubled.
    c.kube.api.set_reachable(true);
    wait_for(Duration::from_secs(20), || {
        (motive.users().len() == N).then_some(())
    })
    .await
    .expect("a leader finishes the job");
    tokio::time::sleep(Duration::from_millis(500)).await;
    c.assert_each_person_once(N);
    let _ = &mut c;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fake_api_server_answers_like_kubernetes() {
    let kube = KubeServer::start(KUBE_TOKEN).await.expect("fake");
    let http = reqwest::Client::new();
    let url = |name: &str| {
        format!(
            "{}/apis/coordination.k8s.io/v1/namespaces/{NS}/leases{name}",
            kube.url()
        )
    };
    let send = |req: reqwest::RequestBuilder| async move {
        let r = req.send().await.expect("request");
        let status = r.status().as_u16();
        (status, r.json::<Value>().await.expect("JSON body"))
    };

    let (code, body) = send(http.get(url("/roster"))).await;
    assert_eq!(
        (code, body["kind"].as_str(), body["reason"].as_str()),
        (401, Some("Status"), Some("Unauthorized"))
    );
    let (code, body) = send(http.get(url("/roster")).bearer_auth(KUBE_TOKEN)).await;
    assert_eq!(
        (code, body["reason"].as_str()),
        (404, Some("NotFound")),
        "{body}"
    );
    assert_eq!(
        body["message"],
        "leases.coordination.k8s.io \"roster\" not found"
    );

    let lease = json!({ "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": { "name": "roster" }, "spec": { "holderIdentity": "a", "leaseDurationSeconds": 3 } });
    let (code, created) = send(http.post(url("")).bearer_auth(KUBE_TOKEN).json(&lease)).await;
    assert_eq!(code, 201, "{created}");
    let rv = created["metadata"]["resourceVersion"].clone();
    let (code, body) = send(http.post(url("")).bearer_auth(KUBE_TOKEN).json(&lease)).await;
    assert_eq!(
        (code, body["reason"].as_str()),
        (409, Some("AlreadyExists")),
        "{body}"
    );
    let bad = json!({ "metadata": { "name": "roster" }, "spec": { "leaseDurationSeconds": 0 } });
    let (code, body) = send(http.put(url("/roster")).bearer_auth(KUBE_TOKEN).json(&bad)).await;
    assert_eq!(
        (code, body["reason"].as_str()),
        (422, Some("Invalid")),
        "{body}"
    );

    // Merge patch with the resourceVersion read: applied; the same again: stale, 409.
    let patch = json!({ "metadata": { "resourceVersion": rv }, "spec": { "holderIdentity": "b" } });
    let merge = |p: &Value| {
        http.patch(url("/roster"))
            .bearer_auth(KUBE_TOKEN)
            .header("content-type", "application/merge-patch+json")
            .body(p.to_string())
    };
    let (code, body) = send(merge(&patch)).await;
    assert_eq!(
        (code, body["spec"]["holderIdentity"].as_str()),
        (200, Some("b")),
        "{body}"
    );
    assert_ne!(body["metadata"]["resourceVersion"], rv);
    let (code, body) = send(merge(&patch)).await;
    assert_eq!(
        (code, body["reason"].as_str()),
        (409, Some("Conflict")),
        "{body}"
    );
    // JSON patch with a failing test op changes nothing.
    let ops = json!([{ "op": "test", "path": "/spec/holderIdentity", "value": "a" },
                     { "op": "replace", "path": "/spec/holderIdentity", "value": "c" }]);
    let (code, _) = send(
        http.patch(url("/roster"))
            .bearer_auth(KUBE_TOKEN)
            .header("content-type", "application/json-patch+json")
            .body(ops.to_string()),
    )
    .await;
    assert_eq!(code, 422);
    assert_eq!(kube.api.holder(NS, "roster").as_deref(), Some("b"));
    let (code, body) = send(
        http.patch(url("/roster"))
            .bearer_auth(KUBE_TOKEN)
            .header("content-type", "application/apply-patch+yaml")
            .body("spec: {}"),
    )
    .await;
    assert_eq!((code, body["kind"].as_str()), (415, Some("Status")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_leaders_full_pass_is_repeated_until_one_completes() {
    let c = Cluster::new(2, 4).await;
    // The source cannot be read at first: the new leader's full pass is refused.
    std::fs::rename(c.env.path("people.json"), c.env.path("people.json.later")).expect("hide");
    let r0 = c.replica("roster-0", LEASE, DEADLINE).await;
    until_leader_metric(&r0, 1.0, Duration::from_secs(10)).await;
    wait_for(Duration::from_secs(10), || {
        r0.find(|l| (l["fields"]["message"] == "Pass refused; nothing was pushed.").then_some(()))
    })
    .await
    .expect("the first pass is refused");
    std::fs::rename(c.env.path("people.json.later"), c.env.path("people.json")).expect("restore");
    wait_for(Duration::from_secs(10), || {
        (r0.count("Pass complete.") >= 2).then_some(())
    })
    .await
    .expect("passes complete once the source is back");
    let starts: Vec<(String, bool)> = r0
        .all()
        .iter()
        .filter(|l| l["fields"]["message"] == "Pass starting.")
        .map(|l| {
            (
                l["fields"]["reason"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                l["fields"]["full"].as_bool().unwrap_or_default(),
            )
        })
        .collect();
    let first_complete = starts
        .iter()
        .position(|(_, full)| !full)
        .expect("a later ordinary pass");
    assert!(
        first_complete >= 2,
        "full passes until one completed: {starts:?}"
    );
    assert!(
        starts[..first_complete].iter().all(|(_, full)| *full),
        "{starts:?}"
    );
    assert_eq!(starts[0].0, "new leader");
    c.assert_each_person_once(2);
}
