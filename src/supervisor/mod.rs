//! The supervisor: one long-lived zkdev process per cluster that owns the nodes. It spawns every node's JVM
//! as its own child and reaps it (so it knows how each one ended and whether zkdev asked), probes every
//! node each `probe_interval_ms`, keeps the latest view, journals everything that happens, and serves the
//! other commands on a Unix socket. Requests that touch nodes are serialised per node; nobody waits for a
//! cluster-wide lock.
//!
//! The ensemble never depends on it: the JVMs live in sessions of their own, so SIGKILL of the supervisor
//! leaves them serving; every command still works from /proc and the servers' answers, and the next one
//! that needs a supervisor starts a new one, which adopts the running JVMs (it polls those instead of
//! reaping them) and journals that it did.
//!
//! `start` runs it (detach, lock, adopt, bind, serve), `cluster` holds its state of the cluster, `requests`
//! answers the control socket, `nodes` starts, stops, signals and reaps the JVMs, `probe` looks at the
//! ensemble; `journal`, `control` (with `replies`), `links` and `proxy` are its files, protocol and network links; `dashboard`
//! is the live web page it serves on demand.

mod cluster;
pub mod control;
pub mod dashboard;
mod disk;
pub mod journal;
mod lease;
pub mod links;
mod nodes;
mod probe;
pub mod proxy;
pub mod replies;
mod requests;
mod start;
pub mod tap;

pub use start::{detach, run, Record};
