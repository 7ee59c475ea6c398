//! What happened to an ensemble, as events: the supervisor's own acts (nodes started, exits with their
//! status, faults and who asked for them) and the transitions between two looks at the ensemble (node
//! process and mode changes, a lost leader, a new leader and how long the ensemble was without one).
//! `Tracker` is pure: fed `ClusterStatus`es with their times. The journal stores these events.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::model::server::Mode;
use crate::model::status::{ClusterStatus, ProcessState};

#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A supervisor took charge of the cluster (`adopted`: running nodes it found; `detail`: how the last
    /// one ended).
    SupervisorStarted,
    /// The supervisor stopped (`down`, or SIGTERM).
    SupervisorStopped,
    /// A command asked for something: a fault, a stop, a start (`action`, `cause`).
    Action,
    /// The supervisor started a node's JVM.
    NodeStarted,
    /// The supervisor found a node's JVM running that it had not started (after a restart).
    NodeAdopted,
    /// A node's JVM ended: `exit_code` or `signal`, `by_zkdev`, and `detail` (the log's last error).
    NodeExited,
    /// A command's result worth keeping (kill-leader's timings...).
    Note,
    /// First look: who leads, at which epoch.
    Initial,
    /// A node's process changed: running, stopped, paused, crashed, unresponsive.
    Process,
    /// A node's mode changed: follower -> looking, looking -> leader...
    Mode,
    /// No node serves as leader any more.
    LeaderLost,
    /// A (new) leader serves; `leaderless_ms` says how long there was none.
    LeaderElected,
}

/// What a `process` or `mode` event says a node went from and to: its process state, or its mode. On disk
/// and in `events --json` it is the bare word (`"stopped"`, `"leader"`, `"read-only"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(untagged)]
pub enum NodeState {
    Process(ProcessState),
    Mode(Mode),
}

impl NodeState {
    pub fn as_str(self) -> &'static str {
        match self {
            NodeState::Process(p) => p.as_str(),
            NodeState::Mode(m) => m.as_str(),
        }
    }
}

impl std::fmt::Display for NodeState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an `action` event did. On disk and in `events --json` it is the word (`"kill"`, `"expire-session"`);
/// a word this zkdev does not know (a newer one's) is kept as it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(from = "String", into = "String")]
pub enum Action {
    Start,
    Stop,
    Kill,
    Terminate,
    Pause,
    Resume,
    /// Link faults: `zkdev isolate`, `partition`, `link`, `heal`, and the supervisor restoring saved rules.
    Isolate,
    Partition,
    Link,
    Heal,
    Links,
    Disk,
    Dashboard,
    Reconfig,
    ExpireSession,
    /// Disk damage: `zkdev disk --power-cut`, `--corrupt`, `--truncate`.
    PowerCut,
    Corrupt,
    Truncate,
    /// Any other word (a nemesis fault, a newer zkdev's action).
    Other(String),
}

