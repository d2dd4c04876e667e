//! The real `ims-callback` binary as a child process: started with a given
//! environment on a free loopback port, its stdout and stderr captured to
//! files, its memory read from `/proc`, killed when dropped.

use crate::helpers::{client, free_port, wait_healthy};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct ServerProcess {
    child: Option<Child>,
    pub pid: u32,
    pub port: u16,
    pub address: String,
    pub stdout: PathBuf,
    pub stderr: PathBuf,
}

impl ServerProcess {
    /// Starts the binary with `vars` (plus `IMS_LISTEN` on a free port),
    /// logs going to `log_dir`, and waits until `/healthz` answers 200.
    pub async fn start(vars: &[(&str, &str)], log_dir: &Path) -> ServerProcess {
        let server = Self::spawn(vars, log_dir, free_port());
        wait_healthy(&client(), &server.address, Duration::from_secs(30)).await;
        server
    }

    /// Starts the binary without waiting for it to be healthy.
    pub fn spawn(vars: &[(&str, &str)], log_dir: &Path, port: u16) -> ServerProcess {
        let n = crate::redis_support::unique();
        let stdout = log_dir.join(format!("server-{n}.stdout"));
        let stderr = log_dir.join(format!("server-{n}.stderr"));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ims-callback"));
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("IMS_LISTEN", format!("127.0.0.1:{port}"))
            .envs(vars.iter().copied())
            .current_dir(log_dir)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&stdout).unwrap())
            .stderr(std::fs::File::create(&stderr).unwrap());
        // SAFETY: prctl(2) is async-signal-safe; the closure allocates nothing.
        // The server dies with the thread that started it (the test's).
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = cmd.spawn().expect("the ims-callback binary starts");
        ServerProcess {
            pid: child.id(),
            child: Some(child),
            port,
            address: format!("http://127.0.0.1:{port}"),
            stdout,
            stderr,
        }
    }

    /// SIGKILL, and reap.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, and wait for a clean exit (panics after `limit`).
    pub fn terminate(&mut self, limit: Duration) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        // SAFETY: kill(2) on our own, not yet reaped child.
        unsafe {
            libc::kill(self.pid as i32, libc::SIGTERM);
        }
        let started = std::time::Instant::now();
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            if started.elapsed() > limit {
                let _ = child.kill();
                panic!("the server did not exit within {limit:?} of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for the process to exit by itself (panics after `limit`).
    pub fn wait_exit(&mut self, limit: Duration) -> std::process::ExitStatus {
        let child = self.child.as_mut().expect("running");
        let started = std::time::Instant::now();
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            assert!(started.elapsed() < limit, "still running after {limit:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().unwrap().is_none())
    }

    /// Resident set size, in KiB (`VmRSS` of /proc/PID/status).
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS")
    }

    /// Everything it logged so far, stdout then stderr.
    pub fn logs(&self) -> String {
        let mut text = std::fs::read_to_string(&self.stdout).unwrap_or_default();
        text.push_str(&std::fs::read_to_string(&self.stderr).unwrap_or_default());
        text
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
