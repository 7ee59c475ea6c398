//! The link proxies of a `--net` cluster: one listener per directed peer link and port kind, and one per
//! client port. Every node's server lines name hosts (`zkdev-node-N`) that its JVM resolves through its own
//! hosts file: the proxy of the link a -> b listens on b's real quorum and election port numbers at the
//! link's own address 127.1.a.b (where node a's hosts file sends b's name), so the address a connection
//! arrives at says who dialled (see `NetSpec`). Each accepted connection is dialled on to the real port and
//! copied both ways by two pumps, each applying the fault of its flow (`model::links`): hold (cut one way,
//! stall), delay, jitter, loss as a retransmission delay, bandwidth. A connection whose two directions are
//! both cut is reset (SO_LINGER 0), as is every new one on it; `--reset` resets the live ones once.
//!
//! On the election port the first bytes a node sends advertise its own election address for dial-backs
//! (as its JVM resolved its own name: 127.0.0.1); the proxy rewrites them to the proxy of the reverse link,
//! so no connection ever bypasses a proxy.
//!
//! Nodes come and go with `zkdev add`/`remove`: `sync` starts and stops their proxies as cluster.toml
//! changes.
//!
//! The proxies live in the supervisor process: if it dies, every link is down until the next zkdev command
//! starts a new supervisor, which binds them again (SO_REUSEADDR) and restores the faults of `links.json`.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::model::rng::Rng;

use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::error::{Error, Result};
use crate::model::links::{rewrite_initial, Endpoint, Flow, Initial, LinkTable, Port};
use crate::model::spec::{is_link_address, link_address, ClusterSpec};
use crate::model::trace::TracePage;

use super::tap::{TapHandle, Tracer};

/// What every connection watches: the rules, and the last one-shot reset.
#[derive(Debug, Default)]
pub struct Shared {
    pub table: LinkTable,
    pub reset_gen: u64,
    pub reset: Vec<Flow>,
}

/// One listener: who dials it, which node it leads to, and where that node really listens.
#[derive(Debug, Clone)]
struct Route {
    address: Ipv4Addr,
    listen: u16,
    dialler: Endpoint,
    target: Endpoint,
    port: Port,
    upstream: u16,
    /// Election links: the address to advertise instead of the dialler's own (the reverse link's proxy).
    advertise: Option<String>,
}

type Key = (Endpoint, Endpoint, Port);

/// Live connections per link, for `zkdev links`.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct LiveLink {
    pub dialler: Endpoint,
    pub target: Endpoint,
    pub port: Port,
    pub listen: u16,
    /// `address:port` the dialler connects to.
    pub proxy: String,
    pub connections: usize,
}

pub struct Proxies {
    tx: watch::Sender<Arc<Shared>>,
    live: Arc<Mutex<BTreeMap<Key, usize>>>,
    /// Every route served now, with its accept loop.
    routes: Mutex<Vec<(Route, JoinHandle<()>)>>,
    /// The upstream ports whose listening `watch_listening` reports (the routes' upstreams).
    upstreams: Arc<Mutex<BTreeSet<u16>>>,
    up_rx: watch::Receiver<Arc<BTreeSet<u16>>>,
    /// Proxies whose port could not be bound (another program holds it): `127.0.0.1:20001` -> what it is and
    /// why. Each is retried while its upstream listens, and leaves this list once it listens.
    unbound: Unbound,
    /// The side tap every connection's pumps feed (`zkdev trace`).
    tracer: Arc<Tracer>,
}

type Unbound = Arc<Mutex<BTreeMap<String, String>>>;

/// `127.0.0.1:20001`
fn proxy_addr(r: &Route) -> String {
    format!("{}:{}", r.address, r.listen)
}

/// `client proxy of node 2` / `proxy of node 3's quorum port for node 1`
fn describe_route(r: &Route) -> String {
    match r.dialler {
        Endpoint::Clients => format!("client proxy of node {}", r.target),
        d => format!("proxy of node {}'s {} port for node {d}", r.target, r.port.as_str()),
    }
}

