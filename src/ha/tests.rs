//! The Lease client and the elector against the sandbox's fake Kubernetes API server.

use std::time::{Duration, Instant};

use roster_sandbox::kube::KubeServer;
use tokio::sync::watch;

use super::elector::{Elector, Timing};
use super::lease::{LeaseApi, LeaseError, client_from};
use super::record;

const TOKEN: &str = "sandbox-kube-token";
const NS: &str = "sync";

async fn api_as(server: &KubeServer, token: &str) -> LeaseApi {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("kubeconfig");
    std::fs::write(&path, server.kubeconfig(token, NS)).expect("kubeconfig");
    let kubeconfig = kube::config::Kubeconfig::read_from(&path).expect("kubeconfig parses");
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .expect("config");
    let client = client_from(config, Duration::from_millis(500)).expect("client");
    // No namespace given: the kubeconfig context's.
    LeaseApi::new(client, None, "roster")
}

/// Lease 3 s, renew deadline 2 s, vendor calls of at most `request_timeout`.
fn timing(request_timeout: Duration) -> Timing {
    Timing::new(
        Duration::from_secs(3),
        Duration::from_secs(2),
        request_timeout,
    )
}

struct Candidate {
    leader: watch::Receiver<bool>,
    quit: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

async fn candidate(server: &KubeServer, me: &str) -> Candidate {
    candidate_with(server, me, timing(Duration::from_secs(1))).await
}

async fn candidate_with(server: &KubeServer, me: &str, timing: Timing) -> Candidate {
    let (tx, leader) = watch::channel(false);
    let (quit, quit_rx) = watch::channel(false);
    let elector = Elector::new(
        api_as(server, TOKEN).await,
        me.into(),
        timing,
        tx,
        Default::default(),
    );
    Candidate {
        leader,
        quit,
        task: tokio::spawn(elector.run(quit_rx)),
    }
}

async fn until(limit: Duration, mut f: impl FnMut() -> bool) -> Option<Instant> {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if f() {
            return Some(Instant::now());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lease_calls_behave_as_on_the_api_server() {
    let server = KubeServer::start(TOKEN).await.expect("fake starts");
    let api = api_as(&server, TOKEN).await;
    assert_eq!(api.path(), "sync/roster");
    assert!(
        api.get().await.expect("get").is_none(),
        "404 before creation"
    );
    let wall = super::elector_wall_now();
    let created = api
        .create(record::created("a", wall.clone(), Duration::from_secs(3)))
        .await
        .expect("create");
    assert!(matches!(
        api.create(record::created("b", wall.clone(), Duration::from_secs(3)))
            .await,
        Err(LeaseError::Conflict(_))
    ));
    let read = api.get().await.expect("get").expect("exists");
    assert_eq!(read, created);
    let spec = read.spec.clone().unwrap_or_default();
    // Writing the same spec changes nothing, so the resourceVersion stays.
    let same = api
        .replace(&read, spec.clone())
        .await
        .expect("no-op replace");
    assert_eq!(
        same.metadata.resource_version,
        read.metadata.resource_version
    );
    let renewed = k8s_openapi::api::coordination::v1::LeaseSpec {
        renew_time: Some(super::elector_wall_now()),
        ..spec.clone()
    };
    let after = api.replace(&read, renewed).await.expect("replace");
    assert_ne!(
        after.metadata.resource_version,
        read.metadata.resource_version
    );
    // `read` is stale now: a write based on it is refused.
    let takeover = k8s_openapi::api::coordination::v1::LeaseSpec {
        holder_identity: Some("b".into()),
        ..spec
    };
    assert!(matches!(
        api.replace(&read, takeover).await,
        Err(LeaseError::Conflict(_))
    ));
    assert_eq!(server.api.holder(NS, "roster").as_deref(), Some("a"));
    let intruder = api_as(&server, "wrong-token").await;
    assert!(matches!(
        intruder.get().await,
        Err(LeaseError::Denied { status: 401, .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_leads_and_a_release_hands_over_at_once() {
    let server = KubeServer::start(TOKEN).await.expect("fake starts");
    // A 10 s lease: waiting for it to expire would take that long.
    let long = Timing::new(
        Duration::from_secs(10),
        Duration::from_secs(5),
        Duration::from_secs(1),
    );
    let a = candidate_with(&server, "roster-0", long).await;
    until(Duration::from_secs(5), || *a.leader.borrow())
        .await
        .expect("the first candidate leads");
    let b = candidate_with(&server, "roster-1", long).await;
    // b sees a's lease and waits; a keeps renewing.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(
        *a.leader.borrow() && !*b.leader.borrow(),
        "exactly one leads"
    );
    assert_eq!(server.api.holder(NS, "roster").as_deref(), Some("roster-0"));

    let released = Instant::now();
    a.quit.send_replace(true);
    a.task.await.expect("elector ends");
    assert!(!*a.leader.borrow());
    let took = until(Duration::from_secs(5), || *b.leader.borrow())
        .await
        .expect("the standby takes over")
        - released;
    assert!(
        took < Duration::from_secs(3),
        "after a release the standby takes over on its next try, not after the lease \
         duration: {took:?}"
    );
    assert_eq!(server.api.holder(NS, "roster").as_deref(), Some("roster-1"));
    b.quit.send_replace(true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partitioned_leader_steps_down_at_its_renew_deadline() {
    let mut server = KubeServer::start(TOKEN).await.expect("fake starts");
    let a = candidate(&server, "roster-0").await;
    until(Duration::from_secs(5), || *a.leader.borrow())
        .await
        .expect("leads");
    let b = candidate(&server, "roster-1").await;
    tokio::time::sleep(Duration::from_secs(1)).await;

    // Requests hang (a network partition).
    let cut = Instant::now();
    server.api.set_reachable(false);
    let stepped = until(Duration::from_secs(5), || !*a.leader.borrow())
        .await
        .expect("the leader steps down");
    let last_renewal = server
        .api
        .calls()
        .iter()
        .filter(|c| c.method == "PUT" && c.status == 200 && c.at < cut)
        .map(|c| c.at)
        .max()
        .expect("a renewal before the cut");
    let after = stepped - last_renewal;
    assert!(
        after <= Duration::from_millis(2500),
        "stepped down {after:?} after its last renewal (renew deadline 2 s; this poll lags)"
    );
    assert!(
        after < Duration::from_secs(3),
        "before the lease could expire"
    );
    // Nobody leads while the API server cannot be reached.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(!*a.leader.borrow() && !*b.leader.borrow());

    // Healed: one of them leads again.
    server.api.set_reachable(true);
    until(Duration::from_secs(8), || {
        *a.leader.borrow() || *b.leader.borrow()
    })
    .await
    .expect("someone leads after the partition heals");

    // Connections refused: the same.
    let leader = if *a.leader.borrow() { &a } else { &b };
    tokio::time::sleep(Duration::from_millis(700)).await;
    let cut = Instant::now();
    server.refuse().await;
    let stepped = until(Duration::from_secs(5), || !*leader.leader.borrow())
        .await
        .expect("the leader steps down when refused");
    assert!(
        stepped - cut < Duration::from_secs(3),
        "stepped down {:?} after the port closed: before its lease could expire",
        stepped - cut
    );
    server.resume().await.expect("port again");
    until(Duration::from_secs(8), || {
        *a.leader.borrow() || *b.leader.borrow()
    })
    .await
    .expect("someone leads once the port is open again");
    assert!(!(*a.leader.borrow() && *b.leader.borrow()), "never two");
    a.quit.send_replace(true);
    b.quit.send_replace(true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_crash_the_new_leader_waits_out_the_old_leaders_calls() {
    let server = KubeServer::start(TOKEN).await.expect("fake starts");
    // Vendor calls may take 3 s: after taking over from a leader that stopped renewing,
    // 2 + 3 - 3 = 2 s more may pass before its last call has ended.
    let slow = Duration::from_secs(3);
    let a = candidate_with(&server, "roster-0", timing(slow)).await;
    until(Duration::from_secs(5), || *a.leader.borrow())
        .await
        .expect("leads");
    let b = candidate_with(&server, "roster-1", timing(slow)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    // A crash: no more renewals, no release.
    a.task.abort();
    let published = until(Duration::from_secs(10), || *b.leader.borrow())
        .await
        .expect("the standby leads");
    let taken = server
        .api
        .calls()
        .iter()
        .filter(|c| c.method == "PUT" && c.holder.as_deref() == Some("roster-1"))
        .map(|c| c.at)
        .min()
        .expect("the standby took the lease");
    let waited = published - taken;
    assert!(
        waited >= Duration::from_millis(1900) && waited < Duration::from_secs(3),
        "published {waited:?} after taking the lease; the fence is 2 s"
    );
    assert_eq!(server.api.holder(NS, "roster").as_deref(), Some("roster-1"));
    b.quit.send_replace(true);
}
