//! `redis-server` processes of a test binary: started from the
//! `redis-server` on PATH on free loopback ports, each in its own
//! directory, killed when dropped (and when the test process dies). The
//! system Redis on 6379 is never used. Shared by the store conformance
//! suite and the end-to-end API tests.
#![allow(dead_code)] // each test binary uses a different part

use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// A unique token for names within this process.
pub fn unique() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

// ------------------------------------------------------- server processes

/// A `redis-server` of this test process, killed on drop.
pub struct RedisServer {
    child: Mutex<Option<Child>>,
    pid: u32,
    /// Client port (the TLS port for a TLS server).
    pub port: u16,
    /// Its working directory (holds `log`, and `nodes.conf` in cluster mode).
    pub dir: PathBuf,
    /// The arguments after the common ones, to start it again.
    args: Vec<String>,
    tls: bool,
    /// Whether dropping this handle removes `dir` (not for a restart).
    owns_dir: bool,
}

impl RedisServer {
    /// Start a server on a free port with extra `redis-server` arguments.
    /// The literal argument `{bus}` is replaced by a free cluster-bus port.
    pub fn start(extra: &[&str]) -> RedisServer {
        Self::start_with(extra, false, None)
    }

    /// Start a plain server on a given port (e.g. to restart one).
    pub fn start_on(port: u16) -> RedisServer {
        Self::start_with(&[], false, Some(port))
    }

    /// Like [`RedisServer::start`], with the client port given as `--tls-port`
    /// and the plain port disabled.
    pub fn start_tls(extra: &[&str]) -> RedisServer {
        Self::start_with(extra, true, None)
    }

    /// A server that makes every write durable before answering it:
    /// append-only file, fsync on every write (`--appendfsync always`), in
    /// its own directory, so that it can be killed and [restarted]
    /// (RedisServer::restart) with its data.
    pub fn start_durable(extra: &[&str]) -> RedisServer {
        let mut args = vec!["--appendonly", "yes", "--appendfsync", "always"];
        args.extend_from_slice(extra);
        Self::start_with(&args, false, None)
    }

    /// Starts this server again (killing it first if it still runs): same
    /// port, directory and arguments, so it reloads what it persisted. The
    /// directory stays owned by `self`.
    pub fn restart(&self) -> RedisServer {
        self.kill();
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        Self::spawn(&args, self.tls, Some(self.port), Some(self.dir.clone()))
    }

    fn start_with(extra: &[&str], tls: bool, fixed_port: Option<u16>) -> RedisServer {
        Self::spawn(extra, tls, fixed_port, None)
    }