impl Action {
    const KNOWN: [(Action, &'static str); 18] = [
        (Action::Start, "start"),
        (Action::Stop, "stop"),
        (Action::Kill, "kill"),
        (Action::Terminate, "terminate"),
        (Action::Pause, "pause"),
        (Action::Resume, "resume"),
        (Action::Isolate, "isolate"),
        (Action::Partition, "partition"),
        (Action::Link, "link"),
        (Action::Heal, "heal"),
        (Action::Links, "links"),
        (Action::Disk, "disk"),
        (Action::Dashboard, "dashboard"),
        (Action::Reconfig, "reconfig"),
        (Action::ExpireSession, "expire-session"),
        (Action::PowerCut, "power-cut"),
        (Action::Corrupt, "corrupt"),
        (Action::Truncate, "truncate"),
    ];

    pub fn as_str(&self) -> &str {
        match self {
            Action::Other(s) => s,
            known => Action::KNOWN
                .iter()
                .find(|(a, _)| a == known)
                .map_or("", |(_, word)| word),
        }
    }
}

impl From<&str> for Action {
    fn from(word: &str) -> Action {
        Action::KNOWN
            .iter()
            .find(|(_, w)| *w == word)
            .map_or_else(|| Action::Other(word.to_string()), |(a, _)| a.clone())
    }
}

impl From<String> for Action {
    fn from(word: String) -> Action {
        Action::from(word.as_str())
    }
}

impl From<Action> for String {
    fn from(a: Action) -> String {
        a.as_str().to_string()
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Event {
    /// Position in the journal, from 1; 0 for an event not journalled (watch without a supervisor).
    #[serde(default)]
    pub seq: u64,
    /// Milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// Milliseconds on the monotonic clock (since boot): durations between events, immune to clock steps.
    #[serde(default)]
    pub mono_ms: u64,
    /// `HH:MM:SS.mmm` UTC, for people.
    pub time: String,
    pub kind: Kind,
    pub node: Option<u32>,
    pub from: Option<NodeState>,
    pub to: Option<NodeState>,
    pub leader: Option<u32>,
    pub epoch: Option<u32>,
    pub leaderless_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// `SIGKILL`, `SIGTERM`...: the signal that ended a node, or the one an action sends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<String>,
    /// For an exit: did zkdev send the signal or ask for the stop? None when nobody can know (a node the
    /// supervisor adopted and so cannot reap).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by_zkdev: Option<bool>,
    /// Which command asked (`zkdev kill-leader`...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
    /// For an action: stop, start, kill, pause, resume, a link or disk fault...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<Action>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    pub message: String,
}

impl Event {
    /// An event of `kind` at `now`, with only its message; callers fill in what applies. (`Event::new`, in
    /// `os::clock`, reads the clocks for it.)
    pub fn at(kind: Kind, message: impl Into<String>, now: Stamp) -> Event {
        Event {
            seq: 0,
            at_ms: now.at_ms,
            mono_ms: now.mono_ms,
            time: clock(now.at_ms),
            kind,
            node: None,
            from: None,
            to: None,
            leader: None,
            epoch: None,
            leaderless_ms: None,
            pid: None,
            exit_code: None,
            signal: None,
            by_zkdev: None,
            cause: None,
            action: None,
            nodes: Vec::new(),
            detail: None,
            message: message.into(),
        }
    }
}

/// A moment on both clocks: Unix time in milliseconds and CLOCK_MONOTONIC milliseconds (the same clock in
/// every process of this boot). The caller reads them (`os::clock::now`); nothing in model reads a clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    pub at_ms: u64,
    pub mono_ms: u64,
}

impl Stamp {
    /// Unix time `at_ms`, no monotonic reading (0): for tests and replays.
    pub fn at(at_ms: u64) -> Stamp {
        Stamp { at_ms, mono_ms: 0 }
    }
}

/// `HH:MM:SS.mmm` (UTC) of a Unix time in milliseconds.
pub fn clock(at_ms: u64) -> String {
    let day_ms = at_ms % 86_400_000;
    let (h, m, s, ms) = (
        day_ms / 3_600_000,
        day_ms / 60_000 % 60,
        day_ms / 1000 % 60,
        day_ms % 1000,
    );
    format!("{h:02}:{m:02}:{s:02}.{ms:03}")
}

#[derive(Default)]
pub struct Tracker {
    seen: bool,
    nodes: BTreeMap<u32, (ProcessState, Option<Mode>)>,
    leader: Option<(u32, Option<u32>)>,
    leaderless_since: Option<u64>,
    /// No leader since the first look (a start-up, not an outage): said differently.
    leaderless_from_first_look: bool,
}

impl Tracker {
    pub fn observe(&mut self, s: &ClusterStatus, now: Stamp) -> Vec<Event> {
        let at_ms = now.at_ms;
        let ev = |kind, node, from: Option<NodeState>, to: Option<NodeState>, message: String| {
            let mut e = Event::at(kind, message, now);
            e.node = node;
            e.from = from;
            e.to = to;
            e.leader = s.leader;
            e.epoch = s.epoch;
            e
        };
        let mut out = Vec::new();
        let leader = s.leader.map(|l| (l, s.epoch));
        if !self.seen {
            self.seen = true;
            let msg = match leader {
                Some((l, Some(e))) => format!("leader {l} (epoch {e})"),
                _ => {
                    self.leaderless_since = Some(at_ms);
                    self.leaderless_from_first_look = true;
                    "no serving leader".to_string()
                }
            };
            out.push(ev(Kind::Initial, None, None, None, msg));
        } else {
            for n in &s.nodes {
                let Some((proc_before, mode_before)) = self.nodes.get(&n.id) else {
                    continue;
                };
                if *proc_before != n.process() {
                    out.push(ev(
                        Kind::Process,
                        Some(n.id),
                        Some(NodeState::Process(*proc_before)),
                        Some(NodeState::Process(n.process())),
                        format!("node {} {} -> {}", n.id, proc_before.as_str(), n.process().as_str()),
                    ));
                }
                if *mode_before != n.mode() && (n.mode().is_some() || mode_before.is_some()) {
                    // No mode: "(not running)" for a node that does not run, "(no answer)" for one that runs but
                    // is silent.
                    let running = n.process() == ProcessState::Running;
                    let show = |m: &Option<Mode>| match m {
                        Some(m) => m.to_string(),
                        None if running => "(no answer)".into(),
                        None => "(not running)".into(),
                    };
                    out.push(ev(
                        Kind::Mode,
                        Some(n.id),
                        mode_before.map(NodeState::Mode),
                        n.mode().map(NodeState::Mode),
                        format!("node {} {} -> {}", n.id, show(mode_before), show(&n.mode())),
                    ));
                }
            }
            if leader != self.leader {
                if let Some((old, old_epoch)) = self.leader {
                    if leader.is_none() {
                        self.leaderless_since = Some(at_ms);
                        self.leaderless_from_first_look = false;
                        let e = old_epoch.map(|e| format!(", epoch {e}")).unwrap_or_default();
                        out.push(ev(
                            Kind::LeaderLost,
                            Some(old),
                            None,
                            None,
                            format!("no serving leader (was {old}{e})"),
                        ));
                    }
                }
                if let Some((new, epoch)) = leader {
                    let gap = self.leaderless_since.take().map(|t| at_ms.saturating_sub(t));
                    let e = epoch.map(|e| format!(" (epoch {e})")).unwrap_or_default();
                    let since_start = std::mem::take(&mut self.leaderless_from_first_look);
                    let after = match gap {
                        Some(g) if since_start => format!(", {g} ms after the first look found none"),
                        Some(g) => format!(" after {g} ms without a leader"),
                        None => String::new(),
                    };
                    let mut event = ev(
                        Kind::LeaderElected,
                        Some(new),
                        None,
                        None,
                        format!("new leader {new}{e}{after}"),
                    );
                    event.leaderless_ms = gap;
                    out.push(event);
                }
            }
        }
        self.leader = leader;
        self.nodes = s.nodes.iter().map(|n| (n.id, (n.process(), n.mode()))).collect();
        out
    }

