//! Claiming a port slot (`zkdev up --slot auto|N`) so that concurrent `up`s, each with its own --home, never
//! pick the same ports. The claims live outside every home, in a directory of the user's own
//! (`$XDG_RUNTIME_DIR/zkdev-slots-<uid>`, else `<temp dir>/zkdev-slots-<uid>`), under one lock file there:
//! a slot is taken while its claim names a live `up` or a cluster directory whose spec records that slot;
//! a free one must also pass a bind of every port it would use.

use std::fs::{self, File, OpenOptions};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::slot::{Slot, SlotChoice, SLOTS};

/// Where the user's slot claims and their lock live.
pub fn claims_dir() -> PathBuf {
    let uid = my_uid();
    let base = std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .filter(|d| d.is_dir())
        .unwrap_or_else(std::env::temp_dir);
    base.join(format!("zkdev-slots-{uid}"))
}

/// This process's user id (the owner of /proc/self).
fn my_uid() -> u32 {
    use std::os::unix::fs::MetadataExt;
    fs::metadata("/proc/self").map_or(0, |m| m.uid())
}

/// One claim file: who took the slot, for which cluster directory.
#[derive(Debug, Serialize, Deserialize)]
struct ClaimRecord {
    cluster_dir: PathBuf,
    pid: i32,
    start_ticks: u64,
}

/// Held while the slots are looked at and one is claimed.
pub struct SlotsLock {
    _held: Flock<File>,
}

async fn lock(dir: &Path) -> Result<SlotsLock> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    if !dir.exists() {
        let _ = fs::DirBuilder::new().mode(0o700).create(dir);
    }
    let meta = fs::symlink_metadata(dir).map_err(|e| Error::io("cannot create", dir, e))?;
    if !meta.is_dir() || meta.uid() != my_uid() {
        return Err(Error::env(format!(
            "{} is not a directory of this user, so zkdev cannot keep its port-slot claims there; remove it, or \
             set XDG_RUNTIME_DIR to a directory of your own",
            dir.display()
        )));
    }
    let path = dir.join("lock");
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| Error::io("cannot open lock file", &path, e))?;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(held) => return Ok(SlotsLock { _held: held }),
            Err((f, _)) => file = f,
        }
        if Instant::now() >= deadline {
            return Err(Error::failed(format!(
                "another zkdev has held the port-slot lock {} for 60 s; wait for it and retry",
                path.display()
            )));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn claim_file(dir: &Path, index: u16) -> PathBuf {
    dir.join(format!("slot-{index}"))
}

/// Who holds slot `index` now, if anyone: a live `up` that claimed it, or the cluster it was claimed for
/// (its directory exists and its spec records the slot).
fn holder(dir: &Path, index: u16, ours: &Path) -> Option<PathBuf> {
    let text = fs::read_to_string(claim_file(dir, index)).ok()?;
    let claim: ClaimRecord = serde_json::from_str(&text).ok()?;
    if claim.cluster_dir == ours {
        return None;
    }
    let claimer_alive = crate::os::process::proc_stat(claim.pid).is_some_and(|s| s.start_ticks == claim.start_ticks);
    let spec_holds = fs::read_to_string(claim.cluster_dir.join("cluster.toml"))
        .ok()
        .and_then(|t| crate::model::spec::ClusterSpec::from_toml(&t, "").ok())
        .is_some_and(|s| s.slot.map(|s| s.index) == Some(index));
    (claimer_alive || spec_holds).then_some(claim.cluster_dir)
}

/// The first port of `ports` that cannot be bound on 127.0.0.1 now.
fn taken_port(ports: &[(u16, String)]) -> Option<&(u16, String)> {
    ports
        .iter()
        .find(|(p, _)| std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, *p)).is_err())
}

/// Claim a slot for the cluster in `cluster_dir`. `ports_of(slot)` lists every port a cluster in that slot
/// would use (with what each is, for messages). The claim outlives this process as long as the cluster's
/// spec records the slot; `up` writes the spec while the claim's process is alive.
pub async fn claim(
    choice: SlotChoice,
    cluster_dir: &Path,
    ports_of: impl Fn(Slot) -> Result<Vec<(u16, String)>>,
) -> Result<Slot> {
    let dir = claims_dir();
    let _lock = lock(&dir).await?;
    let candidates: Vec<u16> = match choice {
        SlotChoice::Auto => (0..SLOTS).collect(),
        SlotChoice::Index(n) => vec![n],
    };
    let mut busy = Vec::new();
    for index in candidates {
        let slot = Slot::new(index);
        if let Some(other) = holder(&dir, index, cluster_dir) {
            busy.push(format!("slot {index} belongs to {}", other.display()));
            continue;
        }
        let ports = ports_of(slot)?;
        if let Some((port, what)) = taken_port(&ports) {
            busy.push(format!("slot {index}: port {port} ({what}) is in use"));
            continue;
        }
        let me = std::process::id() as i32;
        let record = ClaimRecord {
            cluster_dir: cluster_dir.to_path_buf(),
            pid: me,
            start_ticks: crate::os::process::proc_stat(me).map_or(0, |s| s.start_ticks),
        };
        crate::os::state::write_atomic(
            &claim_file(&dir, index),
            serde_json::to_string(&record).expect("claims serialise").as_bytes(),
        )?;
        return Ok(slot);
    }
    Err(match choice {
        SlotChoice::Index(n) => Error::env(format!(
            "--slot {n} is not free: {}; pick another with --slot auto",
            busy.join("; ")
        )),
        SlotChoice::Auto => Error::env(format!(
            "--slot auto: all {SLOTS} port slots are taken (claims in {}); the first: {}; remove clusters you no \
             longer need with `zkdev down --purge`",
            dir.display(),
            busy.first().map_or("none", String::as_str)
        )),
    })
}
