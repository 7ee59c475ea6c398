//! The pure core: profiles -> a cluster's spec -> rendered files and exports, the quorum arithmetic behind
//! fault guards, verify's seeded fault plans, the event timeline, and reading why a node died from its log. Nothing here touches a
//! process, a socket or (except reading a profile file) the disk.

pub mod diagnose;
pub mod disk;
pub mod election;
pub mod export;
pub mod fault;
pub mod linearize;
pub mod links;
pub mod membership;
pub mod nemesis;
pub mod profile;
pub mod render;
pub mod rng;
pub mod server;
pub mod slot;
pub mod span;
pub mod spec;
pub mod svg;
pub mod timeline;
pub mod words;
