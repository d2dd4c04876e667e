//! Test harness: the backends the conformance suite runs against, and the
//! `redis-server` processes the Redis backends need.
//!
//! Redis servers are this test binary's own: started from the `redis-server`
//! on PATH on free loopback ports, each in its own directory, with no
//! persistence, and killed when dropped. The system Redis on 6379 is never
//! used. Servers kept for the whole run (in a `OnceLock`, which is never
//! dropped) are spawned from one long-lived thread with `PR_SET_PDEATHSIG`,
//! so they die with the test process however it ends; their directories
//! live under cargo's target tmp dir and are pruned by the next run.
//!
//! A Redis Cluster serves writes only two seconds after its nodes start
//! (Redis's `CLUSTER_WRITABLE_DELAY`), so the shared cluster and the
//! clusters of the cases that stall or kill theirs are all started at once,
//! in the background, when the first test runs.
//!
//! If `redis-server` is missing the Redis tests fail (with `CI` set or not):
//! a suite that silently skips its main backend proves nothing.

use std::future::Future;
use std::sync::{Arc, Condvar, Mutex, OnceLock, mpsc};
use std::time::Duration;

pub use crate::redis_support::{Cluster, RedisServer, redis_cli, unique};

use ims_callback::store::{AnyStore, MemoryStore, StoreOptions};

/// Blocking threads of each test runtime (see [`Backend::stall`] for redb).
pub const BLOCKING_THREADS: usize = 4;

/// Run one test's future on a runtime of its own.
pub fn run<F: Future>(fut: F) -> F::Output {
    clusters();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(BLOCKING_THREADS)
        .enable_all()
        .build()
        .expect("test runtime")
        .block_on(fut)
}

/// Something that undoes a stall when dropped.
pub type StallGuard = Box<dyn Send>;

/// A backend the conformance cases run against.
#[allow(async_fn_in_trait)] // test-only trait, used on the test's own runtime
pub trait Backend: Sized {
    /// The store type under test.
    type S: ims_callback::store::Store + Clone + 'static;
    /// A backend that many tests may share (each gets its own key space).
    fn shared() -> Self;
    /// A backend of the test's own, which it may stall or kill.
    fn dedicated() -> Self;
    /// A store over a fresh, empty key space, with the given timeout.
    async fn store(&self, timeout: Duration) -> Self::S;
    /// Make the backend unresponsive until the guard is dropped, or `None`
    /// if the backend does no I/O and so has nothing that could stall.
    fn stall(&self) -> Option<StallGuard>;
    /// Take the backend down for good; `false` if there is no server to lose.
    fn kill(&mut self) -> bool;
}

// ---------------------------------------------------------------- memory

/// The in-process backend.
pub struct Memory;

impl Backend for Memory {
    type S = MemoryStore;
    fn shared() -> Self {
        Memory
    }
    fn dedicated() -> Self {
        Memory
    }
    async fn store(&self, _timeout: Duration) -> MemoryStore {
        MemoryStore::new()
    }
    fn stall(&self) -> Option<StallGuard> {
        None
    }
    fn kill(&mut self) -> bool {
        false
    }
}

// ---------------------------------------------------------------- redb

/// The redb backend: every store is a new file in a temp dir.
pub struct Redb {
    dir: tempfile::TempDir,
}

