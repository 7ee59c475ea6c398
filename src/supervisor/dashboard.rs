//! The dashboard: a small HTTP/1.1 server inside the supervisor, on 127.0.0.1 only, started on demand by
//! `zkdev dashboard`. It serves one page (embedded in the binary), the latest view as JSON, the journal
//! and the view as server-sent events, the last election explained, and a few fault buttons.
//!
//! Hand-written rather than a framework: five routes, one request per connection, no keep-alive, bodies
//! of a few bytes; on the supervisor's current-thread runtime that is a hundred lines, where axum or hyper
//! would bring dozens of crates to every build of a tool whose users are learning ZooKeeper.
//!
//! The fault buttons change the ensemble, so only the dashboard's own page may press them: the `Host`
//! header must name this listener (a DNS-rebound name cannot), an `Origin` header, when sent, must be this
//! listener's, and every action carries the dashboard's token (a page of another site can neither read it nor
//! send the custom header without a CORS preflight we never grant). The page itself is served without it:
//! anyone on the machine can fetch the page, so the token travels only in the address `zkdev dashboard` prints
//! to the cluster's owner (in its fragment, `#token=...`, which a browser never sends), and the page's script
//! keeps it for the tab. It lives in the owner-only `dashboard.json` while the dashboard listens, so a
//! supervisor that replaces a dead one keeps it and an open page goes on working.
//!
//! Every local user can connect to 127.0.0.1, so no user may use up the connections: each user (the uid of
//! the connecting socket, from /proc/net/tcp) holds at most `MAX_PER_USER` at once, the listener at most
//! `MAX_CONNECTIONS`, and a request must arrive whole within `REQUEST_WITHIN`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::cluster::Sup;
use super::control::{Request, Sig};
use super::journal::{self, Tail};
use super::replies::DashboardReply;
use super::tap::{traced_write, TracedWrite, PAGE as PAGE_OF_EVENTS};
use crate::error::{Error, Result};
use crate::model::links;
use crate::model::timeline;
use crate::os::clock::now_ms;
use crate::os::state::ClusterPaths;

const PAGE: &str = include_str!("dashboard.html");
/// The znode the "trace a write" button writes.
const TRACE_PATH: &str = "/zkdev-trace";
/// The cause the journal records for what the dashboard's buttons do.
const CAUSE: &str = "zkdev dashboard";
/// How many past journal events a new page gets before the live ones.
const BACKLOG: usize = 300;

/// What `dashboard.json` records while a dashboard listens: `status` and `watch` print its address.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DashboardRecord {
    pub url: String,
    pub port: u16,
    /// The supervisor serving it: the record is stale once that process is gone.
    pub pid: i32,
    /// The actions' token (the file is the owner's only); absent in a record of an older zkdev.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

impl DashboardRecord {
    pub fn file(paths: &ClusterPaths) -> std::path::PathBuf {
        paths.root.join("dashboard.json")
    }

    /// The dashboard of a running supervisor, if one listens.
    pub fn read(paths: &ClusterPaths) -> Option<DashboardRecord> {
        let rec: DashboardRecord = serde_json::from_str(&std::fs::read_to_string(Self::file(paths)).ok()?).ok()?;
        let sup = super::Record::read(paths)?;
        (sup.pid == rec.pid && sup.alive(paths)).then_some(rec)
    }
}

/// The listener of this supervisor, once started.
struct Listening {
    port: u16,
    token: String,
}

static LISTENING: Mutex<Option<Listening>> = Mutex::new(None);

fn url(port: u16) -> String {
    format!("http://127.0.0.1:{port}/")
}

/// The address `zkdev dashboard` prints: the page, with the token in the fragment its script reads.
fn url_with_token(port: u16, token: &str) -> String {
    format!("{}#token={token}", url(port))
}

/// 128 random bits as hex, from the kernel.
fn token() -> Result<String> {
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))
        .map_err(|e| Error::env(format!("cannot read /dev/urandom for the dashboard's token: {e}")))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

