//! `up --reconfig` and `zkdev add | remove | promote | demote`: the membership changes while the ensemble
//! runs, with a writer (`zkdev verify`) going throughout whose every acknowledged write is checked on every
//! node afterwards. Each change is checked by asking the servers themselves (`conf`, `srvr`).

mod common;

use std::collections::BTreeMap;
use std::io::Read;
use std::time::Duration;

use common::*;
use serde_json::Value;

/// What a server says it has committed (`conf`): its version and every member with its role.
#[derive(Debug, Clone, PartialEq)]
struct Conf {
    version: String,
    members: BTreeMap<u64, String>,
}

fn conf(port: u16) -> Option<Conf> {
    let (version, servers) = common::conf(port)?;
    let members = (servers.into_iter())
        .map(|(id, rest)| {
            let peer = rest.split(';').next().unwrap_or_default();
            let role = if peer.ends_with(":observer") {
                "observer"
            } else {
                "participant"
            };
            (id, role.to_string())
        })
        .collect();
    Some(Conf { version, members })
}

/// Every node of `ids` serves and reports the same committed configuration, with `voters` voting and
/// `observers` observing; that configuration.
fn agreed(c: &TestCluster, ids: &[u64], voters: &[u64], observers: &[u64], what: &str) -> Conf {
    poll(Duration::from_secs(30), what, || {
        let confs: Vec<Conf> = ids.iter().map(|id| conf(c.client_port(*id))).collect::<Option<_>>()?;
        let first = confs[0].clone();
        let serving = ids.iter().all(|id| srvr(c.client_port(*id)).is_some());
        let expected: BTreeMap<u64, String> = voters
            .iter()
            .map(|v| (*v, "participant".to_string()))
            .chain(observers.iter().map(|o| (*o, "observer".to_string())))
            .collect();
        (serving && confs.iter().all(|x| *x == first) && first.members == expected).then_some(first)
    })
}

fn version(v: &str) -> u64 {
    u64::from_str_radix(v, 16).unwrap_or_else(|_| panic!("not a hex version: {v}"))
}

