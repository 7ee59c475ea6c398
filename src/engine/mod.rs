//! The engine: everything a test or a command *does* to an ensemble, above the supervisor and below the
//! command line. It holds the faults ([`kill_leader`], [`nemesis`], [`faults`]), the workloads and their
//! histories and checks ([`workload`], [`writer`]), and the one run loop ([`run`]) that `verify`, `chaos` and
//! scenarios share. It never prints, never exits the process and takes no command-line types: it returns
//! typed reports and emits typed [`run::Event`]s, and the caller (`zkdev`'s commands, or a Rust test through
//! [`Ensemble`]) renders them.
//!
//! ```no_run
//! # async fn demo() -> zkdev::error::Result<()> {
//! use zkdev::engine::{Ensemble, Options};
//!
//! let home = std::env::temp_dir().join("zkdev-example");
//! let ensemble = Ensemble::up(Options::new(home).nodes(3).port_offset(20000)).await?;
//! let killed = ensemble.kill_leader(&Default::default()).await?;
//! let status = ensemble.status().await?;
//! assert_ne!(status.leader, Some(killed.old_leader));
//! ensemble.down().await?;
//! # Ok(())
//! # }
//! ```

pub mod boot;
mod ensemble;
mod env;
pub mod faults;
pub mod kill_leader;
pub mod nemesis;
pub mod net;
mod record;
pub mod rolling;
pub mod run;
pub mod sessions;
pub mod smoke;
pub mod spec;
pub mod trace;
pub mod verify;
pub mod wait;
pub mod workload;
pub mod writer;
pub mod zkload;

pub use ensemble::{Ensemble, Options};

/// How long a take-down waits for another one to finish under the quorum guard's lock (a stop's grace is
/// 10 s).
pub const QUORUM_LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(60);