impl Sup {
    /// Listen on 127.0.0.1:`port` (once per supervisor; asking again answers where it listens).
    pub(super) async fn open_dashboard(self: &Arc<Self>, port: u16) -> Result<DashboardReply> {
        if let Some(l) = LISTENING.lock().expect("dashboard").as_ref() {
            if l.port != port {
                return Err(Error::usage(format!(
                    "the dashboard of this cluster already listens on {}; open that, or `zkdev down` and `up` \
                     again to move it",
                    url(l.port)
                )));
            }
            return Ok(DashboardReply {
                url: url_with_token(l.port, &l.token),
                port: l.port,
                already: true,
            });
        }
        // Bound without an await between the check above and the claim below: two `zkdev dashboard` at once
        // cannot both pass the check (the supervisor's runtime has one thread).
        let bound = std::net::TcpListener::bind(("127.0.0.1", port))
            .and_then(|l| l.set_nonblocking(true).map(|()| l))
            .and_then(TcpListener::from_std);
        let listener = bound.map_err(|e| {
            if e.kind() == std::io::ErrorKind::AddrInUse {
                Error::env(format!(
                    "port {port} on 127.0.0.1 is taken by another program; pick a free one with --port"
                ))
            } else {
                Error::env(format!("cannot listen on 127.0.0.1:{port}: {e}"))
            }
        })?;
        // A supervisor that replaces a dead one keeps its token, so the pages open on it keep working.
        let kept = std::fs::read_to_string(DashboardRecord::file(&self.paths))
            .ok()
            .and_then(|t| serde_json::from_str::<DashboardRecord>(&t).ok())
            .filter(|r| r.port == port)
            .and_then(|r| r.token)
            .filter(|t| t.len() == 32 && t.chars().all(|c| c.is_ascii_hexdigit()));
        let token = match kept {
            Some(t) => t,
            None => token()?,
        };
        let record = DashboardRecord {
            url: url(port),
            port,
            pid: std::process::id() as i32,
            token: Some(token.clone()),
        };
        crate::os::state::write_atomic(
            &DashboardRecord::file(&self.paths),
            serde_json::to_string(&record).expect("serialises").as_bytes(),
        )?;
        *LISTENING.lock().expect("dashboard") = Some(Listening {
            port,
            token: token.clone(),
        });
        let mut ev = crate::model::timeline::Event::new(
            crate::model::timeline::Kind::Note,
            format!("dashboard listening on {}", url(port)),
        );
        ev.action = Some(timeline::Action::Dashboard);
        self.record(ev);
        let printed = url_with_token(port, &token);
        tokio::spawn(self.clone().accept(listener, port, token));
        Ok(DashboardReply {
            url: printed,
            port,
            already: false,
        })
    }

