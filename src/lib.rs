//! zkdev: a real Apache ZooKeeper ensemble on one machine.
//!
//! The folders are the layers, bottom to top. `model` is pure and imports only `error`: profile -> spec
//! -> rendered files, the cluster's file layout as paths, installations and status as data, quorum
//! arithmetic, the event timeline, log diagnosis from texts passed in, ZooKeeper's wire format decoded from
//! bytes. `os` (processes, ports, files on disk, clocks) sits on it; `zk` (talking to the servers) and `dist`
//! (finding and installing java and ZooKeeper) sit on `os`; `supervisor`, the long-lived process that owns a
//! cluster's nodes and journal, on those; `engine` is what a command or a Rust test *does* to an ensemble
//! (faults, workloads, checks, the run loop verify, chaos and scenarios share, and the `Ensemble` handle),
//! above the supervisor. `commands` composes everything, one file per subcommand, and alone prints; `output`
//! draws its tables, `cli` is the command line (the only module naming clap), `error` the one error type.
//! `tests/layers.rs` keeps it so.

pub mod cli;
pub mod commands;
pub mod dist;
#[warn(missing_docs)]
pub mod engine;
pub mod error;
pub mod model;
pub mod os;
pub mod output;
pub mod supervisor;
pub mod zk;