    /// The supervisor reaped node `id` at `now`: if it was the leader, the ensemble is leaderless from
    /// that moment (not from the next look, up to one probe interval later).
    pub fn node_gone(&mut self, id: u32, now: Stamp) -> Option<Event> {
        let at_ms = now.at_ms;
        let (old, old_epoch) = self.leader.filter(|(l, _)| *l == id)?;
        self.leader = None;
        self.leaderless_since = Some(at_ms);
        self.leaderless_from_first_look = false;
        let e = old_epoch.map(|e| format!(", epoch {e}")).unwrap_or_default();
        let mut ev = Event::at(Kind::LeaderLost, format!("no serving leader (was {old}{e})"), now);
        ev.node = Some(old);
        ev.epoch = old_epoch;
        Some(ev)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::spec::Role;
    use crate::model::status::{NodeStatus, Quorum};

    fn status(nodes: &[(u32, ProcessState, Option<&str>, u32)]) -> ClusterStatus {
        let nodes: Vec<NodeStatus> = nodes
            .iter()
            .map(|(id, p, mode, epoch)| {
                let mode = mode.map(|m| m.parse::<Mode>().unwrap());
                NodeStatus::fixture(*id, Role::Participant, *p, mode, u64::from(*epoch) << 32)
            })
            .collect();
        let leaders: Vec<&NodeStatus> = nodes.iter().filter(|n| n.is_leader()).collect();
        let (leader, epoch) = match leaders.as_slice() {
            [l] => (Some(l.id), l.zxid().map(|z| z.epoch())),
            _ => (None, None),
        };
        ClusterStatus {
            cluster: "t".into(),
            connect_string: String::new(),
            leader,
            epoch,
            quorum: Quorum {
                voters: 3,
                voters_up: 3,
                needed: 2,
            },
            nodes,
            source: None,
            age_ms: None,
            supervisor: None,
            links: None,
        }
    }

    #[test]
    fn a_leader_kill_reads_as_loss_looking_and_election() {
        use ProcessState::*;
        let mut t = Tracker::default();
        let e = t.observe(
            &status(&[(1, Running, Some("follower"), 1), (2, Running, Some("leader"), 1)]),
            Stamp::at(1000),
        );
        assert_eq!(e[0].kind, Kind::Initial);
        assert!(e[0].message.contains("leader 2 (epoch 1)"));
        let e = t.observe(
            &status(&[(1, Running, Some("looking"), 1), (2, Crashed, None, 1)]),
            Stamp::at(1100),
        );
        let kinds: Vec<_> = e.iter().map(|e| e.kind.clone()).collect();
        assert_eq!(kinds, vec![Kind::Mode, Kind::Process, Kind::Mode, Kind::LeaderLost]);
        assert_eq!(e[0].message, "node 1 follower -> looking");
        assert_eq!(e[3].message, "no serving leader (was 2, epoch 1)");
        let e = t.observe(
            &status(&[(1, Running, Some("leader"), 2), (2, Crashed, None, 1)]),
            Stamp::at(1512),
        );
        let last = e.last().unwrap();
        assert_eq!(last.kind, Kind::LeaderElected);
        assert_eq!(last.message, "new leader 1 (epoch 2) after 412 ms without a leader");
        assert_eq!(last.leaderless_ms, Some(412));
        assert!(t
            .observe(
                &status(&[(1, Running, Some("leader"), 2), (2, Crashed, None, 1)]),
                Stamp::at(1600)
            )
            .is_empty());
    }

    #[test]
    fn a_start_up_reads_as_a_first_leader_not_an_outage() {
        use ProcessState::*;
        let mut t = Tracker::default();
        t.observe(
            &status(&[(1, Running, Some("looking"), 0), (2, Running, Some("looking"), 0)]),
            Stamp::at(1000),
        );
        let e = t.observe(
            &status(&[(1, Running, Some("follower"), 1), (2, Running, Some("leader"), 1)]),
            Stamp::at(3000),
        );
        let last = e.last().unwrap();
        assert_eq!(last.kind, Kind::LeaderElected);
        assert_eq!(
            last.message,
            "new leader 2 (epoch 1), 2000 ms after the first look found none"
        );
        // A later loss is an outage again.
        t.observe(
            &status(&[(1, Running, Some("looking"), 1), (2, Crashed, None, 1)]),
            Stamp::at(4000),
        );
        let e = t.observe(
            &status(&[(1, Running, Some("leader"), 2), (2, Crashed, None, 1)]),
            Stamp::at(4300),
        );
        assert_eq!(
            e.last().unwrap().message,
            "new leader 1 (epoch 2) after 300 ms without a leader"
        );
    }

    #[test]
    fn journal_lines_read_typed_and_write_back_byte_for_byte() {
        // As the journal and `events --json` have always had them: states and actions are bare words.
        let lines = [
            r#"{"seq":3,"at_ms":1000,"mono_ms":5,"time":"00:00:01.000","kind":"process","node":2,"from":"running","to":"crashed","leader":1,"epoch":1,"leaderless_ms":null,"message":"node 2 running -> crashed"}"#,
            r#"{"seq":4,"at_ms":1000,"mono_ms":5,"time":"00:00:01.000","kind":"mode","node":1,"from":"read-only","to":"leader","leader":1,"epoch":2,"leaderless_ms":null,"message":"m"}"#,
            r#"{"seq":5,"at_ms":1000,"mono_ms":5,"time":"00:00:01.000","kind":"action","node":null,"from":null,"to":null,"leader":null,"epoch":null,"leaderless_ms":null,"cause":"zkdev sessions","action":"expire-session","message":"m"}"#,
            r#"{"seq":6,"at_ms":1000,"mono_ms":5,"time":"00:00:01.000","kind":"action","node":3,"from":null,"to":null,"leader":null,"epoch":null,"leaderless_ms":null,"signal":"SIGKILL","action":"kill","nodes":[3],"message":"m"}"#,
            r#"{"seq":7,"at_ms":1000,"mono_ms":5,"time":"00:00:01.000","kind":"action","node":null,"from":null,"to":null,"leader":null,"epoch":null,"leaderless_ms":null,"action":"a-newer-fault","message":"m"}"#,
        ];
        let events: Vec<Event> = lines
            .iter()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
            .collect();
        assert_eq!(events[0].to, Some(NodeState::Process(ProcessState::Crashed)));
        assert_eq!(events[1].from, Some(NodeState::Mode(Mode::ReadOnly)));
        assert_eq!(events[1].to, Some(NodeState::Mode(Mode::Leader)));
        assert_eq!(events[2].action, Some(Action::ExpireSession));
        assert_eq!(events[3].action, Some(Action::Kill));
        assert_eq!(events[4].action, Some(Action::Other("a-newer-fault".into())));
        for (line, e) in lines.iter().zip(&events) {
            assert_eq!(&serde_json::to_string(e).unwrap(), line);
        }
        // Every known action is its own word both ways.
        for (a, word) in Action::KNOWN {
            assert_eq!(Action::from(word), a);
            assert_eq!(a.to_string(), word);
        }
    }

    #[test]
    fn clock_is_utc_time_of_day() {
        assert_eq!(clock(0), "00:00:00.000");
        assert_eq!(clock(86_400_000 + 3_723_045), "01:02:03.045");
    }
}
