//! zkdev: a real Apache ZooKeeper ensemble on one machine.
//!
//! `commands` composes the modules below it; each of them does one thing:
//! `profile` -> `spec` -> `render` is pure, `dist` finds java and ZooKeeper, `process` is the only place that
//! starts and signals, `state` owns the files on disk, `probe` asks servers, `observe` turns all of that into
//! a `ClusterStatus`, `diagnose` reads why a node died from its log, `output` prints it.

pub mod cds;
pub mod cli;
pub mod commands;
pub mod diagnose;
pub mod dist;
pub mod error;
pub mod export;
pub mod fault;
pub mod fetch;
pub mod interrupt;
pub mod launch;
pub mod observe;
pub mod output;
pub mod ports;
pub mod probe;
pub mod process;
pub mod profile;
pub mod render;
pub mod spec;
pub mod state;
pub mod supervisor;
pub mod timeline;
pub mod zk;