    /// The accept loop, type-erased: its requests call `handle`, which is what started it.
    fn accept(
        self: Arc<Self>,
        listener: TcpListener,
        port: u16,
        token: String,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
        Box::pin(async move {
            // Every page keeps one event stream open; more than this many connections at once is not people
            // looking, and each costs the supervisor a file descriptor its probes need too.
            let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
            let held: Arc<Mutex<HashMap<Option<u32>, usize>>> = Arc::default();
            loop {
                match listener.accept().await {
                    Ok((stream, peer)) => {
                        let user = crate::os::ports::loopback_peer_uid(peer.port(), port);
                        let Some(claim) = Claim::take(&held, user) else {
                            continue; // this user holds its share already: closed at once
                        };
                        let Ok(slot) = slots.clone().try_acquire_owned() else {
                            continue; // dropped: closed at once
                        };
                        let sup = self.clone();
                        let token = token.clone();
                        tokio::spawn(async move {
                            let _ = sup.http(stream, port, &token).await;
                            drop(slot);
                            drop(claim);
                        });
                    }
                    // Out of file descriptors, say: wait instead of spinning on the same error.
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        })
    }

    async fn http(self: Arc<Self>, mut stream: TcpStream, port: u16, token: &str) -> std::io::Result<()> {
        // The whole request within REQUEST_WITHIN: a client that trickles bytes does not hold a connection long.
        let read = tokio::time::timeout(REQUEST_WITHIN, read_request(&mut stream)).await;
        let Ok(Some(req)) = read.unwrap_or(Ok(None)) else {
            return Ok(());
        };
        if !req.host_is_ours(port) {
            return respond(
                &mut stream,
                421,
                "text/plain",
                b"this server answers only to 127.0.0.1\n",
            )
            .await;
        }
        match (req.method.as_str(), req.path()) {
            ("GET", "/") => {
                // No token in it: anyone on the machine may fetch the page.
                let page = PAGE.replace("{{CLUSTER}}", &html_escape(&self.spec().name));
                respond(&mut stream, 200, "text/html; charset=utf-8", page.as_bytes()).await
            }
            ("GET", "/api/status") => {
                let body = serde_json::to_vec(&self.snapshot()).expect("serialises");
                respond(&mut stream, 200, "application/json", &body).await
            }
            ("GET", "/api/election") => {
                let spec = self.spec();
                let paths = self.paths.clone();
                let body = tokio::task::spawn_blocking(move || {
                    let journal = journal::read_all(&paths);
                    match crate::model::election::explain(&spec, &paths.log_texts(&spec), &journal, None) {
                        Ok(e) => serde_json::to_vec(&e).expect("serialises"),
                        Err(e) => serde_json::to_vec(&json!({ "error": e.to_string() })).expect("serialises"),
                    }
                })
                .await
                .unwrap_or_default();
                respond(&mut stream, 200, "application/json", &body).await
            }
            ("GET", "/events") => self.events(stream).await,
            ("POST", "/api/action") => {
                if let Err(why) = req.may_act(port, token) {
                    return respond_json(&mut stream, 403, &json!({ "ok": false, "error": why })).await;
                }
                let answer = match serde_json::from_slice::<Action>(&req.body) {
                    Err(e) => Err(Error::usage(format!("not an action: {e}"))),
                    Ok(a) => self.act(a).await,
                };
                match answer {
                    Ok(message) => respond_json(&mut stream, 200, &json!({ "ok": true, "message": message })).await,
                    Err(e) => respond_json(&mut stream, 409, &json!({ "ok": false, "error": e.to_string() })).await,
                }
            }
            ("POST", "/api/trace-write") => {
                if let Err(why) = req.may_act(port, token) {
                    return respond_json(&mut stream, 403, &json!({ "ok": false, "error": why })).await;
                }
                match self.trace_write(TRACE_PATH).await {
                    Ok(story) => respond_json(&mut stream, 200, &json!({ "ok": true, "story": story })).await,
                    Err(e) => respond_json(&mut stream, 409, &json!({ "ok": false, "error": e.to_string() })).await,
                }
            }
            ("GET" | "POST", _) => respond(&mut stream, 404, "text/plain", b"not found\n").await,
            _ => respond(&mut stream, 405, "text/plain", b"method not allowed\n").await,
        }
    }

    /// The latest view as `status --json` gives it, plus the link rules of a `--net` cluster.
    fn snapshot(&self) -> Value {
        let view = self.view.lock().expect("view").clone();
        let mut v = match view {
            Some((status, at)) => json!({ "status": status, "age_ms": at.elapsed().as_millis() as u64 }),
            None => json!({ "status": Value::Null }),
        };
        v["net"] = json!(self.proxies.is_some());
        v["rules"] = match &self.proxies {
            Some(p) => json!(p.table().rules),
            None => json!([]),
        };
        v["power_cuts"] = json!(self.cuts_that_lost_data());
        v
    }

    /// Each node's last power cut that lost data, as `status` shows them (until `reset` or `down --purge`).
    fn cuts_that_lost_data(&self) -> Vec<crate::model::power::NodeCut> {
        let spec = self.spec();
        if !spec.settings.disk_faults {
            return Vec::new();
        }
        let mut cuts = crate::os::power::last_cuts(&self.paths, &spec.ids());
        cuts.retain(|c| c.bytes_lost() > 0);
        cuts
    }

    /// Server-sent events: the journal's recent past, then every new event, and the view whenever it
    /// changes (checked every 100 ms, the probe interval).
    async fn events(self: Arc<Self>, mut stream: TcpStream) -> std::io::Result<()> {
        let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-store\r\nconnection: close\r\n\r\nretry: 1000\n\n";
        stream.write_all(head.as_bytes()).await?;
        // Reading the journal (up to two 8 MiB files) is slow work: off the supervisor's one thread.
        let paths = self.paths.clone();
        let read = tokio::task::spawn_blocking(move || {
            let past = journal::read_all(&paths);
            let mut tail = Tail::new(&paths, past.last().map_or(0, |e| e.seq));
            let since = tail.poll(); // the first poll reads the file from its start
            (past, since, tail)
        });
        let Ok((past, since, mut tail)) = read.await else {
            return Ok(());
        };
        for e in past.iter().skip(past.len().saturating_sub(BACKLOG)).chain(&since) {
            send(&mut stream, "journal", &serde_json::to_string(e).expect("serialises")).await?;
        }
        let mut shown = String::new();
        let mut quiet = 0u32;
        loop {
            for e in tail.poll() {
                send(&mut stream, "journal", &serde_json::to_string(&e).expect("serialises")).await?;
            }
            let now = serde_json::to_string(&self.snapshot_without_age()).expect("serialises");
            if now != shown {
                send(&mut stream, "status", &now).await?;
                shown = now;
                quiet = 0;
            } else {
                quiet += 1;
                if quiet % 100 == 0 {
                    // A comment keeps proxies and the browser from timing the stream out, and finds a gone page.
                    stream.write_all(b": still here\n\n").await?;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn snapshot_without_age(&self) -> Value {
        let mut v = self.snapshot();
        if let Some(o) = v.as_object_mut() {
            o.remove("age_ms");
        }
        v
    }

    /// The quorum guard's lock (shared with the command line's stop, kill, pause and kill-leader) and the
    /// ensemble as the servers answer now, its voters those ZooKeeper committed. Held until the button's
    /// take-down is done, so a concurrent one counts it.
    async fn quorum_decision(&self) -> Result<(crate::os::state::LockGuard, crate::zk::observe::ClusterStatus)> {
        let held = self.paths.quorum_lock(Duration::from_secs(60)).await?;
        let spec = self.spec();
        let state = self.state.lock().expect("state").clone();
        let now = crate::zk::observe::gather(&spec, &self.paths, &state).await;
        Ok((
            held,
            crate::zk::observe::with_committed_voters(&now, &spec, &self.paths),
        ))
    }

    /// A button: the same supervisor requests the command line sends, journalled with the dashboard as cause.
    /// The "trace a write" button: one write to `path` through the first follower (as `zkdev trace --write`),
    /// its story told from this supervisor's own tap; journalled as a note.
    async fn trace_write(self: &Arc<Self>, path: &str) -> Result<crate::model::trace::Story> {
        let p = self.proxies_or_refuse()?;
        let status = (self.view.lock().expect("view").clone())
            .map(|(s, _)| s)
            .ok_or_else(|| Error::failed("the supervisor has not looked at the ensemble yet"))?;
        let leader = status
            .leader
            .ok_or_else(|| Error::failed("no leader serves now: a write has no story to tell"))?;
        let mode_of = |m: crate::model::server::Mode| -> Vec<u32> {
            (status.nodes.iter())
                .filter(|n| n.mode() == Some(m))
                .map(|n| n.id)
                .collect()
        };
        let roles = crate::model::trace::Roles {
            leader,
            followers: mode_of(crate::model::server::Mode::Follower),
            observers: mode_of(crate::model::server::Mode::Observer),
        };
        let via = *roles.followers.first().unwrap_or(&leader);
        let port =
            (self.spec().client_proxy(via)).ok_or_else(|| Error::failed(format!("node {via} has no client proxy")))?;
        let write = TracedWrite {
            connect: format!("127.0.0.1:{port}"),
            path: path.to_string(),
            data: b"zkdev dashboard".to_vec(),
            via,
            roles,
            settle: Duration::from_millis(1500),
            timeout: Duration::from_secs(10),
        };
        let (mut story, _lost) = traced_write(&write, |cursor| {
            let page = p.trace(cursor, PAGE_OF_EVENTS);
            async move { Ok(page) }
        })
        .await?;
        crate::model::trace::name_faults(&mut story.missing, &p.table().rules);
        let zxid = story.zxid.map_or("no zxid seen".to_string(), |z| format!("zxid {z}"));
        let mut ev = timeline::Event::new(
            timeline::Kind::Note,
            format!("traced a write to {path} through node {via} ({zxid}), asked by `{CAUSE}`"),
        );
        ev.cause = Some(CAUSE.into());
        self.record(ev);
        Ok(story)
    }

    async fn act(self: &Arc<Self>, a: Action) -> Result<String> {
        let status = self
            .view
            .lock()
            .expect("view")
            .clone()
            .map(|(s, _)| s)
            .ok_or_else(|| Error::failed("the supervisor has not looked at the ensemble yet"))?;
        let node = |what: &str| {
            a.node
                .filter(|id| status.node(*id).is_some())
                .ok_or_else(|| Error::usage(format!("{what} needs a node of this cluster")))
        };
        let signal = |ids: Vec<u32>, signal: Sig| Request::Signal {
            ids,
            signal,
            cause: CAUSE.into(),
        };
        match a.action.as_str() {
            "kill-leader" => {
                let (_held, status) = self.quorum_decision().await?;
                let leaders = status.leaders();
                let [leader] = leaders.as_slice() else {
                    return Err(Error::failed("no single node leads right now; wait for an election"));
                };
                let id = leader.id;
                crate::model::fault::guard(&status, &[id], &format!("kill leader {id}"), false)?;
                let answer = self.signal(&[id], Sig::Kill, CAUSE).await?;
                if answer.hit.is_empty() {
                    return Err(Error::failed(format!(
                        "leader {id} is no longer the JVM zkdev started; nothing was signalled"
                    )));
                }
                Ok(format!("killed leader {id} (SIGKILL)"))
            }
            "pause" => {
                let id = node("pause")?;
                let (_held, status) = self.quorum_decision().await?;
                crate::model::fault::guard(&status, &[id], &format!("pause node {id}"), false)?;
                self.handle(signal(vec![id], Sig::Stop)).await?;
                Ok(format!("paused node {id} (SIGSTOP)"))
            }
            "resume" => {
                let id = node("resume")?;
                self.handle(signal(vec![id], Sig::Cont)).await?;
                Ok(format!("resumed node {id} (SIGCONT)"))
            }
            "stop" => {
                let id = node("stop")?;
                let (_held, status) = self.quorum_decision().await?;
                crate::model::fault::guard(&status, &[id], &format!("stop node {id}"), false)?;
                self.handle(Request::Stop {
                    ids: vec![id],
                    grace_ms: 5000,
                    cause: CAUSE.into(),
                })
                .await?;
                Ok(format!("stopped node {id}"))
            }
            "start" => {
                let id = node("start")?;
                self.handle(Request::Start {
                    ids: vec![id],
                    cause: CAUSE.into(),
                })
                .await?;
                Ok(format!("started node {id}"))
            }
            "isolate" => {
                let id = node("isolate")?;
                let others: Vec<u32> = self.spec().ids().into_iter().filter(|o| *o != id).collect();
                self.handle(Request::SetLinks {
                    heal_all: false,
                    heal_pairs: Vec::new(),
                    rules: links::partition(&[id], &others, false, CAUSE, now_ms()),
                    reset: Vec::new(),
                    action: timeline::Action::Isolate,
                    message: format!(
                        "isolate: node {id} cut off from every other node on quorum and election links (both ways)"
                    ),
                    cause: CAUSE.into(),
                })
                .await?;
                Ok(format!("isolated node {id}"))
            }
            "heal" => {
                self.handle(Request::SetLinks {
                    heal_all: true,
                    heal_pairs: Vec::new(),
                    rules: Vec::new(),
                    reset: Vec::new(),
                    action: timeline::Action::Heal,
                    message: "heal every link".into(),
                    cause: CAUSE.into(),
                })
                .await?;
                Ok("healed every link".into())
            }
            other => Err(Error::usage(format!(
                "unknown action `{other}` (kill-leader, pause, resume, stop, start, isolate, heal)"
            ))),
        }
    }
}

/// A supervisor that replaces one that died serves the dashboard the old one served, on the same port, so
/// an open page reconnects by itself (and reloads, for the new token).
pub(super) async fn reopen(sup: &Arc<Sup>) {
    let Some(rec) = std::fs::read_to_string(DashboardRecord::file(&sup.paths))
        .ok()
        .and_then(|t| serde_json::from_str::<DashboardRecord>(&t).ok())
    else {
        return;
    };
    if let Err(e) = sup.open_dashboard(rec.port).await {
        forget(&sup.paths);
        sup.record(crate::model::timeline::Event::new(
            crate::model::timeline::Kind::Note,
            format!("the dashboard of the previous supervisor could not listen again: {e}"),
        ));
    }
}

/// Forget the listener's record when the supervisor stops.
pub(super) fn forget(paths: &ClusterPaths) {
    let _ = std::fs::remove_file(DashboardRecord::file(paths));
}

#[derive(Debug, Deserialize)]
struct Action {
    action: String,
    #[serde(default)]
    node: Option<u32>,
}

struct HttpRequest {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl HttpRequest {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
    fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }

    /// Addressed to this listener by name: a DNS-rebound name (evil.example resolving to 127.0.0.1) is not.
    fn host_is_ours(&self, port: u16) -> bool {
        self.header("host")
            .is_some_and(|h| h == format!("127.0.0.1:{port}") || h == format!("localhost:{port}"))
    }

    /// Only the dashboard's own page may act: no foreign `Origin`, and the token it was served with.
    fn may_act(&self, port: u16, token: &str) -> std::result::Result<(), &'static str> {
        let origin_ok = self
            .header("origin")
            .is_none_or(|o| o == format!("http://127.0.0.1:{port}") || o == format!("http://localhost:{port}"));
        if !origin_ok {
            return Err("refused: a page of another site (Origin) may not act on this ensemble");
        }
        if self.header("x-zkdev-token") != Some(token) {
            return Err(
                "refused: missing or wrong dashboard token; open the address `zkdev dashboard` prints (it carries \
                 the token)",
            );
        }
        Ok(())
    }
}

/// Headers a request may carry; one with more is refused (a browser sends about a dozen).
const MAX_HEADERS: usize = 48;

/// The request line and headers (names lower-cased) at the start of `buf`, with the length of the head
/// (through its blank line); `Ok(None)` while the head is still incomplete, `Err` for a malformed one.
fn parse_head(buf: &[u8]) -> std::result::Result<Option<(HttpRequest, usize)>, httparse::Error> {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut slots);
    let httparse::Status::Complete(len) = parsed.parse(buf)? else {
        return Ok(None);
    };
    let headers = parsed
        .headers
        .iter()
        .map(|h| {
            (
                h.name.to_ascii_lowercase(),
                String::from_utf8_lossy(h.value).trim().to_string(),
            )
        })
        .collect();
    let req = HttpRequest {
        method: parsed.method.unwrap_or("").to_string(),
        target: parsed.path.unwrap_or("").to_string(),
        headers,
        body: Vec::new(),
    };
    Ok(Some((req, len)))
}

/// Connections served at once (each open page holds one for its event stream).
const MAX_CONNECTIONS: usize = 64;
/// Connections one local user holds at once: a few pages' streams and their requests. A user's further
/// connections are closed at once, so no user can take the others' share.
const MAX_PER_USER: usize = 8;
/// How long a request (head and body) may take to arrive.
const REQUEST_WITHIN: Duration = Duration::from_secs(5);

/// One connection counted against its user's share; given back when dropped.
struct Claim {
    held: Arc<Mutex<HashMap<Option<u32>, usize>>>,
    user: Option<u32>,
}

impl Claim {
    /// A share of `user`'s connections (None: the user could not be told, and those share one), if any is left.
    fn take(held: &Arc<Mutex<HashMap<Option<u32>, usize>>>, user: Option<u32>) -> Option<Claim> {
        let mut h = held.lock().expect("connections");
        let n = h.entry(user).or_default();
        if *n >= MAX_PER_USER {
            return None;
        }
        *n += 1;
        Some(Claim {
            held: held.clone(),
            user,
        })
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        let mut h = self.held.lock().expect("connections");
        if let Some(n) = h.get_mut(&self.user) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                h.remove(&self.user);
            }
        }
    }
}
const MAX_HEAD: usize = 16 * 1024;
const MAX_BODY: usize = 16 * 1024;

/// One request: the head up to the blank line, and a body of `content-length` bytes (small ones only).
async fn read_request(stream: &mut TcpStream) -> std::io::Result<Option<HttpRequest>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let (mut req, head_len) = loop {
        match parse_head(&buf) {
            Ok(Some(done)) => break done,
            Ok(None) if buf.len() <= MAX_HEAD => {}
            // Too long a head, or not HTTP: nothing to answer.
            _ => return Ok(None),
        }
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk))
            .await
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let length: usize = req.header("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
    if length > MAX_BODY {
        return Ok(None);
    }
    let mut body = buf[head_len..].to_vec();
    while body.len() < length {
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk))
            .await
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    body.truncate(length);
    req.body = body;
    Ok(Some(req))
}

