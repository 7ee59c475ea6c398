//! Talking to ZooKeeper: the four-letter words (`probe`), a real client for reads and writes (`client`),
//! the one-shot zkCli helper (`cli_once`), and the ensemble's status put together from both and from /proc (`observe`).

pub mod cli_once;
pub mod client;
pub mod observe;
pub mod probe;
pub mod reconfig;
pub mod session;
pub mod startup;
pub mod wipe;
