//! The control socket's answers: one serde type per request, written by the supervisor and read by the
//! commands (`Supervisor::ask_for`). A field this zkdev does not know (a newer supervisor's) is ignored; a
//! field it needs and does not find is an error that names it, never a default.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::proxy::LiveLink;
use crate::error::{Error, Result};
use crate::model::disk::DiskFault;
use crate::model::links::Rule;
use crate::zk::observe::ClusterStatus;

/// The answer to one kind of request; `OP` is that request's name on the wire (`Request::op`).
pub trait Answer: Serialize + DeserializeOwned {
    const OP: &'static str;

    /// Read the data of a reply to `OP`; a missing or mistyped field is named in the error.
    fn decode(data: serde_json::Value) -> Result<Self> {
        serde_json::from_value(data).map_err(|e| {
            Error::failed(format!(
                "the supervisor's answer to `{}` is not one this zkdev reads ({e}); a supervisor of another \
                 zkdev version may be running: `zkdev down` and `zkdev up` start one of this version",
                Self::OP
            ))
        })
    }

    /// The reply's data as it goes on the wire.
    fn encode(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("replies serialise")
    }
}

macro_rules! answers {
    ($($ty:ident => $op:literal),* $(,)?) => {
        $(impl Answer for $ty {
            const OP: &'static str = $op;
        })*
    };
}

answers! {
    PingReply => "ping",
    StatusReply => "status",
    StartReply => "start",
    StopReply => "stop",
    SignalReply => "signal",
    RecordReply => "record",
    LinksReply => "links",
    SetLinksReply => "set_links",
    DashboardReply => "dashboard",
    DiskReply => "disk",
    PowerCutReply => "power_cut",
    ReloadReply => "reload",
    ShutdownReply => "shutdown",
    TraceReply => "trace",
}

/// `ping`: the supervisor answers, and who it is.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PingReply {
    pub pid: u32,
}

/// `status`: the supervisor's latest view of the ensemble, how old it is and how often it looks.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatusReply {
    pub status: ClusterStatus,
    pub age_ms: u64,
    pub interval_ms: u64,
    pub idle_interval_ms: u64,
    pub pid: u32,
}

/// `start`: the nodes whose JVMs it started, and those that were running already.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StartReply {
    pub started: Vec<u32>,
    pub running: Vec<u32>,
}

/// `stop`: the nodes it stopped, and those that needed SIGKILL after the grace period.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StopReply {
    pub stopped: Vec<u32>,
    pub needed_sigkill: Vec<u32>,
}

/// `signal`: the nodes signalled (those still running as the JVMs zkdev started).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SignalReply {
    pub hit: Vec<u32>,
}

/// `record`: the journal position of the recorded event.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecordReply {
    pub seq: u64,
}

/// `links`: the link rules in force, the live proxied connections, and the proxies that could not listen.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LinksReply {
    pub rules: Vec<Rule>,
    pub links: Vec<LiveLink>,
    pub unbound: Vec<String>,
}

/// `set_links`: the journal event of the change (position, monotonic time) and the rules now in force.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SetLinksReply {
    pub seq: u64,
    pub mono_ms: u64,
    pub rules: Vec<Rule>,
}

/// `dashboard`: where the dashboard listens (with its token), and whether it did already.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DashboardReply {
    pub url: String,
    pub port: u16,
    pub already: bool,
}

/// `trace`: the proxies' trace events from the asked cursor on, the cursor of the next poll, and what the
/// side tap lost (events that left the ring before this poll, dropped chunks, connections given up).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TraceReply {
    pub page: crate::model::trace::TracePage,
}

/// `disk`: the journal event of the fault, the nodes it was set on, and the fault.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DiskReply {
    pub seq: u64,
    pub mono_ms: u64,
    pub nodes: Vec<u32>,
    pub fault: DiskFault,
}

/// `power_cut`: the journal position, the nodes whose JVM was killed, and what each node's files lost.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PowerCutReply {
    pub seq: u64,
    pub killed: Vec<u32>,
    pub cuts: Vec<crate::model::power::NodeCut>,
    pub bytes_lost: u64,
}

