//! The proxies' side tap (`zkdev trace`): every pump hands each chunk it has just forwarded to a decoder
//! task of its own through a bounded queue, without waiting: when the queue is full the chunk is dropped,
//! counted, and the tap gives that connection up (a stream with a hole cannot be read on). The decoders
//! (`model::wire`) turn the bytes into trace events kept in one bounded ring (`model::trace::TraceRing`),
//! which `trace` polls with a cursor.
//!
//! The tap is always on: the quorum and election connections live as long as their nodes, and a stream
//! can only be read from its first byte (a QuorumPacket carries no frame length to find the next one by).
//! Its cost on the forwarding path is one clock read and one non-blocking queue send per chunk (the chunk
//! itself is moved, not copied); see the proxies' design notes for the figures.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::mpsc;

use crate::error::{Error, Result};
use crate::model::links::{Flow, Port};
use crate::model::trace::{self, story, Decoded, Recall, Roles, Story, TraceEvent, TracePage, TraceRing, GAVE_UP};
use crate::model::wire::client::{ClientDecoder, From as ClientSide};
use crate::model::wire::election::ElectionDecoder;
use crate::model::wire::quorum::QuorumDecoder;
use crate::model::wire::{Event, Tap, DEFAULT_CAP};

/// How many trace events the supervisor keeps.
pub const RING: usize = 8192;
/// How many forwarded chunks (up to 16 KiB each) may wait for one direction's decoder.
pub const QUEUE: usize = 64;

/// The ring and the connection numbers, shared by every proxy of a cluster.
pub struct Tracer {
    ring: Mutex<(TraceRing, Recall)>,
    next_conn: AtomicU64,
    /// Off only to measure what tapping costs (the proxies' unit tests).
    on: AtomicBool,
}

impl Default for Tracer {
    fn default() -> Self {
        Tracer::new(RING)
    }
}

impl Tracer {
    pub fn new(cap: usize) -> Tracer {
        Tracer {
            ring: Mutex::new((TraceRing::new(cap), Recall::new(1024))),
            next_conn: AtomicU64::new(1),
            on: AtomicBool::new(true),
        }
    }

    pub fn set_on(&self, on: bool) {
        self.on.store(on, Ordering::Relaxed);
    }

    /// Events from `cursor` on (None: none, only the cursor of what comes next).
    pub fn page(&self, cursor: Option<u64>, max: usize) -> TracePage {
        let ring = &self.ring.lock().expect("trace ring").0;
        match cursor {
            Some(c) => ring.since(c, max),
            None => ring.since(ring.head(), 0),
        }
    }

    /// Keep an event, naming the operation and path of an ACK, COMMIT or reply after what it answers.
    fn push(&self, mut ev: TraceEvent) {
        let (ring, recall) = &mut *self.ring.lock().expect("trace ring");
        recall.fill(&mut ev);
        ring.push(ev);
    }

    /// The two taps of a new connection on `flow` (the dialler's direction) and its reverse.
    pub fn connection(self: &Arc<Self>, flow: Flow) -> (Option<TapHandle>, Option<TapHandle>) {
        if !self.on.load(Ordering::Relaxed) {
            return (None, None);
        }
        let conn = self.next_conn.fetch_add(1, Ordering::Relaxed);
        (
            Some(self.spawn(flow, conn, true)),
            Some(self.spawn(flow.reverse(), conn, false)),
        )
    }

    fn spawn(self: &Arc<Self>, flow: Flow, conn: u64, dialler: bool) -> TapHandle {
        let (tx, rx) = mpsc::channel(QUEUE);
        let decoder = match (flow.port, dialler) {
            (Port::Quorum, _) => AnyTap::Quorum(Tap::new(QuorumDecoder::new(), DEFAULT_CAP)),
            (Port::Election, true) => AnyTap::Election(Tap::new(ElectionDecoder::from_dialler(), DEFAULT_CAP)),
            (Port::Election, false) => AnyTap::Election(Tap::new(ElectionDecoder::from_acceptor(), DEFAULT_CAP)),
            (Port::Client, true) => AnyTap::Client(Tap::new(ClientDecoder::new(ClientSide::Client), DEFAULT_CAP)),
            (Port::Client, false) => AnyTap::Client(Tap::new(ClientDecoder::new(ClientSide::Server), DEFAULT_CAP)),
        };
        tokio::spawn(decode(rx, decoder, self.clone(), flow, conn));
        TapHandle {
            tx: Some(tx),
            tracer: self.clone(),
            flow,
            conn,
        }
    }
}