    fn spawn(
        extra: &[&str],
        tls: bool,
        fixed_port: Option<u16>,
        fixed_dir: Option<PathBuf>,
    ) -> RedisServer {
        let mut last_log = String::new();
        // A port found free may be taken before the server binds it: retry.
        for _ in 0..5 {
            let port = fixed_port.unwrap_or_else(free_port);
            let bus_port = free_port();
            let owns_dir = fixed_dir.is_none();
            let dir = fixed_dir.clone().unwrap_or_else(scratch_dir);
            let args: Vec<String> = extra
                .iter()
                .map(|a| a.replace("{bus}", &bus_port.to_string()))
                .collect();
            let mut cmd = Command::new("redis-server");
            if tls {
                cmd.args(["--port", "0", "--tls-port", &port.to_string()]);
            } else {
                cmd.args(["--port", &port.to_string()]);
            }
            cmd.args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
                .arg("--dir")
                .arg(&dir)
                .args(["--logfile", "log", "--daemonize", "no"])
                .args(&args)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            let mut child = spawn_tied_to_process(cmd);
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    let pid = child.id();
                    return RedisServer {
                        child: Mutex::new(Some(child)),
                        pid,
                        port,
                        dir,
                        args,
                        tls,
                        owns_dir,
                    };
                }
                if child.try_wait().expect("try_wait").is_some() || Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    last_log = std::fs::read_to_string(dir.join("log")).unwrap_or_default();
                    break;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        panic!("redis-server did not start; its last log:\n{last_log}");
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The cluster-bus port given with `--cluster-port` (panics without one).
    pub fn bus_port(&self) -> u16 {
        let at = self
            .args
            .iter()
            .position(|a| a == "--cluster-port")
            .expect("a cluster node");
        self.args[at + 1].parse().expect("a port number")
    }

    /// Send `signal` (e.g. `libc::SIGSTOP` to freeze it, `libc::SIGCONT`
    /// to thaw it) to the server process, if it still runs.
    pub fn signal(&self, signal: i32) {
        if self.child.lock().unwrap().is_some() {
            // SAFETY: kill(2) on our own child, which has not been reaped.
            unsafe {
                libc::kill(self.pid as i32, signal);
            }
        }
    }

    /// SIGKILL the server and reap it.
    pub fn kill(&self) {
        if let Some(mut child) = self.child.lock().unwrap().take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        if self.owns_dir {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Three masters with all 16384 slots, no replicas.
pub struct Cluster {
    pub nodes: Vec<RedisServer>,
}

impl Cluster {
    /// Starts three cluster-enabled servers and joins them with the
    /// commands `redis-cli --cluster create` sends (a distinct config
    /// epoch each, a third of the slots each, `CLUSTER MEET`), without its
    /// fixed one-second waits: polled until every node reports
    /// `cluster_state:ok`.
    pub fn start() -> Cluster {
        const MASTERS: u16 = 3;
        let nodes: Vec<RedisServer> = (0..MASTERS)
            .map(|_| {
                RedisServer::start(&[
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    "--cluster-port",
                    "{bus}",
                ])
            })
            .collect();
        let slots = 16384 / u32::from(MASTERS);
        for (i, node) in (0u32..).zip(&nodes) {
            let first = i * slots;
            let last = if i + 1 == u32::from(MASTERS) {
                16383
            } else {
                first + slots - 1
            };
            let epoch = (i + 1).to_string();
            let (first, last) = (first.to_string(), last.to_string());
            for command in [
                &["cluster", "set-config-epoch", &epoch][..],
                &["cluster", "addslotsrange", &first, &last][..],
            ] {
                let reply = redis_cli(node.port, command);
                assert_eq!(reply.trim(), "OK", "{command:?} on {}: {reply}", node.port);
            }
        }
        for node in &nodes[1..] {
            let (port, bus) = (node.port.to_string(), node.bus_port().to_string());
            let reply = redis_cli(
                nodes[0].port,
                &["cluster", "meet", "127.0.0.1", &port, &bus],
            );
            assert_eq!(reply.trim(), "OK", "cluster meet {port}: {reply}");
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        while !nodes
            .iter()
            .all(|n| redis_cli(n.port, &["cluster", "info"]).contains("cluster_state:ok"))
        {
            assert!(
                Instant::now() < deadline,
                "cluster never reached cluster_state:ok"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        Cluster { nodes }
    }

    /// The store URL for this cluster, all nodes as seeds.
    pub fn url(&self, prefix: &str) -> String {
        let hosts: Vec<String> = self
            .nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        format!("redis+cluster://{}/?prefix={prefix}", hosts.join(","))
    }
}

/// Run `redis-cli -p PORT ARGS…` and return its stdout.
pub fn redis_cli(port: u16, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args(["-p", &port.to_string()])
        .args(args)
        .output()
        .expect("redis-cli not found on PATH");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// A new directory for one server under cargo's tmp dir, named after this
/// process so that the next run can prune what a killed run left behind.
fn scratch_dir() -> PathBuf {
    static BASE: OnceLock<PathBuf> = OnceLock::new();
    let base = BASE.get_or_init(|| {
        let base = Path::new(env!("CARGO_TARGET_TMPDIR")).join("store-redis");
        std::fs::create_dir_all(&base).expect("tmp dir");
        for entry in std::fs::read_dir(&base).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let pid = name.split('-').next().unwrap_or_default();
            if !Path::new("/proc").join(pid).exists() {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
        base
    });
    let dir = base.join(format!("{}-{}", std::process::id(), unique()));
    std::fs::create_dir_all(&dir).expect("server dir");
    dir
}

/// Spawn `cmd` so that it is SIGKILLed when this process ends.
///
/// `PR_SET_PDEATHSIG` fires when the *thread* that forked exits, so all
/// servers are forked by one thread that lives as long as the process.
fn spawn_tied_to_process(mut cmd: Command) -> Child {
    type Request = (Command, mpsc::Sender<std::io::Result<Child>>);
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<Request>>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Request>();
        std::thread::spawn(move || {
            for (mut cmd, reply) in rx {
                let _ = reply.send(cmd.spawn());
            }
        });
        Mutex::new(tx)
    });
    // SAFETY: prctl(2) is async-signal-safe; the closure allocates nothing.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    let (reply_tx, reply_rx) = mpsc::channel();
    spawner
        .lock()
        .unwrap()
        .send((cmd, reply_tx))
        .expect("spawner thread");
    match reply_rx.recv().expect("spawner reply") {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "redis-server is not on PATH (CI={:?}); the Redis store tests need it: \
             apt-get install redis-server",
            std::env::var("CI").ok()
        ),
        Err(e) => panic!("cannot start redis-server: {e}"),
    }
}
