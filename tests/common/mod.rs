//! Shared by the integration tests: a cluster guard that always cleans up, a `srvr` client of its own (so the
//! tests ask the servers without going through zkdev's code), and /proc helpers.
#![allow(dead_code)] // each test binary uses a different part of this module

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use assert_cmd::Command;
use serde_json::Value;

/// Test slots map to port offsets 10000, 10010, ... 10690: every offset differs from every other by less
/// than the 700 between the client and quorum bases, so no two test clusters (up to 9 nodes each) can
/// ever share a port, whichever tests run at the same time. Each test picks its own slot (0..=69).
pub fn port_offset(slot: u16) -> u16 {
    assert!(slot < 70, "test port slots are 0..=69");
    10_000 + slot * 10
}

/// A cluster in its own temporary home. Dropping it runs `zkdev down --purge`, then kills (by pid, after
/// checking that the command line names this home) any JVM that survived, so a failing test leaves nothing.
pub struct TestCluster {
    pub home: tempfile::TempDir,
    pub name: String,
    pub offset: u16,
}

impl TestCluster {
    pub fn new(slot: u16) -> TestCluster {
        let home = tempfile::Builder::new()
            .prefix("zkdev-test-")
            .tempdir()
            .expect("temp dir");
        TestCluster {
            home,
            name: format!("t{slot}"),
            offset: port_offset(slot),
        }
    }

    pub fn home_path(&self) -> &Path {
        self.home.path()
    }

    pub fn cluster_dir(&self) -> PathBuf {
        self.home.path().join("clusters").join(&self.name)
    }

    /// `zkdev --home H --cluster NAME ARGS...`
    pub fn zkdev(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().expect("zkdev runs")
    }

    pub fn cmd(&self) -> Command {
        let mut c = Command::cargo_bin("zkdev").expect("binary built");
        c.env_remove("ZKDEV_HOME")
            .env_remove("ZKDEV_CLUSTER")
            .env_remove("ZOOKEEPER_HOME")
            .arg("--home")
            .arg(self.home.path())
            .arg("--cluster")
            .arg(&self.name)
            .timeout(Duration::from_secs(120));
        c
    }

    /// `up` with the fast profile and this test's port offset, plus `extra` flags; panics with output on failure.
    pub fn up(&self, extra: &[&str]) -> Output {
        let offset = self.offset.to_string();
        let mut args = vec!["up", "--profile", "fast", "--port-offset", &offset];
        args.extend_from_slice(extra);
        let out = self.zkdev(&args);
        assert_ok(&out, "zkdev up");
        out
    }

    pub fn status(&self) -> Value {
        let out = self.zkdev(&["status", "--json"]);
        assert_ok(&out, "zkdev status --json");
        serde_json::from_slice(&out.stdout).expect("status --json is JSON")
    }

    /// Pids of every live JVM whose command line names this cluster's home.
    pub fn jvms(&self) -> Vec<i32> {
        jvms_under(self.home.path())
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        let _ = self.cmd().args(["down", "--purge", "--grace", "3"]).output();
        for pid in self.jvms().into_iter().chain(self.supervisors()) {
            eprintln!("test guard: killing leftover process {pid}");
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
        }
    }
}

impl TestCluster {
    /// Pids of live zkdev supervisors whose command line names this cluster's home.
    pub fn supervisors(&self) -> Vec<i32> {
        supervisors_under(self.home.path())
    }

    /// The supervisor's pid as its record says, if it is alive.
    pub fn supervisor_pid(&self) -> Option<i32> {
        let text = std::fs::read_to_string(self.cluster_dir().join("supervisor.json")).ok()?;
        let v: Value = serde_json::from_str(&text).ok()?;
        let pid = v["pid"].as_i64()? as i32;
        pid_alive(pid).then_some(pid)
    }

    /// The journal, parsed line by line (every line must be JSON, except a torn last one).
    pub fn events(&self) -> Vec<Value> {
        let out = self.zkdev(&["events", "--json"]);
        assert_ok(&out, "zkdev events --json");
        stdout(&out)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("events --json line is not JSON ({e}): {l}")))
            .collect()
    }
}