/// One direction's end of the tap, held by the pump's writer.
pub struct TapHandle {
    tx: Option<mpsc::Sender<(u64, Vec<u8>)>>,
    tracer: Arc<Tracer>,
    flow: Flow,
    conn: u64,
}

impl TapHandle {
    /// A chunk just forwarded: hand it over without waiting. A full queue drops it, counts it and gives the
    /// connection up; a decoder that stopped (it gave up by itself) is left alone.
    pub fn offer(&mut self, data: Vec<u8>) {
        let Some(tx) = &self.tx else { return };
        match tx.try_send((now_us(), data)) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full((_, data))) => {
                self.tx = None;
                self.tracer.ring.lock().expect("trace ring").0.dropped_chunks += 1;
                self.tracer.push(gave_up(
                    self.flow,
                    self.conn,
                    format!(
                        "the tap fell behind ({QUEUE} chunks waiting); a chunk of {} bytes was forwarded but not \
                         read, so this direction of the connection is no longer followed",
                        data.len()
                    ),
                ));
            }
            Err(mpsc::error::TrySendError::Closed(_)) => self.tx = None,
        }
    }
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

fn gave_up(flow: Flow, conn: u64, why: String) -> TraceEvent {
    TraceEvent {
        seq: 0,
        t_us: now_us(),
        from: flow.from,
        to: flow.to,
        link: flow.port,
        conn,
        msg: GAVE_UP.to_string(),
        zxid: None,
        op: None,
        path: None,
        xid: None,
        session: None,
        err: None,
        size: 0,
        note: Some(why),
    }
}

/// One write to tell the story of: where to send it, and the ensemble's roles at that moment.
#[derive(Debug, Clone)]
pub struct TracedWrite {
    /// The client proxy of `via` (`127.0.0.1:20001`).
    pub connect: String,
    pub path: String,
    pub data: Vec<u8>,
    pub via: u32,
    pub roles: Roles,
    /// How long to wait for the messages after the reply (a follower's ACK that never comes).
    pub settle: Duration,
    /// How long the connection and the write itself may take.
    pub timeout: Duration,
}