impl Backend for Redb {
    type S = AnyStore;
    fn shared() -> Self {
        Redb {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }
    fn dedicated() -> Self {
        Self::shared()
    }
    async fn store(&self, timeout: Duration) -> AnyStore {
        let path = self.dir.path().join(format!("store-{}.redb", unique()));
        let spec = format!("redb:{}", path.display());
        let store = AnyStore::open_with(&spec, &StoreOptions { timeout })
            .await
            .expect("open redb");
        assert_eq!(store.kind(), "redb");
        store
    }
    /// redb runs on tokio's blocking pool; occupy every blocking thread of
    /// this test's runtime so the store's jobs queue behind them. Nothing in
    /// the store is mocked: its call really does not finish in time.
    fn stall(&self) -> Option<StallGuard> {
        let gate = Arc::new((Mutex::new(false), Condvar::new()));
        for _ in 0..BLOCKING_THREADS {
            let gate = Arc::clone(&gate);
            tokio::task::spawn_blocking(move || {
                let (open, cv) = &*gate;
                let mut open = open.lock().unwrap();
                while !*open {
                    open = cv.wait(open).unwrap();
                }
            });
        }
        struct Release(Arc<(Mutex<bool>, Condvar)>);
        impl Drop for Release {
            fn drop(&mut self) {
                *self.0.0.lock().unwrap() = true;
                self.0.1.notify_all();
            }
        }
        Some(Box::new(Release(gate)))
    }
    fn kill(&mut self) -> bool {
        false
    }
}

// ---------------------------------------------------------------- redis

/// A single Redis node: shared (one per test binary) or dedicated.
pub enum Redis {
    Shared(&'static RedisServer),
    Dedicated(RedisServer),
}

impl Redis {
    fn server(&self) -> &RedisServer {
        match self {
            Redis::Shared(s) => s,
            Redis::Dedicated(s) => s,
        }
    }
}

impl Backend for Redis {
    type S = AnyStore;
    fn shared() -> Self {
        static SERVER: OnceLock<RedisServer> = OnceLock::new();
        Redis::Shared(SERVER.get_or_init(|| RedisServer::start(&[])))
    }
    fn dedicated() -> Self {
        Redis::Dedicated(RedisServer::start(&[]))
    }
    async fn store(&self, timeout: Duration) -> AnyStore {
        // A fresh key prefix gives each store an empty key space.
        let spec = format!(
            "redis://127.0.0.1:{}/?prefix=t{}%3A",
            self.server().port,
            unique()
        );
        let store = AnyStore::open_with(&spec, &StoreOptions { timeout })
            .await
            .expect("open redis");
        assert_eq!(store.kind(), "redis");
        store
    }
    fn stall(&self) -> Option<StallGuard> {
        Some(Box::new(Frozen::new(&[self.server().pid()])))
    }
    fn kill(&mut self) -> bool {
        let Redis::Dedicated(server) = self else {
            panic!("kill() on the shared server");
        };
        server.kill();
        true
    }
}

/// Clusters started ahead: the shared one and one for each case that uses
/// [`Backend::dedicated`] (`stalled_backend_times_out`,
/// `health_fails_when_down`, `log_agrees_with_state_after_timeouts`).
const CLUSTERS_AHEAD: usize = 4;

/// The clusters started ahead, as they become ready.
fn clusters() -> &'static Mutex<mpsc::Receiver<Cluster>> {
    static READY: OnceLock<Mutex<mpsc::Receiver<Cluster>>> = OnceLock::new();
    READY.get_or_init(|| {
        let (tx, rx) = mpsc::channel();
        for _ in 0..CLUSTERS_AHEAD {
            let tx = tx.clone();
            std::thread::spawn(move || {
                let _ = tx.send(Cluster::start());
            });
        }
        Mutex::new(rx)
    })
}

/// A cluster started ahead, or a new one once those are taken.
fn take_cluster() -> Cluster {
    let ahead = clusters().lock().unwrap().recv();
    ahead.unwrap_or_else(|_| Cluster::start())
}

/// A 3-master Redis Cluster: shared (one per test binary) or dedicated.
pub enum RedisCluster {
    Shared(&'static Cluster),
    Dedicated(Cluster),
}

impl RedisCluster {
    pub fn cluster(&self) -> &Cluster {
        match self {
            RedisCluster::Shared(c) => c,
            RedisCluster::Dedicated(c) => c,
        }
    }
}

impl Backend for RedisCluster {
    type S = AnyStore;
    fn shared() -> Self {
        static CLUSTER: OnceLock<Cluster> = OnceLock::new();
        RedisCluster::Shared(CLUSTER.get_or_init(take_cluster))
    }
    fn dedicated() -> Self {
        RedisCluster::Dedicated(take_cluster())
    }
    async fn store(&self, timeout: Duration) -> AnyStore {
        let store = AnyStore::open_with(
            &self.cluster().url(&format!("c{}:", unique())),
            &StoreOptions { timeout },
        )
        .await
        .expect("open redis cluster");
        assert_eq!(store.kind(), "redis-cluster");
        store
    }
    fn stall(&self) -> Option<StallGuard> {
        let pids: Vec<u32> = self.cluster().nodes.iter().map(RedisServer::pid).collect();
        Some(Box::new(Frozen::new(&pids)))
    }
    fn kill(&mut self) -> bool {
        let RedisCluster::Dedicated(cluster) = self else {
            panic!("kill() on the shared cluster");
        };
        // One dead master is enough to make the cluster unhealthy.
        cluster.nodes[0].kill();
        true
    }
}

/// Processes stopped with SIGSTOP until dropped: a server that accepts TCP
/// (the kernel does) but never answers, the classic hung backend.
pub struct Frozen(Vec<u32>);

impl Frozen {
    pub fn new(pids: &[u32]) -> Self {
        for &pid in pids {
            signal(pid, libc::SIGSTOP);
        }
        Frozen(pids.to_vec())
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        for &pid in &self.0 {
            signal(pid, libc::SIGCONT);
        }
    }
}

fn signal(pid: u32, sig: libc::c_int) {
    let pid = libc::pid_t::try_from(pid).expect("pid");
    // SAFETY: kill(2) has no memory-safety preconditions.
    unsafe { libc::kill(pid, sig) };
}
