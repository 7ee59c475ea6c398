//! The control socket's protocol and its client. One request per connection: a JSON line in, a JSON line
//! out. The socket lives in the cluster directory with owner-only permissions.

use std::path::Path;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

use super::replies::Answer;
use crate::error::{Error, ErrorKind, Result};
use crate::model::links::{Endpoint, Flow, Rule};
use crate::model::timeline::Action;
use crate::os::state::{ClusterPaths, Home};

/// What a command asks of the supervisor. `cause` names the command (`zkdev kill-leader`), for the journal.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    Ping,
    /// The latest view of the ensemble and its age.
    Status,
    /// Start the nodes that are not running; answers once their JVMs exist (not once they serve).
    Start {
        ids: Vec<u32>,
        cause: String,
    },
    /// SIGTERM, `grace_ms`, SIGKILL; answers once they have exited.
    Stop {
        ids: Vec<u32>,
        grace_ms: u64,
        cause: String,
    },
    /// Send a signal; for KILL and TERM answers once the process has exited, for STOP/CONT once /proc
    /// shows it paused or running.
    Signal {
        ids: Vec<u32>,
        signal: Sig,
        cause: String,
    },
    /// Put a command's result in the journal.
    Record {
        message: String,
        cause: String,
        /// Journal it as this `action` (a fault zkdev made, e.g. `expire-session`) rather than as a note.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        action: Option<Action>,
    },
    /// The link rules and live proxied connections (`--net` clusters).
    Links,
    /// Change link rules: heal (every rule, or those between pairs), then set `rules` (a healthy fault
    /// clears a rule), then reset the live connections of `reset` once. Journalled as `action`.
    SetLinks {
        #[serde(default)]
        heal_all: bool,
        #[serde(default)]
        heal_pairs: Vec<(Endpoint, Endpoint)>,
        #[serde(default)]
        rules: Vec<Rule>,
        #[serde(default)]
        reset: Vec<Flow>,
        action: Action,
        message: String,
        cause: String,
    },
    /// Serve the dashboard on 127.0.0.1:`port` (`zkdev dashboard`); answers its address.
    Dashboard {
        port: u16,
    },
    /// Set a disk fault on nodes (the cluster must have been made with disk faults on); journalled.
    Disk {
        ids: Vec<u32>,
        fault: crate::model::disk::DiskFault,
        cause: String,
    },
    /// A power cut (`zkdev disk --power-cut`): SIGKILL the nodes' JVMs, then roll every file of their data
    /// directories back to its last sync (`torn`: a seeded prefix of each file's last unsynced change stays);
    /// journalled with what each file lost. Answers once it is done.
    PowerCut {
        ids: Vec<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        torn: Option<u64>,
        /// The kernel wrote back by itself every change older than this (None: nothing, the strict cut).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        writeback_ms: Option<u64>,
        cause: String,
    },
    /// Read cluster.toml again after a membership change (`zkdev add`, `remove`, `promote`, `demote`):
    /// probe the nodes it names, forget the stopped ones it no longer names, journal `message` as `action`.
    Reload {
        action: Action,
        message: String,
        cause: String,
    },
    /// The link proxies' trace events from `cursor` on, at most `max` (`--net` clusters); without a
    /// cursor, none: only the cursor of what comes next.
    Trace {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cursor: Option<u64>,
        max: usize,
    },
    /// Stop every node (`grace_ms`), then the supervisor itself.
    Shutdown {
        grace_ms: u64,
        cause: String,
    },
}

impl Request {
    /// The request's name on the wire (`set_links`), for messages.
    pub fn op(&self) -> String {
        serde_json::to_value(self)
            .ok()
            .and_then(|v| v["op"].as_str().map(str::to_string))
            .unwrap_or_default()
    }