/// `reload`: the journal position, the nodes cluster.toml names now, and the stopped ones forgotten.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReloadReply {
    pub seq: u64,
    pub nodes: Vec<u32>,
    pub forgotten: Vec<u32>,
}

/// `shutdown`: as `stop`, for every node; the supervisor exits after answering.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShutdownReply {
    pub stopped: Vec<u32>,
    pub needed_sigkill: Vec<u32>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::links::{Endpoint, Port};
    use serde_json::{json, Value};

    /// `reply` goes on the wire, gains a field a newer supervisor might send, and reads back the same.
    fn round_trip<A: Answer + std::fmt::Debug>(reply: A) {
        let wire = reply.encode();
        let mut newer = wire.clone();
        newer
            .as_object_mut()
            .expect("an object")
            .insert("field_of_a_newer_supervisor".into(), json!({"x": [1, 2]}));
        let back = A::decode(newer).unwrap_or_else(|e| panic!("{}: {e}", A::OP));
        assert_eq!(back.encode(), wire, "{} round-trips", A::OP);
        // Every field is needed: take any one away and the error names it.
        for field in wire.as_object().expect("an object").keys() {
            let mut older = wire.clone();
            older.as_object_mut().expect("an object").remove(field);
            let e = A::decode(older).expect_err(field).to_string();
            assert!(e.contains(&format!("`{field}`")), "{}: {e}", A::OP);
            assert!(e.contains(&format!("`{}`", A::OP)), "{e}");
        }
    }

    #[test]
    fn every_reply_round_trips_with_an_unknown_field_and_names_a_missing_one() {
        round_trip(PingReply { pid: 812 });
        let status: ClusterStatus = serde_json::from_value(json!({
            "cluster": "c", "connect_string": "127.0.0.1:2181", "leader": null, "epoch": null,
            "quorum": {"voters": 1, "voters_up": 0, "needed": 1}, "nodes": []
        }))
        .expect("a status");
        round_trip(StatusReply {
            status,
            age_ms: 40,
            interval_ms: 100,
            idle_interval_ms: 1000,
            pid: 812,
        });
        round_trip(StartReply {
            started: vec![1, 3],
            running: vec![2],
        });
        round_trip(StopReply {
            stopped: vec![2],
            needed_sigkill: vec![],
        });
        round_trip(SignalReply { hit: vec![3] });
        round_trip(RecordReply { seq: 7 });
        let rule = crate::model::links::partition(&[1], &[2], true, "t", 0)
            .pop()
            .expect("a rule");
        round_trip(LinksReply {
            rules: vec![rule.clone()],
            links: vec![LiveLink {
                dialler: Endpoint::Node(1),
                target: Endpoint::Node(2),
                port: Port::Quorum,
                listen: 12882,
                proxy: "127.0.0.1:12882".into(),
                connections: 1,
            }],
            unbound: vec!["port 12181 is taken".into()],
        });
        round_trip(SetLinksReply {
            seq: 9,
            mono_ms: 123,
            rules: vec![rule],
        });
        round_trip(DashboardReply {
            url: "http://127.0.0.1:8900/#t".into(),
            port: 8900,
            already: false,
        });
        round_trip(DiskReply {
            seq: 10,
            mono_ms: 5,
            nodes: vec![2],
            fault: DiskFault::SlowFsync { ms: 200 },
        });
        round_trip(ReloadReply {
            seq: 11,
            nodes: vec![1, 2, 3, 4],
            forgotten: vec![],
        });
        round_trip(ShutdownReply {
            stopped: vec![1, 2, 3],
            needed_sigkill: vec![3],
        });
        round_trip(TraceReply {
            page: crate::model::trace::TraceRing::new(4).since(1, 10),
        });
    }

    #[test]
    fn a_reply_of_the_wrong_shape_says_which_request() {
        let e = StartReply::decode(Value::Null)
            .expect_err("null is no start reply")
            .to_string();
        assert!(e.contains("`start`"), "{e}");
    }
}
