//! The edge with the operating system: processes (the only place that starts and signals them), ports, the
//! files of a cluster on disk and their lock, a node's zoo.cfg (which ZooKeeper may rewrite), the checks
//! before a start, and Ctrl-C.

pub mod clock;
pub mod faultfs;
pub mod interrupt;
pub mod launch;
pub mod ports;
pub mod power;
pub mod process;
pub mod profile;
pub mod random;
pub mod slots;
pub mod state;
pub mod super_user;
pub mod tls;
pub mod warn;
pub mod zoo_cfg;