fn routes(spec: &ClusterSpec) -> Vec<Route> {
    let mut v = Vec::new();
    for b in &spec.nodes {
        if let Some(p) = spec.client_proxy(b.id) {
            v.push(Route {
                address: Ipv4Addr::LOCALHOST,
                listen: p,
                dialler: Endpoint::Clients,
                target: Endpoint::Node(b.id),
                port: Port::Client,
                upstream: b.ports.client,
                advertise: None,
            });
        }
        for a in spec.ids().into_iter().filter(|a| *a != b.id) {
            v.extend(link_routes(spec, a, b.id));
        }
    }
    v
}

/// The quorum and election proxies of the link `a -> b`: b's real port numbers at the link's address; a's election connections advertise the link back (b -> a) for dial-backs.
fn link_routes(spec: &ClusterSpec, a: u32, b: u32) -> Vec<Route> {
    let (Some(na), Some(nb)) = (spec.node(a), spec.node(b)) else {
        return Vec::new();
    };
    let route = |port, upstream, advertise| Route {
        address: link_address(a, b),
        listen: upstream,
        dialler: Endpoint::Node(a),
        target: Endpoint::Node(b),
        port,
        upstream,
        advertise,
    };
    vec![
        route(Port::Quorum, nb.ports.quorum, None),
        route(
            Port::Election,
            nb.ports.election,
            Some(format!("{}:{}", link_address(b, a), na.ports.election)),
        ),
    ]
}

fn key(r: &Route) -> Key {
    (r.dialler, r.target, r.port)
}

/// `127.0.0.1:20001 (client proxy of node 2) could not listen: Address in use ...; ... tried again every 100 ms`
fn unbound_reason(r: &Route, e: &Error) -> String {
    let why = match e {
        Error::Env(m) => m.rsplit(": ").next().unwrap_or(m).to_string(),
        other => other.to_string(),
    };
    format!(
        "{} ({}) could not listen: {why} (another program may hold the port); the other links are up, and this one \
         is tried again every 100 ms",
        proxy_addr(r),
        describe_route(r)
    )
}

fn bind(r: &Route) -> Result<std::net::TcpListener> {
    let bound = socket2_free_bind(r.address, r.listen);
    bound.map_err(|e| {
        Error::env(format!(
            "cannot listen on {}:{} (proxy of {} {} port for {}): {e}",
            r.address,
            r.listen,
            r.target,
            r.port.as_str(),
            r.dialler
        ))
    })
}

/// A listening socket on `addr:port` with SO_REUSEADDR (as tokio's own bind sets it), so a new supervisor
/// binds again at once where the previous one's connections linger.
fn socket2_free_bind(addr: Ipv4Addr, port: u16) -> std::io::Result<std::net::TcpListener> {
    let sock = tokio::net::TcpSocket::new_v4()?;
    sock.set_reuseaddr(true)?;
    sock.bind((addr, port).into())?;
    let l = sock.listen(1024)?;
    l.into_std()
}

impl Proxies {
    /// Bind every proxy of `spec` and start serving, with `table`'s faults in force from the first byte.
    pub async fn start(spec: &ClusterSpec, table: LinkTable) -> Result<Proxies> {
        let (tx, _) = watch::channel(Arc::new(Shared {
            table,
            ..Shared::default()
        }));
        let routes = routes(spec);
        let unbound = Unbound::default();
        // A port another program took (while no supervisor ran) leaves that one proxy down, not every link:
        // it is said (`unbound`) and retried.
        let mut listeners = Vec::new();
        for r in &routes {
            match bind(r) {
                Ok(l) => listeners.push(Some(l)),
                Err(e) => {
                    unbound
                        .lock()
                        .expect("unbound")
                        .insert(proxy_addr(r), unbound_reason(r, &e));
                    listeners.push(None);
                }
            }
        }
        let upstreams: BTreeSet<u16> = routes.iter().map(|r| r.upstream).collect();
        let first: BTreeSet<u16> = listening_upstreams().intersection(&upstreams).copied().collect();
        let (up_tx, up_rx) = watch::channel(Arc::new(first));
        let upstreams = Arc::new(Mutex::new(upstreams));
        tokio::spawn(watch_listening(upstreams.clone(), up_tx));
        let proxies = Proxies {
            tx,
            live: Arc::default(),
            routes: Mutex::new(Vec::new()),
            upstreams,
            up_rx,
            unbound,
            tracer: Arc::default(),
        };
        for (l, r) in listeners.into_iter().zip(routes) {
            proxies.serve(l, r)?;
        }
        Ok(proxies)
    }