async fn respond(stream: &mut TcpStream, code: u16, kind: &str, body: &[u8]) -> std::io::Result<()> {
    let reason = match code {
        200 => "OK",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        421 => "Misdirected Request",
        _ => "Error",
    };
    let head = format!(
        "HTTP/1.1 {code} {reason}\r\ncontent-type: {kind}\r\ncontent-length: {}\r\ncache-control: no-store\r\n\
         x-content-type-options: nosniff\r\nx-frame-options: DENY\r\nconnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body).await?;
    stream.shutdown().await
}

async fn respond_json(stream: &mut TcpStream, code: u16, v: &Value) -> std::io::Result<()> {
    respond(
        stream,
        code,
        "application/json",
        &serde_json::to_vec(v).expect("serialises"),
    )
    .await
}

async fn send(stream: &mut TcpStream, event: &str, data: &str) -> std::io::Result<()> {
    stream
        .write_all(format!("event: {event}\ndata: {data}\n\n").as_bytes())
        .await
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A whole head (with its blank line) parsed, or a panic naming what was wrong.
    fn head(text: &str) -> HttpRequest {
        let (req, len) = parse_head(format!("{text}\r\n\r\n").as_bytes())
            .expect("well-formed")
            .expect("complete");
        assert_eq!(len, text.len() + 4);
        req
    }

    #[test]
    fn a_head_is_parsed_only_when_whole_and_well_formed() {
        let text = b"GET /events HTTP/1.1\r\nHOST: 127.0.0.1:8900\r\n\r\nbody";
        for cut in 0..text.len() - 4 {
            assert!(parse_head(&text[..cut]).unwrap().is_none(), "complete at {cut} bytes");
        }
        let (req, len) = parse_head(text).unwrap().unwrap();
        assert_eq!(
            (req.method.as_str(), req.path(), len),
            ("GET", "/events", text.len() - 4)
        );
        assert_eq!(req.header("host"), Some("127.0.0.1:8900"), "names are lower-cased");
        assert!(parse_head(b"GET / HTTP/1.1\r\nno colon here\r\n\r\n").is_err());
        assert!(parse_head(b"\x16\x03\x01 a TLS hello\r\n\r\n").is_err());
        let many: String = (0..MAX_HEADERS + 1).map(|i| format!("X-{i}: 1\r\n")).collect();
        assert!(parse_head(format!("GET / HTTP/1.1\r\n{many}\r\n").as_bytes()).is_err());
    }

    #[test]
    fn only_the_page_itself_may_act() {
        let req = |extra: &str| {
            head(&format!(
                "POST /api/action?x=1 HTTP/1.1\r\nHost: 127.0.0.1:8900\r\nContent-Length: 2{extra}"
            ))
        };
        let own = req("\r\nOrigin: http://127.0.0.1:8900\r\nX-Zkdev-Token: abc");
        assert_eq!((own.method.as_str(), own.path()), ("POST", "/api/action"));
        assert!(own.host_is_ours(8900) && !own.host_is_ours(8901));
        assert_eq!(own.may_act(8900, "abc"), Ok(()));
        assert!(own.may_act(8900, "abd").is_err(), "a wrong token");
        assert!(
            req("\r\nX-Zkdev-Token: abc").may_act(8900, "abc").is_ok(),
            "no Origin: a script, with the token"
        );
        let foreign = req("\r\nOrigin: http://evil.example\r\nX-Zkdev-Token: abc");
        assert!(foreign.may_act(8900, "abc").unwrap_err().contains("Origin"));
        assert!(req("").may_act(8900, "abc").is_err(), "no token");
        let rebound = head("GET / HTTP/1.1\r\nHost: evil.example:8900");
        assert!(!rebound.host_is_ours(8900));
        assert!(!head("GET / HTTP/1.1").host_is_ours(8900), "no Host at all");
        assert_eq!(html_escape("<a href=\"x\">&"), "&lt;a href=&quot;x&quot;&gt;&amp;");
    }
}
