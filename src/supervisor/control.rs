//! The control socket's protocol and its client. One request per connection: a JSON line in, a JSON line
//! out. The socket lives in the cluster directory with owner-only permissions.

use std::path::Path;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

use crate::error::{Error, Result};
use crate::model::links::{Endpoint, Flow, Rule};
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
        action: Option<String>,
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
        action: String,
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
        action: String,
        message: String,
        cause: String,
    },
    /// Stop every node (`grace_ms`), then the supervisor itself.
    Shutdown {
        grace_ms: u64,
        cause: String,
    },
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

/// An `Error` across the socket, keeping its exit code.
#[derive(Debug, Serialize, Deserialize)]
pub struct WireError {
    pub code: i32,
    pub message: String,
    #[serde(default)]
    pub detail: String,
}

impl From<&Error> for WireError {
    fn from(e: &Error) -> WireError {
        let (message, detail) = match e {
            Error::Failed { message, detail } => (message.clone(), detail.clone()),
            other => (other.to_string(), String::new()),
        };
        WireError {
            code: e.exit_code(),
            message,
            detail,
        }
    }
}

impl From<WireError> for Error {
    fn from(w: WireError) -> Error {
        match w.code {
            crate::error::EXIT_USAGE => Error::Usage(w.message),
            crate::error::EXIT_ENV => Error::Env(w.message),
            _ => Error::failed_with(w.message, w.detail),
        }
    }
}

/// A list of node ids in a reply (`"started": [1, 3]`); empty when absent.
pub fn ids(v: &Value) -> Vec<u32> {
    v.as_array()
        .map(|a| a.iter().filter_map(|x| x.as_u64()).map(|x| x as u32).collect())
        .unwrap_or_default()
}

/// Send one request and read the reply. `None`: nobody answers on the socket.
pub async fn call(socket: &Path, req: &Request, timeout: Duration) -> Option<Result<Value>> {
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

/// A supervisor that answers.
pub struct Supervisor {
    socket: std::path::PathBuf,
    /// Did this command start it (so a failed `up` knows to stop it again)?
    pub started_here: bool,
}

impl Supervisor {
    /// The running supervisor, if one answers within 200 ms.
    pub async fn find(paths: &ClusterPaths) -> Option<Supervisor> {
        let socket = paths.socket();
        match call(&socket, &Request::Ping, Duration::from_millis(200)).await {
            Some(Ok(_)) => Some(Supervisor {
                socket,
                started_here: false,
            }),
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
        let exe = std::env::current_exe().map_err(|e| Error::env(format!("cannot find zkdev's own binary: {e}")))?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(paths.supervisor_log())
            .map_err(|e| Error::io("cannot open", paths.supervisor_log(), e))?;
        let log2 = log
            .try_clone()
            .map_err(|e| Error::io("cannot open", paths.supervisor_log(), e))?;
        // `supervise --detach` forks: the process started here exits at once, its child carries on.
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
            if let Some(mut s) = Supervisor::find(&paths).await {
                s.started_here = true;
                return Ok(s);
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

    /// Ask, and wait up to `timeout` for the answer.
    pub async fn ask(&self, req: Request, timeout: Duration) -> Result<Value> {
        match call(&self.socket, &req, timeout).await {
            Some(r) => r,
            None => Err(Error::failed(format!(
                "the supervisor stopped answering (socket {}); `zkdev status` shows what runs, and the next \
                 command starts a new supervisor",
                self.socket.display()
            ))),
        }
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