    /// Serve `route` on `listener`; without one (its port could not be bound), bind it once its upstream
    /// listens and the port is free.
    fn serve(&self, listener: Option<std::net::TcpListener>, route: Route) -> Result<()> {
        let listener = match listener {
            Some(l) => {
                l.set_nonblocking(true)
                    .map_err(|e| Error::env(format!("cannot use the proxy listener on port {}: {e}", route.listen)))?;
                Some(
                    TcpListener::from_std(l).map_err(|e| {
                        Error::env(format!("cannot use the proxy listener on port {}: {e}", route.listen))
                    })?,
                )
            }
            None => None,
        };
        self.upstreams.lock().expect("upstreams").insert(route.upstream);
        let task = tokio::spawn(accept_loop(
            listener,
            Arc::new(route.clone()),
            self.tx.clone(),
            self.live.clone(),
            self.up_rx.clone(),
            self.unbound.clone(),
            self.tracer.clone(),
        ));
        self.routes.lock().expect("routes").push((route, task));
        Ok(())
    }

    /// Serve the proxies of nodes `spec` has and these do not (added by `zkdev add`), stop those of nodes
    /// it no longer has (removed). Live connections of a stopped proxy run on until their node closes them.
    /// What started and stopped, in words; errors (a port taken) are said and the rest goes on.
    pub fn sync(&self, spec: &ClusterSpec) -> Vec<String> {
        let wanted = routes(spec);
        let mut said = Vec::new();
        let (mut started, mut stopped) = (0, 0);
        {
            let mut routes = self.routes.lock().expect("routes");
            routes.retain(|(r, task)| {
                let keep = wanted.iter().any(|w| key(w) == key(r) && w.listen == r.listen);
                if !keep {
                    task.abort();
                    stopped += 1;
                }
                keep
            });
        }
        let have: Vec<(Key, u16)> = (self.routes.lock().expect("routes").iter())
            .map(|(r, _)| (key(r), r.listen))
            .collect();
        for r in wanted.into_iter().filter(|w| !have.contains(&(key(w), w.listen))) {
            match bind(&r).and_then(|l| self.serve(Some(l), r)) {
                Ok(()) => started += 1,
                Err(e) => said.push(e.to_string()),
            }
        }
        if started + stopped > 0 {
            said.insert(0, format!("link proxies: {started} started, {stopped} stopped"));
        }
        let ports: BTreeSet<u16> = (self.routes.lock().expect("routes").iter())
            .map(|(r, _)| r.upstream)
            .collect();
        *self.upstreams.lock().expect("upstreams") = ports;
        said
    }

    pub fn table(&self) -> LinkTable {
        self.tx.borrow().table.clone()
    }

    /// Change the rules (and reset the live connections of `reset` once).
    pub fn update(&self, table: LinkTable, reset: Vec<Flow>) {
        let gen = self.tx.borrow().reset_gen + u64::from(!reset.is_empty());
        self.tx.send_replace(Arc::new(Shared {
            table,
            reset_gen: gen,
            reset,
        }));
    }

