//! Kill the leader: find it by asking the servers, signal it through the supervisor (under the quorum
//! guard), and time every phase of the re-election; with `restart`, bring the old leader back and time its
//! rejoin. `zkdev kill-leader`, verify's kills and the nemesis's `kill` all come here.

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::model::fault;
use crate::model::server::Mode;
use crate::model::spec::ClusterSpec;
use crate::os::state::ClusterPaths;
use crate::supervisor::control::{Request, Sig, Supervisor};
use crate::zk::observe::{self, ClusterStatus};

/// Which signal kills the leader.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Signal {
    /// SIGKILL: the process vanishes at once, as in a crash.
    #[default]
    Kill,
    /// SIGTERM: ZooKeeper shuts down.
    Term,
}

/// How to kill the leader.
#[derive(Debug, Clone)]
pub struct KillLeader {
    /// SIGKILL (a crash) or SIGTERM (a clean shutdown).
    pub signal: Signal,
    /// Kill even when the survivors cannot form a quorum (no leader can then be elected).
    pub force: bool,
    /// Start the old leader again afterwards and wait until every node serves.
    pub restart: bool,
    /// How long to wait for a new leader (and, with `restart`, for the rejoin).
    pub timeout: Duration,
}

impl Default for KillLeader {
    /// SIGKILL, guarded, no restart, 30 s.
    fn default() -> Self {
        KillLeader {
            signal: Signal::Kill,
            force: false,
            restart: false,
            timeout: Duration::from_secs(30),
        }
    }
}

/// What a leader kill did and how long each phase of the re-election took.
#[derive(Debug, Clone, Serialize)]
pub struct KillReport {
    /// The node that led.
    pub old_leader: u32,
    /// Its JVM's pid.
    pub old_pid: i32,
    /// The epoch it led in.
    pub old_epoch: u32,
    /// The signal sent, by name (`SIGKILL`).
    pub signal: &'static str,
    /// The node leading afterwards, once seen.
    pub new_leader: Option<u32>,
    /// Its epoch (higher than `old_epoch`).
    pub new_epoch: Option<u32>,
    /// Signal sent -> first surviving node seen not serving (it noticed the leader was gone).
    pub noticed_ms: Option<u64>,
    /// Signal sent -> a new leader serving. Writes are impossible for this long.
    pub new_leader_ms: Option<u64>,
    /// Signal sent -> every surviving node serving.
    pub all_serving_ms: Option<u64>,
    /// With --restart: the old leader started again -> serving again (and in which mode).
    pub rejoin_ms: Option<u64>,
    /// The mode the old leader serves in after the rejoin.
    pub rejoined_as: Option<Mode>,
    /// False when --force killed the last leader a quorum could have: no leader until voters return.
    pub quorum_left: bool,
}