#[test]
fn the_membership_changes_while_a_writer_loses_nothing() {
    let c = TestCluster::new(36);
    c.up(&["--reconfig", "--nodes", "3", "--observers", "1"]);
    let start = agreed(&c, &[1, 2, 3, 4], &[1, 2, 3], &[4], "3 voters and observer 4 agreeing");

    // ZooKeeper's own access control stays on: a super-user digest in every JVM, its password owner-only.
    let password = c.cluster_dir().join("super.password");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&password).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let cfg = std::fs::read_to_string(c.cluster_dir().join("node1/conf/zoo.cfg")).unwrap();
    assert!(
        cfg.contains("reconfigEnabled=true") && !cfg.to_lowercase().contains("skipacl"),
        "{cfg}"
    );
    let status = c.status();
    assert_eq!(status["config_version"], start.version.as_str(), "{status}");

    // The writer runs throughout every change below.
    let writing = std::time::Instant::now();
    let mut writer = c.spawn(&[
        "verify",
        "--kills",
        "0",
        "--duration",
        "30",
        "--writes-per-sec",
        "40",
        "--json",
    ]);

    // 3 voters to 5.
    let r = json(&c.zkdev(&["add", "--count", "2", "--json"]), "add --count 2");
    assert_eq!(r["nodes"], serde_json::json!([5, 6]), "{r}");
    assert_eq!(r["version_before"], start.version.as_str(), "{r}");
    let five = agreed(&c, &[1, 2, 3, 4, 5, 6], &[1, 2, 3, 5, 6], &[4], "5 voters");
    assert_eq!(r["version_after"], five.version.as_str(), "{r}");
    assert!(version(&five.version) > version(&start.version));
    let s = c.status();
    assert_eq!(s["quorum"]["voters"], 5, "{s}");
    assert_eq!(s["quorum"]["needed"], 3, "{s}");

    // And back to 3.
    assert_ok(&c.zkdev(&["remove", "6"]), "remove 6");
    assert_ok(&c.zkdev(&["remove", "5"]), "remove 5");
    let three = agreed(&c, &[1, 2, 3, 4], &[1, 2, 3], &[4], "back to 3 voters");
    assert!(version(&three.version) > version(&five.version));
    assert_eq!(c.status()["nodes"].as_array().unwrap().len(), 4);
    assert!(
        !c.cluster_dir().join("node6").exists(),
        "a removed node's directory stays"
    );

    // Remove the current leader: ZooKeeper elects another; add a voter to get back to 3.
    let (leader, leader_pid, _) = c.node_in_mode("leader");
    let r = json(&c.zkdev(&["remove", "leader", "--json"]), "remove the leader");
    assert_eq!(r["nodes"][0].as_u64(), Some(leader), "{r}");
    assert_eq!(r["leader_before"].as_u64(), Some(leader), "{r}");
    let new_leader = r["leader_after"]
        .as_u64()
        .unwrap_or_else(|| panic!("no new leader: {r}"));
    assert_ne!(new_leader, leader, "{r}");
    assert!(r["note"].as_str().unwrap().contains("elected"), "{r}");
    let rest: Vec<u64> = [1, 2, 3].into_iter().filter(|id| *id != leader).collect();
    agreed(
        &c,
        &[rest[0], rest[1], 4],
        &rest,
        &[4],
        "two voters after removing the leader",
    );
    poll(Duration::from_secs(10), "the removed leader's JVM gone", || {
        (!pid_alive(leader_pid)).then_some(())
    });
    let r = json(&c.zkdev(&["add", "--json"]), "add a voter");
    let added = r["nodes"][0].as_u64().unwrap();
    assert_eq!(added, 5, "the next id after the highest: {r}");
    let voters = vec![rest[0], rest[1], added];
    agreed(&c, &[rest[0], rest[1], 4, added], &voters, &[4], "3 voters again");

    // Promote observer 4, then demote it again.
    let r = json(&c.zkdev(&["promote", "4", "--json"]), "promote 4");
    let mut four_votes = voters.clone();
    four_votes.push(4);
    four_votes.sort();
    let promoted = agreed(&c, &[rest[0], rest[1], 4, added], &four_votes, &[], "node 4 voting");
    assert_eq!(r["version_after"], promoted.version.as_str(), "{r}");
    assert!(matches!(
        srvr(c.client_port(4)).unwrap().mode.as_str(),
        "follower" | "leader"
    ));
    assert_ok(&c.zkdev(&["demote", "4"]), "demote 4");
    agreed(
        &c,
        &[rest[0], rest[1], 4, added],
        &voters,
        &[4],
        "node 4 observing again",
    );
    poll(Duration::from_secs(20), "node 4 serving as an observer", || {
        (srvr(c.client_port(4))?.mode == "observer").then_some(())
    });

    // A new observer joins as one.
    let r = json(&c.zkdev(&["add", "--observer", "--json"]), "add --observer");
    let observer = r["nodes"][0].as_u64().unwrap();
    assert_eq!(observer, 6, "{r}");
    let everyone = [rest[0], rest[1], 4, added, observer];
    agreed(&c, &everyone, &voters, &[4, observer], "a second observer");
    poll(Duration::from_secs(20), "the new node serving as an observer", || {
        (srvr(c.client_port(observer))?.mode == "observer").then_some(())
    });

    // A change whose new configuration could not form a quorum is refused and changes nothing: with one
    // voter stopped, removing another would leave 1 of 2 voters up.
    let (down, keep) = (voters[0], voters[1]);
    assert_ok(&c.zkdev(&["stop", &down.to_string()]), "stop one voter");
    let before = conf(c.client_port(keep)).unwrap();
    let out = c.zkdev(&["remove", &keep.to_string()]);
    assert!(!out.status.success(), "{}", stdout(&out));
    assert!(stderr(&out).contains("refusing to remove node"), "{}", stderr(&out));
    assert!(stderr(&out).contains("--force"), "{}", stderr(&out));
    assert_eq!(
        conf(c.client_port(keep)).unwrap(),
        before,
        "a refused change changed the configuration"
    );
    // Promoting a stopped observer while a voter is down: refused by the guard, and with --force by ZooKeeper
    // itself (NewConfigNoQuorum), explained with the other path.
    assert_ok(&c.zkdev(&["stop", "4"]), "stop observer 4");
    let out = c.zkdev(&["promote", "4"]);
    assert!(stderr(&out).contains("refusing to promote node 4"), "{}", stderr(&out));
    let out = c.zkdev(&["promote", "4", "--force"]);
    assert!(!out.status.success(), "{}", stdout(&out));
    let said = stderr(&out);
    assert!(
        said.contains("NewConfigNoQuorum") && said.contains("the ensemble is unchanged"),
        "{said}"
    );
    assert!(said.contains("`zkdev remove 4`, then `zkdev add`"), "{said}");
    assert_eq!(
        conf(c.client_port(keep)).unwrap(),
        before,
        "a refused promotion changed the configuration"
    );
    assert_ok(&c.zkdev(&["start", "4"]), "start observer 4 again");
    assert_ok(&c.zkdev(&["start", &down.to_string()]), "start the voter again");
    let last = agreed(&c, &everyone, &voters, &[4, observer], "the ensemble as it was");
    assert_eq!(last.version, before.version);

    // The writer was still writing through the last change, and lost nothing on any node now in the ensemble.
    eprintln!("every change done {:?} after the writer started", writing.elapsed());
    assert!(
        writer.try_wait().unwrap().is_none(),
        "the writer ended before the last change"
    );
    let status = wait_exit(&mut writer, Duration::from_secs(120));
    let mut out = String::new();
    writer.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    let mut err = String::new();
    writer.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert!(status.success(), "verify failed: {out}\n{err}");
    let report: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("verify --json ({e}): {out}"));
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["lost"], 0, "{report}");
    assert!(report["acknowledged"].as_u64().unwrap() > 300, "{report}");
    let checked: Vec<u64> = report["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_u64().unwrap())
        .collect();
    let mut now = everyone.to_vec();
    now.sort();
    assert_eq!(checked, now, "verify checks the nodes the ensemble has now: {report}");

    // An `add` interrupted before ZooKeeper was asked leaves a node cluster.toml has and the ensemble does not:
    // `remove` drops it without asking ZooKeeper, and nothing else changes.
    let mut add = c.spawn(&["add"]);
    poll(
        Duration::from_secs(20),
        "the interrupted add's node in cluster.toml",
        || {
            let spec = std::fs::read_to_string(c.cluster_dir().join("cluster.toml")).ok()?;
            spec.contains("id = 7\n").then_some(())
        },
    );
    signal(add.id() as i32, nix::sys::signal::Signal::SIGKILL);
    let _ = add.wait();
    let out = c.zkdev(&["remove", "7"]);
    assert_ok(&out, "remove the node ZooKeeper never took in");
    assert!(
        stdout(&out).contains("node 7 dropped: it was not in the configuration"),
        "{}",
        stdout(&out)
    );
    assert!(!std::fs::read_to_string(c.cluster_dir().join("cluster.toml"))
        .unwrap()
        .contains("id = 7\n"));
    assert!(!c.cluster_dir().join("node7").exists());
    let after = agreed(&c, &everyone, &voters, &[4, observer], "the ensemble as it was");
    assert_eq!(after.version, last.version);
    let node7 = |pid: &i32| {
        std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| String::from_utf8_lossy(&c).contains("/node7/"))
    };
    poll(Duration::from_secs(10), "no JVM left for node 7", || {
        (!c.jvms().iter().any(node7)).then_some(())
    });
    assert_eq!(c.status()["nodes"].as_array().unwrap().len(), 5);

    // Every change is in the journal.
    let changes: Vec<String> = c
        .events()
        .iter()
        .filter(|e| e["action"] == "reconfig")
        .map(|e| e["message"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(changes.len(), 9, "{changes:#?}");
    assert!(changes[8].starts_with("node 7 dropped"), "{changes:#?}");
    let refused = c
        .events()
        .iter()
        .filter(|e| {
            e["message"]
                .as_str()
                .unwrap_or("")
                .starts_with("membership unchanged: ")
        })
        .count();
    assert_eq!(refused, 3, "every refused change is journalled");
    assert!(changes[0].starts_with("add nodes 5,6: configuration "), "{changes:#?}");
}

/// An `add` SIGKILLed after cluster.toml names the new voter but before ZooKeeper took it in: cluster.toml
/// says 4 voters, ZooKeeper 3. `status` (headline and `--json`) counts the 3 ZooKeeper committed, and the
/// quorum guard counts the same ones: they never contradict each other.
#[test]
fn status_and_the_guard_count_the_voters_zookeeper_committed() {
    let c = TestCluster::new(24);
    c.up(&["--reconfig", "--nodes", "3"]);
    agreed(&c, &[1, 2, 3], &[1, 2, 3], &[], "3 voters agreeing");
    let spec = c.cluster_dir().join("cluster.toml");
    let mut add = c.spawn(&["add"]);
    poll(Duration::from_secs(60), "cluster.toml names node 4", || {
        (std::fs::read_to_string(&spec).ok()?.contains("id = 4\n")).then_some(())
    });
    signal(add.id() as i32, nix::sys::signal::Signal::SIGKILL);
    wait_exit(&mut add, Duration::from_secs(10));
    // The add never reached its reconfig: ZooKeeper still has voters 1,2,3.
    agreed(
        &c,
        &[1, 2, 3],
        &[1, 2, 3],
        &[],
        "still 3 voters after the interrupted add",
    );
    let s = c.status();
    assert_eq!(s["nodes"].as_array().unwrap().len(), 4, "{s}");
    assert_eq!(
        s["quorum"],
        serde_json::json!({"voters": 3, "voters_up": 3, "needed": 2}),
        "{s}"
    );
    // Node 4 running outside the membership (it follows the leader without a vote) changes nothing.
    assert_ok(&c.zkdev(&["start", "4"]), "start 4");
    assert!(srvr(c.client_port(4)).is_some(), "node 4 serves");
    agreed(&c, &[1, 2, 3], &[1, 2, 3], &[], "still 3 voters with node 4 running");
    let s = c.status();
    assert_eq!(
        s["quorum"],
        serde_json::json!({"voters": 3, "voters_up": 3, "needed": 2}),
        "{s}"
    );

    // One voter down: the headline and the guard say the same thing.
    assert_ok(&c.zkdev(&["stop", "1"]), "stop 1");
    let s = c.status();
    assert_eq!(
        s["quorum"],
        serde_json::json!({"voters": 3, "voters_up": 2, "needed": 2}),
        "{s}"
    );
    let headline = stdout(&c.zkdev(&["status"]));
    assert!(headline.contains("voters up 2/3 (quorum needs 2)"), "{headline}");
    let out = c.zkdev(&["stop", "2"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("1 of 3 voters would remain up; a quorum needs 2"),
        "{}",
        stderr(&out)
    );
    assert!(srvr(c.client_port(2)).is_some(), "the refused stop left node 2 serving");
}