/// Make the write (setData if the znode exists, else create), read the tap through `poll` (a cursor in,
/// a page out) until the story is whole or `settle` has passed since the reply, and tell it; with what the
/// tap lost meanwhile, if anything.
pub async fn traced_write<F, Fut>(w: &TracedWrite, mut poll: F) -> Result<(Story, Option<String>)>
where
    F: FnMut(Option<u64>) -> Fut,
    Fut: std::future::Future<Output = Result<TracePage>>,
{
    let cursor = poll(None).await?.next;
    let client = crate::zk::client::connect(&w.connect, Duration::from_secs(10), w.timeout).await?;
    let written = async {
        match client.check_stat(&w.path).await {
            Ok(Some(_)) => client.set_data(&w.path, &w.data, None).await.map(|_| ()),
            Ok(None) => (client.create(&w.path, &w.data, &crate::zk::client::open_acl()).await).map(|_| ()),
            Err(e) => Err(e),
        }
    };
    let via = w.via;
    match tokio::time::timeout(w.timeout, written).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            return Err(Error::failed(format!(
                "the write of {} through node {via} failed: {e}{}",
                w.path,
                if w.path.matches('/').count() > 1 {
                    " (its parent must exist)"
                } else {
                    ""
                }
            )))
        }
        Err(_) => {
            return Err(Error::timeout(format!(
                "the write of {} through node {via} was not answered within {}",
                w.path,
                crate::model::span::secs(w.timeout)
            )))
        }
    }
    // Collect until every message of a healthy write has crossed its link, or `settle` after the reply.
    let mut events: Vec<TraceEvent> = Vec::new();
    let mut next = cursor;
    let mut lost = None;
    let until = Instant::now() + w.settle;
    let told = loop {
        let page = poll(Some(next)).await?;
        next = page.next;
        if page.missed > 0 {
            lost = Some(format!(
                "{} trace events left the supervisor's ring before they were read",
                page.missed
            ));
        }
        let full = page.events.len() >= PAGE;
        events.extend(page.events);
        let s = story(&events, via, &w.path, &w.roles);
        if full {
            continue;
        }
        if s.as_ref().is_some_and(Story::complete) || Instant::now() >= until {
            break s;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    drop(client);
    let gave_up: Vec<String> = (events.iter())
        .filter(|e| e.msg == GAVE_UP)
        .map(|e| format!("{}: {}", e.link_name(), e.note.clone().unwrap_or_default()))
        .collect();
    if !gave_up.is_empty() {
        lost = Some(format!("the tap gave up meanwhile on {}", gave_up.join("; ")));
    }
    let story = told.ok_or_else(|| {
        Error::failed(format!(
            "the proxies did not see the client request of the write to {} at node {via}: {}",
            w.path,
            lost.clone().unwrap_or_else(|| {
                "the supervisor may be of another zkdev version (`zkdev down` and `zkdev up`)".into()
            })
        ))
    })?;
    Ok((story, lost))
}

/// Events asked for in one poll (one reply line).
pub const PAGE: usize = 2000;

enum AnyTap {
    Quorum(Tap<QuorumDecoder>),
    Election(Tap<ElectionDecoder>),
    Client(Tap<ClientDecoder>),
}

/// What one chunk completed: each message's fields and size, or why the tap stopped.
type Fed = Vec<Result<(Decoded, usize), String>>;

fn map<M>(events: Vec<Event<M>>, f: impl Fn(&M) -> Decoded) -> Fed {
    (events.into_iter())
        .map(|e| match e {
            Event::Message { len, message, .. } => Ok((f(&message), len)),
            Event::Stopped { why, .. } => Err(why.to_string()),
        })
        .collect()
}

impl AnyTap {
    fn feed(&mut self, chunk: &[u8]) -> Fed {
        match self {
            AnyTap::Quorum(t) => map(t.feed(chunk), trace::quorum),
            AnyTap::Election(t) => map(t.feed(chunk), trace::election),
            AnyTap::Client(t) => map(t.feed(chunk), trace::client),
        }
    }
}

/// A TLS record's first bytes (a handshake, version 3.x): the connection is encrypted.
fn is_tls(first: &[u8]) -> bool {
    first.len() >= 2 && first[0] == 0x16 && first[1] == 0x03
}

async fn decode(mut rx: mpsc::Receiver<(u64, Vec<u8>)>, mut tap: AnyTap, tracer: Arc<Tracer>, flow: Flow, conn: u64) {
    let mut first = true;
    while let Some((t_us, chunk)) = rx.recv().await {
        if std::mem::take(&mut first) && is_tls(&chunk) {
            tracer.push(gave_up(
                flow,
                conn,
                "the connection is TLS: its messages are encrypted and cannot be read; it is counted, not guessed"
                    .into(),
            ));
            return;
        }
        for fed in tap.feed(&chunk) {
            match fed {
                Ok((d, size)) => tracer.push(TraceEvent {
                    seq: 0,
                    t_us,
                    from: flow.from,
                    to: flow.to,
                    link: flow.port,
                    conn,
                    msg: d.msg,
                    zxid: d.zxid,
                    op: d.op,
                    path: d.path,
                    xid: d.xid,
                    session: d.session,
                    err: d.err,
                    size,
                    note: d.note,
                }),
                Err(why) => {
                    tracer.push(gave_up(flow, conn, why));
                    // Dropping the queue tells the pump to stop offering.
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::links::Endpoint;

    fn flow() -> Flow {
        Flow::new(Endpoint::Node(2), Endpoint::Node(1), Port::Quorum)
    }

    /// A QuorumPacket PING (type 5) with zxid z, no data, no auth.
    fn ping(z: u64) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&5i32.to_be_bytes());
        b.extend_from_slice(&z.to_be_bytes());
        b.extend_from_slice(&(-1i32).to_be_bytes());
        b.extend_from_slice(&(-1i32).to_be_bytes());
        b
    }

    async fn settle(tracer: &Tracer, want: usize) -> TracePage {
        for _ in 0..200 {
            let page = tracer.page(Some(1), 10_000);
            if page.events.len() >= want {
                return page;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        tracer.page(Some(1), 10_000)
    }

    #[tokio::test]
    async fn forwarded_chunks_become_events_with_their_link_and_size() {
        let tracer = Arc::new(Tracer::new(100));
        let (mut up, _down) = tracer.connection(flow());
        let up = up.as_mut().unwrap();
        let two: Vec<u8> = [ping(7), ping(8)].concat();
        up.offer(two[..10].to_vec());
        up.offer(two[10..].to_vec());
        let page = settle(&tracer, 2).await;
        let msgs: Vec<(String, Option<u64>, usize)> = (page.events.iter())
            .map(|e| (e.msg.clone(), e.zxid.map(|z| z.0), e.size))
            .collect();
        assert_eq!(msgs, vec![("PING".into(), Some(7), 20), ("PING".into(), Some(8), 20)]);
        assert_eq!(
            (page.events[0].from, page.events[0].to),
            (Endpoint::Node(2), Endpoint::Node(1))
        );
    }

    #[tokio::test]
    async fn a_full_queue_drops_counts_and_gives_the_connection_up_without_waiting() {
        let tracer = Arc::new(Tracer::new(100));
        let (mut up, _down) = tracer.connection(flow());
        let up = up.as_mut().unwrap();
        // A current-thread runtime: the decoder task cannot run while this loop offers, so the queue fills.
        let t0 = std::time::Instant::now();
        for i in 0..(QUEUE as u64 + 10) {
            up.offer(ping(i));
        }
        assert!(t0.elapsed() < std::time::Duration::from_millis(200), "offering waited");
        let page = settle(&tracer, QUEUE + 1).await;
        assert_eq!(page.dropped_chunks, 1, "one drop, then the connection is given up");
        assert_eq!(page.gave_up, 1);
        let gave: Vec<&TraceEvent> = page.events.iter().filter(|e| e.msg == GAVE_UP).collect();
        assert!(gave[0].note.as_deref().unwrap().contains("fell behind"), "{gave:?}");
        // What was queued before the drop is still read.
        assert_eq!(page.events.iter().filter(|e| e.msg == "PING").count(), QUEUE);
    }

    #[tokio::test]
    async fn an_undecodable_stream_is_given_up_and_said() {
        let tracer = Arc::new(Tracer::new(100));
        let (mut up, _down) = tracer.connection(flow());
        let up = up.as_mut().unwrap();
        // Type 99 is no QuorumPacket type.
        let mut bad = ping(1);
        bad[3] = 99;
        up.offer(bad);
        let page = settle(&tracer, 1).await;
        assert_eq!(page.events.len(), 1);
        assert_eq!(page.events[0].msg, GAVE_UP);
        assert!(
            page.events[0].note.as_deref().unwrap().contains("stops reading"),
            "{:?}",
            page.events
        );
        // The decoder has gone: later chunks are not offered (the queue is closed) and nothing more is said.
        for _ in 0..5 {
            tokio::task::yield_now().await;
        }
        up.offer(ping(2));
        up.offer(ping(3));
        assert!(up.tx.is_none());
        assert_eq!(tracer.page(Some(1), 100).events.len(), 1);
    }

    #[tokio::test]
    async fn a_tls_connection_is_said_to_be_unreadable() {
        let tracer = Arc::new(Tracer::new(100));
        let (mut up, _down) = tracer.connection(flow());
        up.as_mut().unwrap().offer(vec![0x16, 0x03, 0x01, 0x02, 0x00]);
        let page = settle(&tracer, 1).await;
        assert!(page.events[0].note.as_deref().unwrap().contains("TLS"));
    }
}
