//! zkdev: a real Apache ZooKeeper ensemble on one machine.
//!
//! The folders are the layers. `commands` composes everything below it, one file per subcommand. `model`
//! is pure (profile -> spec -> rendered files, quorum arithmetic, the event timeline, log diagnosis); `os`
//! is the only code that touches processes, ports and files on disk; `zk` talks to the servers; `dist`
//! finds and installs java and ZooKeeper; `supervisor` is the long-lived process that owns a cluster's
//! nodes and journal; `engine` is what a command or a Rust test *does* to an ensemble (faults, workloads,
//! checks, the run loop verify, chaos and scenarios share, and the `Ensemble` handle), above the
//! supervisor and below `commands`. `output` draws tables, `cli` is the command line, `error` the one error type.

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
