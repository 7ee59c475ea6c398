//! The pure core: profiles -> a cluster's spec -> rendered files and exports, the cluster's file layout as
//! path arithmetic, what an installation is, the status types, the quorum arithmetic behind fault guards,
//! verify's seeded fault plans, the event timeline, elections and deaths explained from log texts, and
//! ZooKeeper's wire traffic decoded from bytes handed in (`wire`). Nothing here touches a process, a socket,
//! a file or a clock, and nothing imports a layer above (`tests/layers.rs` checks it): callers read files and
//! clocks and pass the values in.

pub mod cas_register;
pub mod check;
pub mod diagnose;
pub mod disk;
pub mod dist;
pub mod election;
pub mod export;
pub mod fault;
pub mod history_formats;
pub mod layout;
pub mod linearize;
pub mod links;
pub mod membership;
pub mod nemesis;
pub mod power;
pub mod profile;
pub mod render;
pub mod rng;
pub mod server;
pub mod simulate;
pub mod slot;
pub mod span;
pub mod spec;
pub mod status;
pub mod svg;
pub mod timeline;
pub mod trace;
pub mod wire;
pub mod words;
pub mod workload;
pub mod zkfile;
pub mod zkmodel;
