//! What every workload records: one operation's outcome and record, and a client's log of them (kept apart
//! from the workloads so that each workload module uses them without importing another).

use serde::Serialize;

use crate::model::linearize;
use crate::model::zkmodel::ZkOp;

/// How an operation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// The operation took effect.
    Ok,
    /// Did not take effect (refused, or never sent).
    Fail,
    /// No answer: may or may not have taken effect.
    Unknown,
}

/// One recorded operation, whatever the workload.
#[derive(Debug, Clone, Serialize)]
pub struct Record {
    /// The record's number in the history.
    pub id: usize,
    /// The client that ran it.
    pub client: u32,
    /// read, cas, create, enqueue, dequeue
    pub f: &'static str,
    /// The znode (or register) it was about.
    pub key: String,
    /// Microseconds from the start of the workload.
    pub call_us: u64,
    /// When the answer came (None: no answer, the outcome is unknown).
    pub ret_us: Option<u64>,
    /// Unknown outcomes: when the client stopped waiting (an error, or its timeout).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gave_up_us: Option<u64>,
    /// How it ended.
    pub outcome: Outcome,
    /// What was written or read: `7@3` (value 7, version 3), a znode name, an item.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub value: String,
    /// Register CASes: the expected version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expect: Option<i32>,
    /// The client's error, when it failed or its outcome is unknown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A client's view: the records it made, its register operations for the checker, its ZooKeeper
/// operations (the zk workload).
#[derive(Debug, Default)]
pub(super) struct ClientLog {
    pub(super) records: Vec<Record>,
    pub(super) register: Vec<linearize::Op>,
    pub(super) zk: Vec<ZkOp>,
}