    pub fn live(&self) -> Vec<LiveLink> {
        let live = self.live.lock().expect("live");
        let routes = self.routes.lock().expect("routes");
        let mut links: Vec<LiveLink> = (routes.iter())
            .map(|(r, _)| LiveLink {
                dialler: r.dialler,
                target: r.target,
                port: r.port,
                listen: r.listen,
                proxy: format!("{}:{}", r.address, r.listen),
                connections: live.get(&key(r)).copied().unwrap_or(0),
            })
            .collect();
        links.sort_by_key(|l| (l.target, l.dialler, l.port));
        links
    }

    /// The proxies that could not listen, each with what it is and why (`127.0.0.1:20001 (client proxy of
    /// node 2) could not listen: ...`).
    pub fn unbound(&self) -> Vec<String> {
        self.unbound.lock().expect("unbound").values().cloned().collect()
    }

    pub fn count(&self) -> usize {
        self.routes.lock().expect("routes").len()
    }

    /// The trace events from `cursor` on (None: only the cursor of what comes next).
    pub fn trace(&self, cursor: Option<u64>, max: usize) -> TracePage {
        self.tracer.page(cursor, max)
    }

    #[cfg(test)]
    fn tracer(&self) -> &Tracer {
        &self.tracer
    }
}

/// Serve one proxy port, listening exactly while its upstream listens (`up` says which upstream ports
/// do). While a node is down, and on every node's quorum port but the leader's (only a leader listens
/// there), a dialler is refused, as it would be dialling directly. Accepting and then resetting is not the
/// same to ZooKeeper: a follower that cannot reach a new leader retries a refused connect every 100 ms,
/// but gives up on a connection that was accepted and then reset, and starts a whole new election (seconds).
async fn accept_loop(
    mut listener: Option<TcpListener>,
    route: Arc<Route>,
    tx: watch::Sender<Arc<Shared>>,
    live: Arc<Mutex<BTreeMap<Key, usize>>>,
    mut up: watch::Receiver<Arc<BTreeSet<u16>>>,
    unbound: Unbound,
    tracer: Arc<Tracer>,
) {
    loop {
        let upstream_listens = up.borrow_and_update().contains(&route.upstream);
        match (upstream_listens, listener.is_some()) {
            (true, false) => {
                let bound = bind(&route);
                let mut said = unbound.lock().expect("unbound");
                match &bound {
                    Ok(_) => said.remove(&proxy_addr(&route)),
                    Err(e) => said.insert(proxy_addr(&route), unbound_reason(&route, e)),
                };
                drop(said);
                listener = bound
                    .ok()
                    .and_then(|l| l.set_nonblocking(true).ok().map(|_| l))
                    .and_then(|l| TcpListener::from_std(l).ok())
            }
            (false, true) => listener = None,
            _ => {}
        }
        match &listener {
            Some(l) => tokio::select! {
                accepted = l.accept() => match accepted {
                    Ok((sock, _)) => {
                        tokio::spawn(connection(sock, route.clone(), tx.subscribe(), live.clone(), tracer.clone()));
                    }
                    // Out of file descriptors and the like: try again shortly rather than spin.
                    Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
                },
                changed = up.changed() => if changed.is_err() { return },
            },
            // Not listening (or the port could not be bound again yet): wait for the next change.
            None => {
                let wait = tokio::time::timeout(Duration::from_millis(100), up.changed()).await;
                if matches!(wait, Ok(Err(_))) {
                    return;
                }
            }
        }
    }
}