/// Live zkdev supervisors whose command line mentions `dir`.
pub fn supervisors_under(dir: &Path) -> Vec<i32> {
    processes_under(dir, |args| args.iter().any(|a| a == "supervise"))
}

/// Live (not zombie) processes whose command line mentions `dir` and satisfies `is`.
fn processes_under(dir: &Path, is: impl Fn(&[String]) -> bool) -> Vec<i32> {
    let needle = dir.to_string_lossy().into_owned();
    let mut pids = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let args: Vec<String> = cmd
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        if is(&args) && args.iter().any(|a| a.contains(&needle)) && pid_alive(pid) {
            pids.push(pid);
        }
    }
    pids
}

pub fn assert_ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed ({:?})\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Live (not zombie) JVM pids whose command line mentions `dir`.
pub fn jvms_under(dir: &Path) -> Vec<i32> {
    processes_under(dir, |args| args.iter().any(|a| a.contains("QuorumPeerMain")))
}

/// The process exists and is not a zombie.
pub fn pid_alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => {
            let state = s.rsplit(')').next().unwrap_or("").trim_start().chars().next();
            !matches!(state, Some('Z') | Some('X') | None)
        }
        Err(_) => false,
    }
}

pub fn process_state(pid: i32) -> Option<char> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    s.rsplit(')').next()?.trim_start().chars().next()
}

/// What a server says to `srvr`, parsed by the tests themselves.
#[derive(Debug, Clone, PartialEq)]
pub struct Srvr {
    pub mode: String,
    pub zxid: u64,
}

impl Srvr {
    pub fn epoch(&self) -> u64 {
        self.zxid >> 32
    }
}

/// Ask 127.0.0.1:port `srvr`; None when it does not serve (refused, not serving, no answer in 2 s).
pub fn srvr(port: u16) -> Option<Srvr> {
    srvr_at([127, 0, 0, 1], port)
}

/// Ask address:port `srvr`; None when it does not serve (refused, not serving, no answer in 2 s).
pub fn srvr_at(address: [u8; 4], port: u16) -> Option<Srvr> {
    let mut s = TcpStream::connect_timeout(&(address, port).into(), Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.write_all(b"srvr").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let field = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(k))
            .map(|v| v.trim().to_string())
    };
    Some(Srvr {
        mode: field("Mode:")?,
        zxid: u64::from_str_radix(field("Zxid:")?.trim_start_matches("0x"), 16).ok()?,
    })
}

/// Ask 127.0.0.1:port `conf`: the committed configuration's version and its `server.N=` lines (N -> the rest
/// of the line); None when it does not answer or lists no version.
pub fn conf(port: u16) -> Option<(String, Vec<(u64, String)>)> {
    let mut s = TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
    s.write_all(b"conf").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let version = text
        .lines()
        .find_map(|l| l.strip_prefix("version="))?
        .trim()
        .to_string();
    let servers = (text.lines())
        .filter_map(|l| l.strip_prefix("server."))
        .filter_map(|l| {
            let (id, rest) = l.split_once('=')?;
            Some((id.parse().ok()?, rest.trim().to_string()))
        })
        .collect();
    Some((version, servers))
}

/// A command's stdout as JSON, after asserting it succeeded.
pub fn json(out: &Output, what: &str) -> Value {
    assert_ok(out, what);
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {}", stdout(out)))
}

/// Poll `f` every 20 ms until it returns Some, or panic after `timeout` with `what`.
pub fn poll<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Listening sockets (local address as /proc writes it, port) owned by `pid`.
pub fn listening_of(pid: i32) -> Vec<(String, u16)> {
    let mut inodes = Vec::new();
    if let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) {
        for fd in fds.flatten() {
            if let Ok(t) = std::fs::read_link(fd.path()) {
                let t = t.to_string_lossy().into_owned();
                if let Some(i) = t.strip_prefix("socket:[").and_then(|s| s.strip_suffix(']')) {
                    inodes.push(i.to_string());
                }
            }
        }
    }
    let mut out = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = std::fs::read_to_string(table).unwrap_or_default();
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() > 9 && f[3] == "0A" && inodes.iter().any(|i| i == f[9]) {
                let (addr, port) = f[1].rsplit_once(':').unwrap();
                out.push((addr.to_string(), u16::from_str_radix(port, 16).unwrap()));
            }
        }
    }
    out
}

