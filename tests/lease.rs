//! Leader election against an in-process kubesim: exactly one leader, the
//! other takes over when the leader dies or is cut off (and never while the
//! old one may still write), and a release on shutdown hands over at once.

// Test code: a failed step should stop the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use plumb::cluster::Cluster;
use plumb::lease::LeaderElector;
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Mutex, watch};
use tokio::task::JoinHandle;

const DURATION: Duration = Duration::from_millis(2000);
const DEADLINE: Duration = Duration::from_millis(1300);
const EVERY: Duration = Duration::from_millis(200);

async fn start_sim() -> kubesim::Kubesim {
    kubesim::Kubesim::start(kubesim::Options::default())
        .await
        .unwrap()
}

fn cluster_at(url: &str) -> Arc<Cluster> {
    let mut cfg = kube::Config::new(url.parse().unwrap());
    cfg.read_timeout = Some(Duration::from_secs(2));
    let client = kube::Client::try_from(cfg).unwrap();
    Arc::new(Cluster::new("home", client))
}

async fn create_namespace(c: &Cluster) {
    let kind = c.resolve("v1", "Namespace").await.unwrap();
    let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "plumb-system"}});
    c.create(&kind, None, &ns).await.unwrap();
}

/// One elector running in a task.
struct Replica {
    leader: watch::Receiver<bool>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

fn replica(cluster: Arc<Cluster>, id: &str) -> Replica {
    let mut e = LeaderElector::new(cluster, id);
    // The Lease holds whole seconds: keep the duration whole.
    e.lease_duration = DURATION;
    e.renew_deadline = DEADLINE;
    e.renew_every = EVERY;
    let (tx, leader) = watch::channel(false);
    let (stop, stop_rx) = watch::channel(false);
    let task = tokio::spawn(e.run(tx, stop_rx));
    Replica { leader, stop, task }
}

fn leading(r: &Replica) -> bool {
    *r.leader.borrow()
}

async fn wait_for(what: &str, timeout: Duration, f: impl Fn() -> bool) -> Duration {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    start.elapsed()
}

/// Samples both replicas until `until`, failing if both ever lead at once.
async fn never_both(a: &Replica, b: &Replica, until: Duration) {
    let start = Instant::now();
    while start.elapsed() < until {
        assert!(!(leading(a) && leading(b)), "two leaders at once");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_one_leader_and_the_other_takes_over_when_it_dies() {
    let sim = start_sim().await;
    create_namespace(&cluster_at(&sim.url())).await;
    let a = replica(cluster_at(&sim.url()), "a");
    let b = replica(cluster_at(&sim.url()), "b");
    wait_for("a leader", Duration::from_secs(5), || {
        leading(&a) || leading(&b)
    })
    .await;
    never_both(&a, &b, Duration::from_millis(1500)).await;
    let (dead, alive) = if leading(&a) { (a, b) } else { (b, a) };
    // Killed: no release, the lease must expire.
    dead.task.abort();
    let took = wait_for("takeover", Duration::from_secs(6), || leading(&alive)).await;
    assert!(
        took <= DURATION + Duration::from_millis(1500),
        "takeover took {took:?}"
    );
    let c = cluster_at(&sim.url());
    let kind = c.resolve("coordination.k8s.io/v1", "Lease").await.unwrap();
    let lease = c
        .get(&kind, Some("plumb-system"), "plumb")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(lease["spec"]["leaseTransitions"], json!(1));
    assert!(lease["spec"]["renewTime"].as_str().unwrap().ends_with('Z'));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn release_on_shutdown_hands_over_at_once() {
    let sim = start_sim().await;
    create_namespace(&cluster_at(&sim.url())).await;
    let a = replica(cluster_at(&sim.url()), "a");
    wait_for("a leads", Duration::from_secs(5), || leading(&a)).await;
    let b = replica(cluster_at(&sim.url()), "b");
    never_both(&a, &b, Duration::from_millis(600)).await;
    assert!(!leading(&b));
    a.stop.send_replace(true);
    let a_leader = a.leader.clone();
    a.task.await.unwrap();
    assert!(!*a_leader.borrow(), "a stopped leading when it stopped");
    let took = wait_for("b takes over", Duration::from_secs(5), || leading(&b)).await;
    assert!(
        took < Duration::from_millis(1500),
        "takeover after a release took {took:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_cut_off_steps_down_before_the_other_takes_over() {
    let sim = start_sim().await;
    create_namespace(&cluster_at(&sim.url())).await;
    let proxy = Proxy::start(sim.addr()).await;
    let a = replica(cluster_at(&proxy.url()), "a");
    wait_for("a leads", Duration::from_secs(5), || leading(&a)).await;
    let b = replica(cluster_at(&sim.url()), "b");
    never_both(&a, &b, Duration::from_millis(500)).await;
    proxy.cut().await;
    // a cannot renew: it steps down at its renew deadline, b takes over at
    // the lease's expiry, later; never both in between.
    let start = Instant::now();
    while !leading(&b) {
        assert!(!(leading(&a) && leading(&b)), "two leaders at once");
        assert!(
            start.elapsed() < Duration::from_secs(8),
            "b never took over"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(!leading(&a));
    never_both(&a, &b, Duration::from_millis(500)).await;
}

/// A TCP proxy to the API server that can be cut (connections dropped,
/// new ones refused), to partition one replica from the cluster.
struct Proxy {
    addr: SocketAddr,
    cut: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Proxy {
    async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let cut = Arc::new(AtomicBool::new(false));
        let conns: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let (c, cs) = (cut.clone(), conns.clone());
        tokio::spawn(async move {
            while let Ok((mut down, _)) = listener.accept().await {
                if c.load(Ordering::SeqCst) {
                    continue;
                }
                let task = tokio::spawn(async move {
                    if let Ok(mut up) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut down, &mut up).await;
                    }
                });
                cs.lock().await.push(task);
            }
        });
        Proxy { addr, cut, conns }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    async fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        for t in self.conns.lock().await.drain(..) {
            t.abort();
        }
    }
}