/// Which of `ports` something listens on, read from /proc every 50 ms and published when it changes:
/// one reader for all the proxies.
async fn watch_listening(ports: Arc<Mutex<BTreeSet<u16>>>, tx: watch::Sender<Arc<BTreeSet<u16>>>) {
    loop {
        let ports = ports.lock().expect("upstreams").clone();
        let now: BTreeSet<u16> = listening_upstreams().intersection(&ports).copied().collect();
        if **tx.borrow() != now {
            tx.send_replace(Arc::new(now));
        }
        if tx.is_closed() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The ports something listens on, leaving out the link proxies' own listeners (on a cluster with reconfig
/// they listen on their nodes' port numbers, at 127.1.x.y).
fn listening_upstreams() -> BTreeSet<u16> {
    crate::os::ports::listening_ports_except(is_link_address)
}

/// Close with a reset instead of a FIN: SO_LINGER on, 0 s. The caller drops the socket afterwards.
fn set_reset(fd: RawFd) {
    // SAFETY: the fd belongs to a socket that stays open until after this call (its owner is alive).
    let fd = unsafe { BorrowedFd::borrow_raw(fd) };
    let _ = nix::sys::socket::setsockopt(
        &fd,
        nix::sys::socket::sockopt::Linger,
        &nix::libc::linger {
            l_onoff: 1,
            l_linger: 0,
        },
    );
}

async fn connection(
    client: TcpStream,
    route: Arc<Route>,
    mut rx: watch::Receiver<Arc<Shared>>,
    live: Arc<Mutex<BTreeMap<Key, usize>>>,
    tracer: Arc<Tracer>,
) {
    let (dialler, target, port) = (route.dialler, route.target, route.port);
    if rx.borrow_and_update().table.resets(dialler, target, port) {
        set_reset(client.as_raw_fd());
        return;
    }
    let upstream = match tokio::time::timeout(
        Duration::from_secs(2),
        TcpStream::connect(("127.0.0.1", route.upstream)),
    )
    .await
    {
        Ok(Ok(s)) => s,
        // Nothing listens upstream after all (it went away in the last 50 ms): reset this one; the
        // proxy stops listening as soon as the watcher sees it (see `accept_loop`).
        _ => {
            set_reset(client.as_raw_fd());
            return;
        }
    };
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let (cfd, ufd) = (client.as_raw_fd(), upstream.as_raw_fd());
    let gen0 = rx.borrow().reset_gen;
    let up_flow = Flow::new(dialler, target, port);
    let down_flow = up_flow.reverse();
    let (cr, cw) = client.into_split();
    let (ur, uw) = upstream.into_split();
    let (up_tap, down_tap) = tracer.connection(up_flow);
    let mut up = tokio::spawn(pump(cr, uw, up_flow, rx.clone(), route.advertise.clone(), up_tap));
    let mut down = tokio::spawn(pump(ur, cw, down_flow, rx.clone(), None, down_tap));
    let key = (dialler, target, port);
    *live.lock().expect("live").entry(key).or_default() += 1;
    let (mut up_done, mut down_done, mut reset) = (false, false, false);
    while !(up_done && down_done) {
        tokio::select! {
            _ = &mut up, if !up_done => up_done = true,
            _ = &mut down, if !down_done => down_done = true,
            changed = rx.changed() => {
                let s = rx.borrow_and_update().clone();
                if changed.is_err()
                    || s.table.resets(dialler, target, port)
                    || (s.reset_gen != gen0 && (s.reset.contains(&up_flow) || s.reset.contains(&down_flow)))
                {
                    reset = true;
                    break;
                }
            }
        }
    }
    if reset {
        // Both sockets are still open: at least one pump (holding a half of each) is alive.
        set_reset(cfd);
        set_reset(ufd);
        up.abort();
        down.abort();
    }
    let mut live = live.lock().expect("live");
    if let Some(n) = live.get_mut(&key) {
        *n = n.saturating_sub(1);
    }
}

/// Return once bytes may move on `flow`.
async fn flowing(rx: &mut watch::Receiver<Arc<Shared>>, flow: Flow) {
    loop {
        if !rx.borrow_and_update().table.fault(flow).holds() {
            return;
        }
        if rx.changed().await.is_err() {
            return;
        }
    }
}

/// Copy one direction: a reader that stamps each chunk with the time it may leave (delay, jitter, loss),
/// and a writer that waits for that time, for the flow to move, and for the bandwidth budget, and then
/// hands what it forwarded to the side tap (never waiting for it).
async fn pump(
    mut rd: OwnedReadHalf,
    mut wr: OwnedWriteHalf,
    flow: Flow,
    rx: watch::Receiver<Arc<Shared>>,
    advertise: Option<String>,
    mut tap: Option<TapHandle>,
) {
    let (tx, mut chan) = mpsc::channel::<(Instant, Vec<u8>)>(256);
    let mut rrx = rx.clone();
    let reader = async move {
        let mut rng = Rng::new(crate::os::random::u64());
        let mut buf = vec![0u8; 16 * 1024];
        let mut initial: Option<Vec<u8>> = advertise.as_ref().map(|_| Vec::new());
        let mut last = Instant::now();
        loop {
            flowing(&mut rrx, flow).await;
            let n = match rd.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let mut data = buf[..n].to_vec();
            if let (Some(acc), Some(addr)) = (initial.as_mut(), advertise.as_deref()) {
                acc.extend_from_slice(&data);
                match rewrite_initial(acc, addr) {
                    Initial::NeedMore => continue,
                    Initial::PassThrough => data = std::mem::take(acc),
                    Initial::Rewritten { bytes, consumed, .. } => {
                        let mut d = bytes;
                        d.extend_from_slice(&acc[consumed..]);
                        data = d;
                    }
                }
                initial = None;
            }
            let fault = rrx.borrow().table.fault(flow);
            let hold = fault.hold_ms((rng.next_u64() >> 32) as u32, (rng.next_u64() >> 32) as u32);
            let at = (Instant::now() + Duration::from_millis(hold)).max(last);
            last = at;
            if tx.send((at, data)).await.is_err() {
                break;
            }
        }
    };
    let mut wrx = rx;
    let writer = async move {
        while let Some((at, data)) = chan.recv().await {
            // A healthy chunk is due at once: no timer (tokio rounds every deadline up to its next 1 ms tick,
            // which cost about 0.5 ms per hop and doubled a write's latency through the proxies).
            if at > Instant::now() {
                tokio::time::sleep_until(at).await;
            }
            flowing(&mut wrx, flow).await;
            let bandwidth = wrx.borrow().table.fault(flow).bandwidth;
            if let Some(bps) = bandwidth.filter(|b| *b > 0) {
                let secs = data.len() as f64 / bps as f64;
                tokio::time::sleep(Duration::from_secs_f64(secs.min(60.0))).await;
            }
            if wr.write_all(&data).await.is_err() {
                return;
            }
            if let Some(t) = tap.as_mut() {
                t.offer(data);
            }
        }
        let _ = wr.shutdown().await;
    };
    tokio::join!(reader, writer);
}

/// The proxies on a loopback echo server: no JVM, the real listeners and pumps, the real fault table.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::links::{Fault, Rule};

    /// A loopback echo server on a port of the kernel's choosing: every byte it reads goes back.
    async fn echo() -> u16 {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                tokio::spawn(async move {
                    let (mut r, mut w) = s.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        port
    }

    fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    /// A one-node `--net` cluster whose node listens at `client` (the echo server) and whose client proxy
    /// listens at `proxy`.
    fn one_node(client: u16, proxy: u16) -> ClusterSpec {
        let (origin, profile) = crate::os::profile::load("fast").unwrap();
        let mut st = profile.settings(&origin).unwrap();
        st.offset = client - st.client_base - 1;
        st.proxied = true;
        st.net_port_base = Some(proxy);
        let spec = ClusterSpec::build("t", "p", st, crate::dist::Dist::fixture(), 1, 0).unwrap();
        assert_eq!(
            (spec.nodes[0].ports.client, spec.client_proxy(1)),
            (client, Some(proxy))
        );
        spec
    }

    fn client_flow() -> Flow {
        Flow::new(Endpoint::Clients, Endpoint::Node(1), Port::Client)
    }

    fn table(fault: Fault) -> LinkTable {
        let mut t = LinkTable::default();
        for flow in [client_flow(), client_flow().reverse()] {
            t.rules.push(Rule {
                flow,
                fault,
                since_ms: 0,
                cause: "test".into(),
            });
        }
        t
    }

    /// Send `bytes` through the proxy and read them back; how long the round trip took, or None if no
    /// answer came within `within`.
    async fn round_trip(proxy: u16, bytes: &[u8], within: Duration) -> Option<Duration> {
        let t0 = Instant::now();
        let mut s = tokio::time::timeout(within, TcpStream::connect(("127.0.0.1", proxy)))
            .await
            .ok()?
            .ok()?;
        s.write_all(bytes).await.ok()?;
        let mut back = vec![0u8; bytes.len()];
        tokio::time::timeout(within, s.read_exact(&mut back)).await.ok()?.ok()?;
        assert_eq!(back, bytes, "the proxy changed the bytes");
        Some(t0.elapsed())
    }

    /// Connect as soon as the proxy has seen its upstream listening (it polls /proc for that).
    async fn first_round_trip(proxy: u16) -> Duration {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(d) = round_trip(proxy, b"hello", Duration::from_secs(2)).await {
                return d;
            }
            assert!(
                Instant::now() < deadline,
                "the proxy never carried bytes to its upstream"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    #[tokio::test]
    async fn a_healthy_proxy_carries_bytes_both_ways_unchanged() {
        let (client, proxy) = (echo().await, free_port());
        let p = Proxies::start(&one_node(client, proxy), LinkTable::default())
            .await
            .unwrap();
        first_round_trip(proxy).await;
        let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        round_trip(proxy, &big, Duration::from_secs(10))
            .await
            .expect("200 kB go through and back");
        assert!(p.live().iter().any(|l| l.listen == proxy), "the client proxy is listed");
    }

    #[tokio::test]
    async fn a_delay_holds_every_chunk_and_a_cut_lets_nothing_through() {
        let (client, proxy) = (echo().await, free_port());
        let p = Proxies::start(&one_node(client, proxy), LinkTable::default())
            .await
            .unwrap();
        let healthy = first_round_trip(proxy).await;
        // 150 ms each way: a round trip takes at least 300 ms.
        p.update(
            table(Fault {
                delay_ms: 150,
                ..Fault::default()
            }),
            Vec::new(),
        );
        let slow = round_trip(proxy, b"slow", Duration::from_secs(5))
            .await
            .expect("a delayed answer");
        assert!(slow >= Duration::from_millis(300), "{slow:?} (healthy: {healthy:?})");
        // Cut both ways: no byte comes back.
        p.update(
            table(Fault {
                cut: true,
                ..Fault::default()
            }),
            Vec::new(),
        );
        assert_eq!(round_trip(proxy, b"cut", Duration::from_millis(700)).await, None);
        // Healed: bytes flow again, quickly.
        p.update(LinkTable::default(), Vec::new());
        let again = round_trip(proxy, b"healed", Duration::from_secs(5))
            .await
            .expect("healed");
        assert!(again < Duration::from_millis(300), "{again:?}");
    }

    /// A client ConnectRequest frame (protocol 0, no zxid seen, 30 s, new session, 16-byte password, not
    /// read-only), as ClientCnxn sends it.
    fn connect_request() -> Vec<u8> {
        let mut body = Vec::new();
        body.extend_from_slice(&0i32.to_be_bytes());
        body.extend_from_slice(&0i64.to_be_bytes());
        body.extend_from_slice(&30_000i32.to_be_bytes());
        body.extend_from_slice(&0i64.to_be_bytes());
        body.extend_from_slice(&16i32.to_be_bytes());
        body.extend_from_slice(&[0u8; 16]);
        body.push(0);
        let mut frame = (body.len() as i32).to_be_bytes().to_vec();
        frame.extend(body);
        frame
    }

    #[tokio::test]
    async fn the_tap_reads_what_the_proxy_forwarded_and_gives_up_on_garbage_without_holding_bytes() {
        let (client, proxy) = (echo().await, free_port());
        let p = Proxies::start(&one_node(client, proxy), LinkTable::default())
            .await
            .unwrap();
        first_round_trip(proxy).await;
        let cursor = p.trace(None, 0).next;
        round_trip(proxy, &connect_request(), Duration::from_secs(5))
            .await
            .expect("the request goes through and back");
        let deadline = Instant::now() + Duration::from_secs(5);
        let connects = loop {
            let page = p.trace(Some(cursor), 100);
            let c: Vec<_> = page.events.into_iter().filter(|e| e.msg == "connect").collect();
            if !c.is_empty() || Instant::now() > deadline {
                break c;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        assert_eq!(connects.len(), 1, "the client's ConnectRequest, read on its way in");
        assert_eq!(
            (connects[0].from, connects[0].to),
            (Endpoint::Clients, Endpoint::Node(1))
        );
        assert_eq!(connects[0].size, connect_request().len());
        // 200 kB of bytes no decoder reads: given up (said, counted), every byte still forwarded unchanged.
        let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        round_trip(proxy, &big, Duration::from_secs(10))
            .await
            .expect("forwarded");
        let page = p.trace(Some(cursor), 1000);
        assert!(page.gave_up >= 1, "{:?}", page.events);
    }

    /// What tapping costs on the forwarding path: small round trips through a proxy with the tap on and
    /// off (`cargo test --lib tap_cost -- --nocapture` prints the figures).
    #[tokio::test]
    async fn tap_cost() {
        let (client, proxy) = (echo().await, free_port());
        let p = Proxies::start(&one_node(client, proxy), LinkTable::default())
            .await
            .unwrap();
        first_round_trip(proxy).await;
        let mut medians = Vec::new();
        for on in [false, true, false, true] {
            p.tracer().set_on(on);
            let mut s = TcpStream::connect(("127.0.0.1", proxy)).await.unwrap();
            s.set_nodelay(true).unwrap();
            // A valid client stream (a connect, then 4-byte-framed pings), so the tap decodes every chunk.
            s.write_all(&connect_request()).await.unwrap();
            let mut back = vec![0u8; connect_request().len()];
            s.read_exact(&mut back).await.unwrap();
            let ping = [0, 0, 0, 8, 0xff, 0xff, 0xff, 0xfe, 0, 0, 0, 11];
            let mut times = Vec::new();
            for _ in 0..1500 {
                let t0 = Instant::now();
                s.write_all(&ping).await.unwrap();
                let mut b = [0u8; 12];
                s.read_exact(&mut b).await.unwrap();
                times.push(t0.elapsed().as_micros() as u64);
            }
            times.sort();
            medians.push((on, times[times.len() / 2], times[times.len() * 99 / 100]));
        }
        eprintln!("tap cost (on, median us, p99 us) per 1500 round trips: {medians:?}");
        let events = p.trace(Some(1), 100_000).events.len();
        assert!(events >= 3000, "the tapped runs were decoded: {events} events");
    }

    #[tokio::test]
    async fn a_taken_proxy_port_is_named_and_the_proxy_comes_up_once_it_is_free() {
        let (client, proxy) = (echo().await, free_port());
        let squatter = std::net::TcpListener::bind(("127.0.0.1", proxy)).unwrap();
        let p = Proxies::start(&one_node(client, proxy), LinkTable::default())
            .await
            .unwrap();
        let unbound = p.unbound.lock().unwrap().clone();
        assert!(
            unbound
                .get(&format!("127.0.0.1:{proxy}"))
                .is_some_and(|why| why.contains("client proxy of node 1")),
            "{unbound:?}"
        );
        drop(squatter);
        first_round_trip(proxy).await;
    }
}