/// Is `hex` (a local address as /proc/net/tcp or tcp6 writes it) this IPv4 address? 127.0.0.11 is
/// `0B00007F` in tcp and `0000000000000000FFFF00000B00007F` (v4-mapped) in tcp6.
pub fn is_v4(hex: &str, address: [u8; 4]) -> bool {
    let v4 = format!("{:08X}", u32::from_le_bytes(address));
    hex == v4 || hex == format!("0000000000000000FFFF0000{v4}")
}

/// 127.0.0.1 as /proc/net/tcp (little-endian hex) or tcp6 (v4-mapped) writes it.
pub fn is_loopback_v4(addr: &str) -> bool {
    addr == "0100007F" || addr == "0000000000000000FFFF00000100007F"
}

/// A real ZooKeeper client (the zookeeper-client crate) on a private runtime.
pub fn with_client<T>(connect: &str, f: impl AsyncFnOnce(zookeeper_client::Client) -> T) -> T {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = tokio::time::timeout(
            Duration::from_secs(20),
            zookeeper_client::Client::connector()
                .with_session_timeout(Duration::from_secs(10))
                .connect(connect),
        )
        .await
        .expect("client connects within 20 s")
        .expect("client connects");
        f(client).await
    })
}

impl TestCluster {
    /// `zkdev` as a child process with piped stdout (for watch, up --foreground, verify in the background).
    pub fn spawn(&self, args: &[&str]) -> std::process::Child {
        std::process::Command::new(assert_cmd::cargo::cargo_bin("zkdev"))
            .env_remove("ZKDEV_HOME")
            .env_remove("ZKDEV_CLUSTER")
            .arg("--home")
            .arg(self.home.path())
            .arg("--cluster")
            .arg(&self.name)
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("zkdev starts")
    }

    /// The node whose server says it is `mode` (lowest id first), as (id, pid, client port).
    pub fn node_in_mode(&self, mode: &str) -> (u64, i32, u16) {
        let s = self.status();
        let n = s["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["mode"] == mode)
            .unwrap_or_else(|| panic!("no node in mode {mode}: {s}"));
        (
            n["id"].as_u64().unwrap(),
            n["pid"].as_i64().unwrap() as i32,
            n["client_port"].as_u64().unwrap() as u16,
        )
    }

    pub fn client_port(&self, id: u64) -> u16 {
        2180 + id as u16 + self.offset
    }
}

/// Lines of a child's stdout, read on a thread, so a test can wait for one with a deadline.
pub struct Lines {
    rx: std::sync::mpsc::Receiver<String>,
    pub seen: Vec<String>,
}

impl Lines {
    pub fn of(child: &mut std::process::Child) -> Lines {
        use std::io::BufRead;
        let out = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Lines { rx, seen: Vec::new() }
    }

    /// Wait for a line containing `needle`; panics with everything seen after `timeout`.
    pub fn wait_for(&mut self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(_) => panic!(
                    "no line with {needle:?} within {timeout:?}; seen:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }
}

/// Wait for a child to exit within `timeout`; kill it and panic otherwise.
pub fn wait_exit(child: &mut std::process::Child, timeout: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            panic!("zkdev did not exit within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn signal(pid: i32, sig: nix::sys::signal::Signal) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig).expect("signal sent");
}

/// The disk-fault library next to the zkdev binary, as `cargo build` leaves it. `cargo test` builds only
/// the test targets, so a test that needs the library builds it when it is missing.
pub fn ensure_faultfs_built() {
    let bin = assert_cmd::cargo::cargo_bin("zkdev");
    let lib = bin.with_file_name("libzkdev_faultfs.so");
    if lib.is_file() {
        return;
    }
    let status = std::process::Command::new(env!("CARGO"))
        .args(["build", "--package", "zkdev-faultfs"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .expect("cargo runs");
    assert!(status.success(), "cargo build --package zkdev-faultfs failed");
    assert!(lib.is_file(), "{} is still missing after building it", lib.display());
}