/// Kill the leader through the supervisor and time the re-election (and, with `restart`, the old leader's
/// rejoin); the result goes into the journal too, with `cause` (the command line that asked). Returns the
/// report and the ensemble as it was at the end.
pub async fn kill_leader(
    sup: &Supervisor,
    cause: &str,
    spec: &ClusterSpec,
    paths: &ClusterPaths,
    options: &KillLeader,
) -> Result<(KillReport, ClusterStatus)> {
    let KillLeader {
        signal,
        force,
        restart,
        timeout,
    } = *options;
    // The quorum guard's lock, from the look the decision is taken on until the leader has exited (see
    // `node::run`).
    let quorum_lock = paths.quorum_lock(super::QUORUM_LOCK_WAIT).await?;
    let before = observe::gather(spec, paths, &paths.load_state()?).await;
    let leaders = before.leaders();
    let [leader] = leaders.as_slice() else {
        let q = &before.quorum;
        let why = if leaders.len() > 1 {
            "several nodes claim to lead".to_string()
        } else if q.voters_up < q.needed {
            format!(
                "no node leads right now: {} of {} {} up and a quorum needs {}, so none can be elected; \
                 start voters again with `zkdev up`",
                q.voters_up,
                crate::model::words::count(q.voters, "voter"),
                if q.voters_up == 1 { "is" } else { "are" },
                q.needed
            )
        } else {
            "no node leads right now (an election may be under way; `zkdev wait` waits for one)".to_string()
        };
        return Err(Error::failed(format!(
            "cannot kill the leader: {why}; see `zkdev status`"
        )));
    };
    let (old, old_pid, old_epoch) = (
        leader.id,
        leader.pid().expect("a serving node has a pid"),
        leader.zxid().map_or(0, |z| z.epoch()),
    );
    // The voters ZooKeeper committed count, also after a `reconfig` made with another client.
    let committed = observe::with_committed_voters(&before, spec, paths);
    let quorum = fault::guard(&committed, &[old], &format!("kill leader {old}"), force)?;

    let (sig, sig_name) = match signal {
        Signal::Kill => (Sig::Kill, "SIGKILL"),
        Signal::Term => (Sig::Term, "SIGTERM"),
    };
    let t0 = Instant::now();
    let answer = sup
        .ask_for::<crate::supervisor::replies::SignalReply>(
            Request::Signal {
                ids: vec![old],
                signal: sig,
                cause: cause.to_string(),
            },
            Duration::from_secs(90),
        )
        .await?;
    if answer.hit.is_empty() {
        return Err(Error::failed(format!(
            "leader {old} (pid {old_pid}) is no longer the JVM zkdev started; nothing was signalled. See `zkdev status`"
        )));
    }
    drop(quorum_lock);

    let mut report = KillReport {
        old_leader: old,
        old_pid,
        old_epoch,
        signal: sig_name,
        new_leader: None,
        new_epoch: None,
        noticed_ms: None,
        new_leader_ms: None,
        all_serving_ms: None,
        rejoin_ms: None,
        rejoined_as: None,
        quorum_left: quorum.holds(),
    };

    if !quorum.holds() {
        let after = observe::gather(spec, paths, &paths.load_state()?).await;
        return Ok((report, after));
    }

    let ms = |d: Duration| d.as_millis() as u64;
    let result = observe::wait_until(
        spec,
        paths,
        timeout,
        |s| {
            let elapsed = t0.elapsed();
            if report.noticed_ms.is_none() && s.nodes.iter().any(|n| n.id != old && !n.serving()) {
                report.noticed_ms = Some(ms(elapsed));
            }
            let new = s.leader.filter(|l| *l != old && s.epoch > Some(old_epoch));
            if report.new_leader_ms.is_none() && new.is_some() {
                report.new_leader_ms = Some(ms(elapsed));
                report.new_leader = new;
                report.new_epoch = s.epoch;
            }
            let survivors_serving = s.nodes.iter().filter(|n| n.id != old).all(|n| n.serving());
            if new.is_some() && survivors_serving {
                report.all_serving_ms = Some(ms(elapsed));
                return true;
            }
            false
        },
        |_| {},
    )
    .await;
    let mut after = match result {
        Ok(after) => after,
        Err((_, after)) => {
            return Err(Error::failed(format!(
                "leader {old} was killed but no new leader with a higher epoch served within {}; {}",
                crate::model::span::secs(timeout),
                crate::model::status::summary_line(&after)
            )))
        }
    };

    if restart {
        let t1 = Instant::now();
        sup.ask_for::<crate::supervisor::replies::StartReply>(
            Request::Start {
                ids: vec![old],
                cause: cause.to_string(),
            },
            Duration::from_secs(60),
        )
        .await?;
        match observe::wait_until(spec, paths, timeout, |s| s.healthy(), |_| {}).await {
            Ok(s) => {
                report.rejoin_ms = Some(ms(t1.elapsed()));
                report.rejoined_as = s.node(old).and_then(|n| n.mode());
                after = s;
            }
            Err((_, s)) => {
                return Err(Error::failed(format!(
                    "node {old} was started again but the ensemble was not all serving within {}; {}",
                    crate::model::span::secs(timeout),
                    crate::model::status::summary_line(&s)
                )))
            }
        }
    }
    let mut note = format!(
        "kill-leader: leader {old} (epoch {old_epoch}) killed with {sig_name}; {}",
        new_leader_phrase(report.new_leader, report.new_epoch, report.new_leader_ms)
    );
    if let Some(ms) = report.rejoin_ms {
        note.push_str(&format!("; node {old} rejoined after {ms} ms"));
    }
    let _ = sup
        .ask_for::<crate::supervisor::replies::RecordReply>(
            Request::Record {
                message: note,
                cause: cause.to_string(),
                action: None,
            },
            Duration::from_secs(5),
        )
        .await;
    Ok((report, after))
}

/// "new leader 2 (epoch 3) serving after 412 ms", with what is known: "no new leader seen" when none.
pub fn new_leader_phrase(leader: Option<u32>, epoch: Option<u32>, ms: Option<u64>) -> String {
    let Some(l) = leader else {
        return "no new leader seen".to_string();
    };
    let epoch = epoch.map_or(String::new(), |e| format!(" (epoch {e})"));
    let after = ms.map_or(String::new(), |m| format!(" serving after {m} ms"));
    format!("new leader {l}{epoch}{after}")
}

#[cfg(test)]
mod phrase_tests {
    #[test]
    fn a_missing_leader_is_said_in_words() {
        assert_eq!(
            super::new_leader_phrase(Some(2), Some(3), Some(412)),
            "new leader 2 (epoch 3) serving after 412 ms"
        );
        assert_eq!(super::new_leader_phrase(None, None, None), "no new leader seen");
        assert!(!super::new_leader_phrase(Some(2), None, None).contains('-'));
    }
}