    /// Asking twice does what asking once does: safe to ask a new supervisor again when the one asked died
    /// before answering. Not a KILL or TERM (the node may have gone since), not a shutdown.
    pub fn repeatable(&self) -> bool {
        match self {
            Request::Signal { signal, .. } => matches!(signal, Sig::Stop | Sig::Cont),
            // A power cut SIGKILLs and drops unsynced bytes: a second cut would drop what the restart wrote.
            Request::Shutdown { .. } | Request::PowerCut { .. } => false,
            Request::Ping
            | Request::Status
            | Request::Start { .. }
            | Request::Stop { .. }
            | Request::Record { .. }
            | Request::Links
            | Request::Trace { .. }
            | Request::SetLinks { .. }
            | Request::Dashboard { .. }
            | Request::Disk { .. }
            | Request::Reload { .. } => true,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Sig {
    Kill,
    Term,
    Stop,
    Cont,
}

impl Sig {
    pub fn signal(self) -> nix::sys::signal::Signal {
        use nix::sys::signal::Signal;
        match self {
            Sig::Kill => Signal::SIGKILL,
            Sig::Term => Signal::SIGTERM,
            Sig::Stop => Signal::SIGSTOP,
            Sig::Cont => Signal::SIGCONT,
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Reply {
    pub ok: bool,
    #[serde(default)]
    pub data: Value,
    #[serde(default)]
    pub error: Option<WireError>,
}

/// An `Error` across the socket, keeping its kind (and its exit code, for a client older than `kind`).
#[derive(Debug, Serialize, Deserialize)]
pub struct WireError {
    pub code: i32,
    /// Absent from an older supervisor's answer: the kind is then guessed from `code`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<ErrorKind>,
    pub message: String,
    #[serde(default)]
    pub detail: String,
}

impl From<&Error> for WireError {
    fn from(e: &Error) -> WireError {
        let (message, detail) = e.parts();
        WireError {
            code: e.exit_code(),
            kind: Some(e.kind()),
            message,
            detail,
        }
    }
}

impl From<WireError> for Error {
    fn from(w: WireError) -> Error {
        let kind = w.kind.unwrap_or(match w.code {
            crate::error::EXIT_USAGE => ErrorKind::Usage,
            crate::error::EXIT_ENV => ErrorKind::Environment,
            crate::error::EXIT_INCONCLUSIVE => ErrorKind::Inconclusive,
            _ => ErrorKind::Failed,
        });
        Error::from_parts(kind, w.message, w.detail)
    }
}

/// Send one request and read the reply. `None`: nobody answers on the socket.
async fn call(socket: &Path, req: &Request, timeout: Duration) -> Option<Result<Value>> {
    let work = async {
        let stream = UnixStream::connect(socket).await.ok()?;
        let (read, mut write) = stream.into_split();
        let mut line = serde_json::to_vec(req).expect("requests serialise");
        line.push(b'\n');
        write.write_all(&line).await.ok()?;
        let mut reader = BufReader::new(read);
        let mut answer = String::new();
        reader.read_line(&mut answer).await.ok()?;
        let reply: Reply = serde_json::from_str(&answer).ok()?;
        Some(if reply.ok {
            Ok(reply.data)
        } else {
            Err(reply
                .error
                .map(Error::from)
                .unwrap_or_else(|| Error::failed("the supervisor refused without saying why")))
        })
    };
    tokio::time::timeout(timeout, work).await.ok().flatten()
}

/// `call`, with the reply read as `A` (the answer to `req`).
pub async fn call_for<A: Answer>(socket: &Path, req: &Request, timeout: Duration) -> Option<Result<A>> {
    debug_assert_eq!(
        req.op(),
        A::OP,
        "a `{}` reply is read for a `{}` request",
        A::OP,
        req.op()
    );
    Some(call(socket, req, timeout).await?.and_then(A::decode))
}

/// A supervisor that died and was replaced while a command used it.
#[derive(Debug, Clone, Serialize)]
pub struct Restart {
    /// The dead one's pid, as its record named it.
    pub old_pid: Option<i32>,
    /// The new one's pid.
    pub new_pid: Option<i32>,
    /// Wall clock (ms since the epoch) when the new one answered.
    pub at_ms: u64,
    /// What noticed: a request it did not answer, or the watch over it.
    pub noticed_by: String,
}

impl Restart {
    /// `the supervisor (pid 812) died; started a new one (pid 950), which adopted the running nodes and
    /// restored the links and their faults`
    pub fn describe(&self) -> String {
        let pid = |p: Option<i32>| p.map_or(String::new(), |p| format!(" (pid {p})"));
        format!(
            "the supervisor{} died (noticed by {}); started a new one{}, which adopted the running nodes and \
             restored the links and their faults",
            pid(self.old_pid),
            self.noticed_by,
            pid(self.new_pid)
        )
    }
}

/// Told of each restart as it happens.
type OnRestart = Box<dyn Fn(&Restart) + Send + Sync>;

/// What the handles of one command share about its supervisor.
struct Shared {
    home: Home,
    cluster: String,
    /// One revival at a time (a request and the watch may both find it dead).
    reviving: tokio::sync::Mutex<()>,
    restarts: std::sync::Mutex<Vec<Restart>>,
    /// Why no new supervisor could be started, once that happened.
    lost: std::sync::Mutex<Option<String>>,
    /// Told of each restart as it happens (the command says it on stderr).
    on_restart: std::sync::Mutex<Option<OnRestart>>,
}

/// A supervisor that answers; one that dies while a command uses it is replaced (see `ask` and `watch`).
pub struct Supervisor {
    socket: std::path::PathBuf,
    paths: ClusterPaths,
    /// Did this command start it (so a failed `up` knows to stop it again)?
    pub started_here: bool,
    shared: std::sync::Arc<Shared>,
    watch: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        if let Some(w) = self.watch.take() {
            w.abort();
        }
    }
}

/// The pid of the cluster's supervisor as its record names it, and whether that process still runs.
/// None: no record (none started, or the last one stopped cleanly and removed it).
fn recorded(paths: &ClusterPaths) -> Option<(i32, bool)> {
    let r = super::start::Record::read(paths)?;
    Some((r.pid, r.alive(paths)))
}

/// `home` and `cluster` of a cluster directory `HOME/clusters/NAME`.
fn home_of(paths: &ClusterPaths) -> (Home, String) {
    let cluster = (paths.root.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let root = (paths.root.parent())
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_default();
    (Home { root }, cluster)
}

impl Supervisor {
    fn new(paths: &ClusterPaths, started_here: bool) -> Supervisor {
        let (home, cluster) = home_of(paths);
        Supervisor {
            socket: paths.socket(),
            paths: paths.clone(),
            started_here,
            shared: std::sync::Arc::new(Shared {
                home,
                cluster,
                reviving: tokio::sync::Mutex::new(()),
                restarts: std::sync::Mutex::default(),
                lost: std::sync::Mutex::default(),
                on_restart: std::sync::Mutex::default(),
            }),
            watch: None,
        }
    }

    /// The running supervisor, if one answers within 200 ms.
    pub async fn find(paths: &ClusterPaths) -> Option<Supervisor> {
        match call(&paths.socket(), &Request::Ping, Duration::from_millis(200)).await {
            Some(Ok(_)) => Some(Supervisor::new(paths, false)),
            _ => None,
        }
    }

    /// The running supervisor, or a new one started detached (its own session, its log in the cluster
    /// directory); a new one adopts the nodes already running.
    pub async fn ensure(home: &Home, cluster: &str) -> Result<Supervisor> {
        let paths = home.cluster(cluster);
        if let Some(s) = Supervisor::find(&paths).await {
            return Ok(s);
        }
        start_detached(home, cluster).await?;
        Ok(Supervisor::new(&paths, true))
    }

    /// Call `f` with each restart as it happens (a command says it on stderr).
    pub fn on_restart(&self, f: impl Fn(&Restart) + Send + Sync + 'static) {
        *self.shared.on_restart.lock().expect("on_restart") = Some(Box::new(f));
    }

    /// Keep the supervisor alive while this handle lives: every 200 ms, a recorded supervisor that no longer
    /// runs (killed, crashed; not one that stopped cleanly, which removes its record) is replaced at once. On
    /// a `--net` cluster every link lives in the supervisor, so a wait for the ensemble to serve needs this.
    pub fn watch(&mut self) {
        if self.watch.is_some() {
            return;
        }
        let shared = self.shared.clone();
        let paths = self.paths.clone();
        self.watch = Some(tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(200)).await;
                if shared.lost.lock().expect("lost").is_some() {
                    return;
                }
                if let Some((pid, false)) = recorded(&paths) {
                    let _ = revive(&shared, &paths, Some(pid), "zkdev's watch over it").await;
                }
            }
        }));
    }

    /// The supervisors that died and were replaced while this handle lived.
    pub fn restarts(&self) -> Vec<Restart> {
        self.shared.restarts.lock().expect("restarts").clone()
    }

    /// Why the supervisor is gone for good (it died and a new one did not start), if so.
    pub fn lost(&self) -> Option<String> {
        self.shared.lost.lock().expect("lost").clone()
    }

    /// Ask, and read the answer as `A`, the reply type of `req` (`StartReply` for `Request::Start`...): a field
    /// the answer lacks is an error naming it.
    pub async fn ask_for<A: Answer>(&self, req: Request, timeout: Duration) -> Result<A> {
        debug_assert_eq!(
            req.op(),
            A::OP,
            "a `{}` reply is read for a `{}` request",
            A::OP,
            req.op()
        );
        self.ask(req, timeout).await.and_then(A::decode)
    }

    /// Ask, and wait up to `timeout` for the answer, as the untyped data of the reply (`ask_for` reads it as
    /// its reply type). A supervisor that died meanwhile (killed, crashed) is
    /// replaced by a new one, which adopts the nodes and restores the links, and a request that may be
    /// repeated (see `Request::repeatable`) is asked of it again.
    async fn ask(&self, req: Request, timeout: Duration) -> Result<Value> {
        let before = recorded(&self.paths).map(|(pid, _)| pid);
        if let Some(r) = call(&self.socket, &req, timeout).await {
            return r;
        }
        let gone = |why: String| {
            Error::supervisor_gone(format!(
                "the supervisor stopped answering (socket {}){why}; `zkdev status` shows what runs, and the next \
                 command starts a new supervisor",
                self.socket.display()
            ))
        };
        match recorded(&self.paths) {
            // Alive and the same: slow, not dead.
            Some((pid, true)) if Some(pid) == before => {
                return Err(gone(format!(" within {}", crate::model::span::format(timeout))))
            }
            // No record: it was stopped on purpose (`zkdev down`).
            None => return Err(gone(" (it was stopped)".into())),
            _ => {}
        }
        if !matches!(req, Request::Shutdown { .. }) {
            revive(&self.shared, &self.paths, before, "a request it did not answer").await?;
        }
        if !req.repeatable() {
            return Err(Error::supervisor_gone(format!(
                "the supervisor{} died while asked to {}; a new one runs now, but whether it was done is not known; \
                 `zkdev status` shows what runs",
                before.map_or(String::new(), |p| format!(" (pid {p})")),
                req.op()
            )));
        }
        match call(&self.socket, &req, timeout).await {
            Some(r) => r,
            None => Err(gone(" (a new one was started, and it did not answer either)".into())),
        }
    }
}

/// Replace a supervisor that died (unless another answers already), recording and announcing the restart;
/// on failure the reason is kept as `lost`.
async fn revive(shared: &Shared, paths: &ClusterPaths, old_pid: Option<i32>, noticed_by: &str) -> Result<()> {
    let _one = shared.reviving.lock().await;
    // Tried already in this command, and no new one started: say so at once rather than wait again.
    if let Some(why) = shared.lost.lock().expect("lost").clone() {
        return Err(Error::supervisor_gone(why));
    }
    if call(&paths.socket(), &Request::Ping, Duration::from_millis(200))
        .await
        .is_some()
    {
        return Ok(());
    }
    if let Err(e) = start_detached(&shared.home, &shared.cluster).await {
        let mut why = String::new();
        let e = e.reword(|m| {
            why = format!(
                "the supervisor{} of cluster `{}` died and a new one did not start: {m}",
                old_pid.map_or(String::new(), |p| format!(" (pid {p})")),
                shared.cluster
            );
            why.clone()
        });
        *shared.lost.lock().expect("lost") = Some(why.clone());
        let (_, detail) = e.parts();
        return Err(Error::from_parts(ErrorKind::SupervisorGone, why, detail));
    }
    let restart = Restart {
        old_pid,
        new_pid: recorded(paths).map(|(pid, _)| pid),
        at_ms: crate::os::clock::now_ms(),
        noticed_by: noticed_by.to_string(),
    };
    if let Some(f) = shared.on_restart.lock().expect("on_restart").as_ref() {
        f(&restart);
    }
    shared.restarts.lock().expect("restarts").push(restart);
    Ok(())
}

/// Start a supervisor detached (`supervise --detach` forks: the process started here exits at once, its
/// child carries on) and wait until it answers.
async fn start_detached(home: &Home, cluster: &str) -> Result<()> {
    let paths = home.cluster(cluster);
    let exe = std::env::current_exe().map_err(|e| Error::env(format!("cannot find zkdev's own binary: {e}")))?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(paths.supervisor_log())
        .map_err(|e| Error::io("cannot open", paths.supervisor_log(), e))?;
    let log2 = log
        .try_clone()
        .map_err(|e| Error::io("cannot open", paths.supervisor_log(), e))?;
    let status = std::process::Command::new(exe)
        .arg("--home")
        .arg(&home.root)
        .arg("--cluster")
        .arg(cluster)
        .args(["supervise", "--detach"])
        .stdin(std::process::Stdio::null())
        .stdout(log)
        .stderr(log2)
        .status()
        .map_err(|e| Error::env(format!("cannot start the supervisor: {e}")))?;
    if !status.success() {
        return Err(Error::failed_with(
            format!("the supervisor of cluster `{cluster}` did not start ({status})"),
            log_tail(&paths.supervisor_log()),
        ));
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if call(&paths.socket(), &Request::Ping, Duration::from_millis(200))
            .await
            .is_some()
        {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(Error::failed_with(
                format!("the supervisor of cluster `{cluster}` did not answer within 10 s"),
                log_tail(&paths.supervisor_log()),
            ));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(10);
    let mut out = format!("  last lines of {}:\n", path.display());
    for l in &lines[start..] {
        out.push_str("    ");
        out.push_str(l);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_requests_that_may_be_asked_twice_are_asked_again() {
        let signal = |signal| Request::Signal {
            ids: vec![3],
            signal,
            cause: "zkdev chaos".into(),
        };
        assert!(signal(Sig::Stop).repeatable() && signal(Sig::Cont).repeatable());
        assert!(!signal(Sig::Kill).repeatable() && !signal(Sig::Term).repeatable());
        let shutdown = Request::Shutdown {
            grace_ms: 1,
            cause: String::new(),
        };
        assert!(!shutdown.repeatable());
        assert_eq!(shutdown.op(), "shutdown");
        assert_eq!(signal(Sig::Kill).op(), "signal");
    }

    #[test]
    fn an_error_keeps_its_kind_across_the_socket() {
        for kind in ErrorKind::ALL {
            let e = Error::from_parts(kind, "refused".into(), "detail".into());
            let wire = serde_json::to_string(&WireError::from(&e)).expect("serialises");
            let back = Error::from(serde_json::from_str::<WireError>(&wire).expect("reads back"));
            assert_eq!((back.kind(), back.parts()), (kind, e.parts()), "{wire}");
        }
        // An older supervisor sends no kind: the code says what it can.
        let old: WireError = serde_json::from_str(r#"{"code":2,"message":"m","detail":""}"#).expect("reads");
        assert_eq!(Error::from(old).kind(), ErrorKind::Usage);
    }

    #[test]
    fn a_restart_names_both_supervisors() {
        let r = Restart {
            old_pid: Some(812),
            new_pid: Some(950),
            at_ms: 0,
            noticed_by: "zkdev's watch over it".into(),
        };
        let text = r.describe();
        assert!(text.starts_with("the supervisor (pid 812) died"), "{text}");
        assert!(text.contains("started a new one (pid 950)"), "{text}");
    }

    #[test]
    fn a_supervisor_dir_gives_its_home_and_name() {
        let paths = Home { root: "/h".into() }.cluster("c1");
        let (home, cluster) = home_of(&paths);
        assert_eq!((home.root, cluster.as_str()), (std::path::PathBuf::from("/h"), "c1"));
    }
}
