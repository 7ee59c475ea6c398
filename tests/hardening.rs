//! What zkdev guarantees when things go wrong: bad input loses nothing, foreign processes are never
//! signalled, nothing is left half-up, concurrent commands make one ensemble, purge stays in its directory.
//! Each test asserts on the exit code, the message, and what is (not) running or on disk afterwards.

mod common;

use std::net::TcpListener;
use std::time::Duration;

use common::*;
use nix::sys::signal::Signal;

fn write_profile(c: &TestCluster, name: &str, text: &str) -> String {
    let p = c.home_path().join(name);
    std::fs::write(&p, text).unwrap();
    p.to_string_lossy().into_owned()
}

/// Every bad profile or flag: exit 2, a message naming the input, and an empty home afterwards.
#[test]
fn bad_profiles_and_flags_write_nothing() {
    let c = TestCluster::new(40);
    let offset = c.offset.to_string();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec!["--profile".into(), write_profile(&c, "syntax.toml", "[zookeeper\n")],
            "syntax.toml: line 1, column",
        ),
        (
            vec![
                "--profile".into(),
                write_profile(&c, "unknown.toml", "[jvm]\nheap = 3\n"),
            ],
            "unknown.toml: line 2, column 1: unknown field `heap`",
        ),
        (
            vec![
                "--profile".into(),
                write_profile(&c, "type.toml", "[zookeeper]\nsync_limit = \"five\"\n"),
            ],
            "type.toml: line 2",
        ),
        (
            vec![
                "--profile".into(),
                write_profile(&c, "tick.toml", "[zookeeper]\ntick_time = 0\n"),
            ],
            "expected a nonzero u32",
        ),
        (
            vec![
                "--profile".into(),
                write_profile(&c, "init.toml", "[zookeeper]\ninit_limit = 0\n"),
            ],
            "init.toml: line 2",
        ),
        (
            vec![
                "--profile".into(),
                write_profile(&c, "sync.toml", "[zookeeper]\nsync_limit = 0\n"),
            ],
            "sync.toml: line 2",
        ),
        (
            vec![
                "--profile".into(),
                write_profile(&c, "clash.toml", "[ports]\nquorum_base = 2181\n"),
            ],
            "would be both node 1 quorum port and node 2 client port",
        ),
        (
            vec![
                "--profile".into(),
                write_profile(&c, "reserved.toml", "[zookeeper.extra]\ndataDir = \"/tmp\"\n"),
            ],
            "key `dataDir` is written by zkdev itself",
        ),
        (
            vec![
                "--profile".into(),
                write_profile(
                    &c,
                    "newline-key.toml",
                    "extends = \"fast\"\n[zookeeper.extra]\n\"a\\nclientPortAddress\" = \"0.0.0.0\"\n",
                ),
            ],
            "newline-key.toml: line 3, column 1: [zookeeper.extra] key `a\\nclientPortAddress` contains the control \
             character U+000A",
        ),
        (
            vec![
                "--profile".into(),
                write_profile(
                    &c,
                    "newline-value.toml",
                    "[zookeeper.extra]\nx = \"1\\nclientPortAddress=0.0.0.0\"\n",
                ),
            ],
            "newline-value.toml: line 2",
        ),
        (
            vec![
                "--profile".into(),
                write_profile(&c, "space-key.toml", "[zookeeper.extra]\n\" dataDir\" = \"/tmp\"\n"),
            ],
            "space-key.toml: line 2, column 1: [zookeeper.extra] key ` dataDir` (it is `dataDir` spelled another \
             way) is written by zkdev itself",
        ),
        (
            vec![
                "--profile".into(),
                write_profile(
                    &c,
                    "case-key.toml",
                    "[zookeeper.extra]\nCLIENTPORTADDRESS = \"0.0.0.0\"\n",
                ),
            ],
            "(it is `clientPortAddress` spelled another way) is written by zkdev itself",
        ),
        (
            vec![
                "--profile".into(),
                write_profile(
                    &c,
                    "all-ips.toml",
                    "[zookeeper.extra]\nquorumListenOnAllIPs = \"true\"\n",
                ),
            ],
            "all-ips.toml: zkdev keeps every listening port of a node on 127.0.0.1, and this profile would open one \
             beyond it: [zookeeper.extra] `quorumListenOnAllIPs = true`",
        ),
        (
            vec![
                "--profile".into(),
                write_profile(
                    &c,
                    "jmx.toml",
                    "[jvm.properties]\n\"com.sun.management.jmxremote.port\" = \"9999\"\n",
                ),
            ],
            "[jvm.properties] `com.sun.management.jmxremote.port` turns on the JVM's JMX agent",
        ),
        (
            vec![
                "--profile".into(),
                write_profile(
                    &c,
                    "jdwp.toml",
                    "[jvm]\nflags = [\"-agentlib:jdwp=transport=dt_socket,server=y,suspend=n,address=*:5005\"]\n",
                ),
            ],
            "the debugger listens on every interface (address=*:5005)",
        ),
        (
            vec![
                "--profile".into(),
                write_profile(&c, "flag.toml", "[jvm]\nflags = [\"-Dx=1\\n-Dy=2\"]\n"),
            ],
            "flag.toml: line 2, column 9: JVM argument `-Dx=1\\n-Dy=2` contains the control character U+000A",
        ),
        (
            vec![
                "--profile".into(),
                write_profile(&c, "prop.toml", "[jvm.properties]\n\"a b\" = \"1\"\n"),
            ],
            "prop.toml: line 2, column 1: [jvm.properties] key `a b` contains whitespace",
        ),
        (
            vec![
                "--profile".into(),
                write_profile(
                    &c,
                    "session.toml",
                    "extends = \"fast\"\n[zookeeper]\nmin_session_timeout = 9000\nmax_session_timeout = 4000\n",
                ),
            ],
            "session.toml: [zookeeper] min_session_timeout = 9000 is larger than max_session_timeout = 4000",
        ),
        (
            vec![
                "--profile".into(),
                write_profile(&c, "heap.toml", "extends = \"fast\"\n[jvm]\nheap_min_mb = 64\n"),
            ],
            "heap.toml: [jvm] heap_min_mb = 64 is larger than heap_max_mb = 32",
        ),
        (vec!["--nodes".into(), "0".into()], "--nodes 0"),
        (
            vec!["--nodes".into(), "0".into(), "--observers".into(), "2".into()],
            "observers alone cannot elect",
        ),
        (
            vec!["--port-offset".into(), "63400".into()],
            "ports must be 1024 to 65535",
        ),
        (vec!["--port-offset".into(), "70000".into()], "70000"),
        (
            vec!["--timeout".into(), "0".into()],
            "invalid value '0' for '--timeout <DURATION>': give a duration greater than 0",
        ),
    ];
    for (args, needle) in cases {
        let mut all = vec!["up".to_string()];
        if !args.iter().any(|a| a == "--port-offset") {
            all.extend(["--port-offset".to_string(), offset.clone()]);
        }
        all.extend(args.iter().cloned());
        let all: Vec<&str> = all.iter().map(String::as_str).collect();
        let out = c.zkdev(&all);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains(needle),
            "{args:?}: expected {needle:?} in:\n{}",
            stderr(&out)
        );
        assert!(!c.home_path().join("clusters").exists(), "{args:?} wrote a cluster");
        assert!(!c.home_path().join("locks").exists(), "{args:?} wrote a lock");
        assert!(c.jvms().is_empty());
    }
    for bad in ["a/b", "..", "x y", "-rf"] {
        let out = assert_cmd::Command::cargo_bin("zkdev")
            .unwrap()
            .args([
                "--home",
                c.home_path().to_str().unwrap(),
                &format!("--cluster={bad}"),
                "up",
            ])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{bad}");
        assert!(
            stderr(&out).contains("letters, digits, `-`, `_` and `.`"),
            "{bad}: {}",
            stderr(&out)
        );
    }
}

#[test]
fn an_even_number_of_voters_warns_what_it_costs() {
    let c = TestCluster::new(41);
    let out = c.up(&["--nodes", "2"]);
    assert!(
        stderr(&out).contains("2 voters survive 0 failed voters, as 1 would"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn missing_java_zookeeper_or_home_is_an_environment_error() {
    let c = TestCluster::new(42);
    let empty = tempfile::tempdir().unwrap();
    let out = c
        .cmd()
        .env("PATH", empty.path())
        .env_remove("JAVA_HOME")
        .args(["up", "--port-offset", &c.offset.to_string()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("java not found"), "{}", stderr(&out));
    assert!(stderr(&out).contains("apt-get install -y default-jre-headless"));

    let out = c.zkdev(&[
        "up",
        "--zk-home",
        empty.path().to_str().unwrap(),
        "--port-offset",
        &c.offset.to_string(),
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("is not a ZooKeeper installation"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("apt-get install -y zookeeper"));

    let file = c.home_path().join("a-file");
    std::fs::write(&file, "").unwrap();
    let out = assert_cmd::Command::cargo_bin("zkdev")
        .unwrap()
        .args([
            "--home",
            file.join("zk").to_str().unwrap(),
            "up",
            "--port-offset",
            &c.offset.to_string(),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("pass a writable --home DIR"), "{}", stderr(&out));
    assert!(c.jvms().is_empty());
}

/// A node that dies while starting: exit 1 with its log, and the nodes this run started are stopped again
/// (or kept with --keep-on-failure).
#[test]
fn a_node_dying_at_start_leaves_nothing_half_up() {
    let c = TestCluster::new(43);
    let bad = write_profile(
        &c,
        "bad.toml",
        "extends = \"fast\"\n[jvm]\nflags = [\"-XX:+NoSuchOption\"]\n",
    );
    let out = c.zkdev(&["up", "--profile", &bad, "--port-offset", &c.offset.to_string()]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("exited while starting"), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("NoSuchOption"),
        "the log tail is missing:\n{}",
        stderr(&out)
    );
    assert!(c.jvms().is_empty());
    c.zkdev(&["down", "--purge"]);

    // One node of four fails (its snapshot directory is a file); the three it started are stopped again.
    c.up(&["--nodes", "3", "--observers", "1"]);
    assert_ok(&c.zkdev(&["down"]), "down");
    let v2 = c.cluster_dir().join("node3/data/version-2");
    std::fs::rename(&v2, c.cluster_dir().join("node3/data/moved-away")).unwrap();
    std::fs::write(&v2, "not a directory").unwrap();
    let out = c.zkdev(&["up", "--timeout", "30"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("node 3 exited while starting"), "{err}");
    assert!(err.contains("node3/logs/zookeeper.log"), "{err}");
    assert!(err.contains("stopped the 4 nodes this run started"), "{err}");
    assert!(c.jvms().is_empty(), "left running: {:?}", c.jvms());
    assert!(c.supervisors().is_empty(), "a failed up leaves no supervisor");
    // The three healthy nodes were stopped; node 3 crashed, and status says how (its exit status, seen by
    // the supervisor that reaped it) rather than calling it stopped.
    let s = c.status();
    for n in s["nodes"].as_array().unwrap() {
        if n["id"] == 3 {
            assert_eq!(n["process"], "crashed", "{s}");
            assert!(n["detail"].as_str().unwrap().contains("exit code 1"), "{s}");
        } else {
            assert_eq!(n["process"], "stopped", "{s}");
        }
    }

    let out = c.zkdev(&["up", "--timeout", "30", "--keep-on-failure"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("--keep-on-failure"), "{}", stderr(&out));
    assert_eq!(c.jvms().len(), 3, "the healthy nodes should be kept for a look");
}

/// A recorded pid that now belongs to someone else is never signalled, and status calls the node crashed.
#[test]
fn a_foreign_pid_in_the_state_file_is_never_signalled() {
    let c = TestCluster::new(44);
    c.up(&["--nodes", "3"]);
    let (fid, _, _) = c.node_in_mode("follower");
    assert_ok(&c.zkdev(&["stop", &fid.to_string()]), "stop follower");

    let mut sleeper = std::process::Command::new("sleep").arg("300").spawn().unwrap();
    let pid = sleeper.id() as i32;
    poll(Duration::from_secs(2), "sleep to exec", || {
        std::fs::read(format!("/proc/{pid}/cmdline"))
            .ok()
            .filter(|c| c.starts_with(b"sleep"))
            .map(|_| ())
    });
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let start_ticks: u64 = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .nth(19)
        .unwrap()
        .parse()
        .unwrap();
    let state_file = c.cluster_dir().join("state.json");
    let mut state: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&state_file).unwrap()).unwrap();
    state["nodes"][fid.to_string()] =
        serde_json::json!({"state": "started", "pid": pid, "start_ticks": start_ticks, "started_at": 0});
    std::fs::write(&state_file, serde_json::to_string(&state).unwrap()).unwrap();

    let n = &c.status()["nodes"][(fid - 1) as usize];
    assert_eq!(n["process"], "crashed", "{n}");
    assert!(n["pid"].is_null());
    let out = c.zkdev(&["kill", &fid.to_string(), "--json"]);
    assert_ok(&out, "kill");
    assert!(stdout(&out).contains("not running"), "{}", stdout(&out));
    assert!(
        sleeper.try_wait().unwrap().is_none(),
        "kill signalled the foreign process"
    );
    let out = c.zkdev(&["kill-leader", "--force"]);
    assert_ok(&out, "kill-leader");
    assert!(
        sleeper.try_wait().unwrap().is_none(),
        "kill-leader signalled the foreign process"
    );
    assert_ok(&c.zkdev(&["down"]), "down");
    assert!(
        sleeper.try_wait().unwrap().is_none(),
        "down signalled the foreign process"
    );
    assert!(c.jvms().is_empty());
    sleeper.kill().unwrap();
    sleeper.wait().unwrap();
}

#[test]
fn two_concurrent_ups_make_one_ensemble() {
    let c = TestCluster::new(45);
    let offset = c.offset.to_string();
    let args = ["up", "--profile", "fast", "--port-offset", &offset, "--nodes", "3"];
    let mut a = c.spawn(&args);
    let mut b = c.spawn(&args);
    let sa = wait_exit(&mut a, Duration::from_secs(120));
    let sb = wait_exit(&mut b, Duration::from_secs(120));
    assert!(sa.success() && sb.success(), "{sa:?} {sb:?}");
    assert_eq!(c.jvms().len(), 3, "two ups started {:?}", c.jvms());
    assert_ok(&c.zkdev(&["wait", "--timeout", "10"]), "wait");

    // status during down: always a sensible answer, never a crash.
    let mut down = c.spawn(&["down", "--purge"]);
    let mut answers = 0;
    while down.try_wait().unwrap().is_none() {
        let out = c.zkdev(&["status", "--json"]);
        match out.status.code() {
            Some(0) => {
                serde_json::from_slice::<serde_json::Value>(&out.stdout).expect("JSON while stopping");
            }
            Some(1) => assert!(
                stderr(&out).contains("no cluster") || stderr(&out).contains("cannot read"),
                "{}",
                stderr(&out)
            ),
            other => panic!("status during down exited {other:?}: {}", stderr(&out)),
        }
        answers += 1;
    }
    assert!(answers > 0);
    assert!(c.jvms().is_empty());
}

#[test]
fn two_clusters_side_by_side_do_not_touch_each_other() {
    let a = TestCluster::new(46);
    let b = TestCluster::new(47);
    a.up(&["--nodes", "3"]);
    b.up(&["--nodes", "3"]);
    let before: Vec<_> = b.status()["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["pid"].clone())
        .collect();
    let b_leader = b.status()["leader"].clone();
    assert_ok(&a.zkdev(&["kill-leader"]), "kill-leader in a");
    assert_ok(&a.zkdev(&["down", "--purge"]), "down a");
    let after: Vec<_> = b.status()["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["pid"].clone())
        .collect();
    assert_eq!(before, after);
    assert_eq!(b.status()["leader"], b_leader);
    assert_eq!(b.jvms().len(), 3);
}

#[test]
fn sigint_during_up_stops_what_it_started() {
    let c = TestCluster::new(48);
    let offset = c.offset.to_string();
    let mut up = c.spawn(&["up", "--port-offset", &offset, "--nodes", "3", "--observers", "1"]);
    poll(Duration::from_secs(30), "the first JVM", || {
        (!c.jvms().is_empty()).then_some(())
    });
    signal(up.id() as i32, Signal::SIGINT);
    let st = wait_exit(&mut up, Duration::from_secs(60));
    assert_eq!(st.code(), Some(1));
    let mut err = String::new();
    std::io::Read::read_to_string(up.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert!(err.contains("interrupted: stopped the"), "{err}");
    assert!(c.jvms().is_empty(), "left: {:?}", c.jvms());
    let s = c.status();
    assert!(
        s["nodes"].as_array().unwrap().iter().all(|n| n["process"] == "stopped"),
        "{s}"
    );
}

#[test]
fn sigkill_of_zkdev_during_up_leaves_nodes_that_status_sees_and_down_stops() {
    let c = TestCluster::new(49);
    let offset = c.offset.to_string();
    let mut up = c.spawn(&["up", "--profile", "fast", "--port-offset", &offset, "--nodes", "3"]);
    poll(Duration::from_secs(30), "three JVMs", || {
        (c.jvms().len() == 3).then_some(())
    });
    signal(up.id() as i32, Signal::SIGKILL);
    let _ = up.wait();
    let running = c.jvms();
    let s = c.status();
    let seen: Vec<i32> = s["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|n| n["pid"].as_i64())
        .map(|p| p as i32)
        .collect();
    for pid in &running {
        assert!(seen.contains(pid), "JVM {pid} runs but status does not know it: {s}");
    }
    assert_ok(&c.zkdev(&["down"]), "down");
    assert!(c.jvms().is_empty());

    // The same window made deterministic: a node runs but its pid never reached state.json.
    c.up(&[]);
    let pid2 = c.status()["nodes"][1]["pid"].as_i64().unwrap();
    let state_file = c.cluster_dir().join("state.json");
    let mut state: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&state_file).unwrap()).unwrap();
    state["nodes"].as_object_mut().unwrap().remove("2");
    std::fs::write(&state_file, serde_json::to_string(&state).unwrap()).unwrap();
    let n2 = c.status()["nodes"][1].clone();
    assert_eq!(n2["process"], "running", "{n2}");
    assert_eq!(n2["pid"].as_i64(), Some(pid2));
    assert_ok(&c.zkdev(&["down"]), "down");
    assert!(c.jvms().is_empty(), "the unrecorded node was left running");
}

#[test]
fn purge_removes_links_not_their_targets_and_refuses_foreign_directories() {
    let c = TestCluster::new(50);
    c.up(&["--nodes", "1"]);
    assert_ok(&c.zkdev(&["down"]), "down");
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("precious"), "keep me").unwrap();
    std::os::unix::fs::symlink(outside.path(), c.cluster_dir().join("node1/link-out")).unwrap();
    std::os::unix::fs::symlink(outside.path().join("precious"), c.cluster_dir().join("file-link")).unwrap();
    assert_ok(&c.zkdev(&["down", "--purge"]), "purge");
    assert!(!c.cluster_dir().exists());
    assert_eq!(
        std::fs::read_to_string(outside.path().join("precious")).unwrap(),
        "keep me"
    );

    // --home / is refused outright.
    let out = assert_cmd::Command::cargo_bin("zkdev")
        .unwrap()
        .args(["--home", "/", "down", "--purge"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("never removes anything at the root"),
        "{}",
        stderr(&out)
    );

    // A directory that looks like a cluster but was not made by zkdev is not removed.
    let fake = c.home_path().join("clusters").join(&c.name);
    std::fs::create_dir_all(&fake).unwrap();
    std::fs::write(fake.join("cluster.toml"), "mine").unwrap();
    let out = c.zkdev(&["down", "--purge"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("not a directory zkdev created"),
        "{}",
        stderr(&out)
    );
    assert!(fake.join("cluster.toml").exists());
}

/// Every listening socket of every node is on 127.0.0.1 and is one of the cluster's own ports: no JMX or
/// other port appears, and the AdminServer listens on loopback.
#[test]
fn nodes_listen_on_loopback_only_and_on_their_own_ports_only() {
    let c = TestCluster::new(51);
    // The default profile, for its AdminServer.
    let out = c.zkdev(&[
        "up",
        "--profile",
        "default",
        "--port-offset",
        &c.offset.to_string(),
        "--observers",
        "1",
    ]);
    assert_ok(&out, "up --profile default");
    let s = c.status();
    let mut own = Vec::new();
    for n in s["nodes"].as_array().unwrap() {
        for k in ["client_port", "quorum_port", "election_port", "admin_port"] {
            own.push(n[k].as_u64().unwrap() as u16);
        }
    }
    for n in s["nodes"].as_array().unwrap() {
        let pid = n["pid"].as_i64().unwrap() as i32;
        let cmd = String::from_utf8(std::fs::read(format!("/proc/{pid}/cmdline")).unwrap()).unwrap();
        assert!(!cmd.contains("jmxremote"), "node {} has a JMX remote option", n["id"]);
        let listening = listening_of(pid);
        assert!(
            listening
                .iter()
                .any(|(_, p)| Some(*p as u64) == n["admin_port"].as_u64()),
            "no AdminServer"
        );
        for (addr, port) in listening {
            assert!(is_loopback_v4(&addr), "node {} listens on {addr}:{port}", n["id"]);
            assert!(
                own.contains(&port),
                "node {} listens on a port that is not the cluster's: {port}",
                n["id"]
            );
        }
    }
}

#[test]
fn a_taken_port_is_named_with_its_owner_and_nothing_starts() {
    let c = TestCluster::new(63);
    // Node 2's election port under this test's offset.
    let port = 3880 + 2 + c.offset;
    let _held = TcpListener::bind(("127.0.0.1", port)).unwrap();
    let out = c.zkdev(&["up", "--profile", "fast", "--port-offset", &c.offset.to_string()]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "port {port} (node 2 election port) is in use by pid {}",
            std::process::id()
        )),
        "{err}"
    );
    assert!(err.contains("--port-offset"), "{err}");
    assert!(c.jvms().is_empty());
    assert!(!c.cluster_dir().exists());
}

#[test]
fn status_of_a_missing_cluster_says_how_to_make_one() {
    let c = TestCluster::new(64);
    let out = c.zkdev(&["status"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("start one with `zkdev up`"), "{}", stderr(&out));
    let out = c.zkdev(&["down"]);
    assert_eq!(out.status.code(), Some(0));
}

/// `zkdev` with an explicit home and working directory (for spellings of the same home).
fn zkdev_in(dir: &std::path::Path, home: &str, args: &[&str]) -> std::process::Output {
    assert_cmd::Command::cargo_bin("zkdev")
        .unwrap()
        .env_remove("ZKDEV_HOME")
        .env_remove("ZKDEV_CLUSTER")
        .current_dir(dir)
        .arg("--home")
        .arg(home)
        .args(args)
        .timeout(Duration::from_secs(120))
        .output()
        .unwrap()
}

/// Issue 12.1: the same home spelt through a symbolic link, or with `./`, is the same home: `down` by the
/// other spelling stops every JVM. And `down --purge` never removes a directory that a process still uses.
#[test]
fn the_same_home_by_another_spelling_is_the_same_home() {
    let c = TestCluster::new(9);
    let base = c.home_path();
    let real = base.join("r");
    std::fs::create_dir(&real).unwrap();
    std::os::unix::fs::symlink(&real, base.join("l")).unwrap();
    let offset = c.offset.to_string();
    let up = ["up", "-p", "fast", "--nodes", "1", "--port-offset", &offset];
    let out = zkdev_in(base, &base.join("l").to_string_lossy(), &up);
    assert_ok(&out, "up through the link");
    assert_eq!(jvms_under(&real).len(), 1, "the JVM names the real path");
    let out = zkdev_in(base, &real.to_string_lossy(), &["down", "--purge"]);
    assert_ok(&out, "down --purge by the real path");
    assert!(jvms_under(&real).is_empty(), "JVMs orphaned: {:?}", jvms_under(&real));
    assert!(supervisors_under(&real).is_empty());

    // A relative home with `./` in it, then the absolute spelling.
    let out = zkdev_in(base, "./h/./", &up);
    assert_ok(&out, "up with --home ./h/./");
    let h = base.canonicalize().unwrap().join("h");
    assert_eq!(jvms_under(&h).len(), 1);
    let out = zkdev_in(std::path::Path::new("/"), &h.to_string_lossy(), &["down"]);
    assert_ok(&out, "down by the absolute path");
    assert!(jvms_under(&h).is_empty(), "JVMs orphaned: {:?}", jvms_under(&h));

    // A process that is not zkdev's but works in the cluster directory: purge refuses and names it.
    let cluster = h.join("clusters/default");
    let mut squatter = std::process::Command::new("sleep")
        .arg("300")
        .current_dir(&cluster)
        .spawn()
        .unwrap();
    let out = zkdev_in(base, &h.to_string_lossy(), &["down", "--purge"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("pid {}", squatter.id())),
        "{}",
        stderr(&out)
    );
    assert!(cluster.join("cluster.toml").exists(), "nothing removed while in use");
    assert!(
        squatter.try_wait().unwrap().is_none(),
        "the foreign process was signalled"
    );
    squatter.kill().unwrap();
    squatter.wait().unwrap();
    assert_ok(
        &zkdev_in(base, &h.to_string_lossy(), &["down", "--purge"]),
        "purge once free",
    );
    assert!(!cluster.exists());
}

/// Issue 12.2: a process whose arguments merely contain QuorumPeerMain, a node's zoo.cfg path and even
/// its token is not adopted: status does not show it, `kill --force` does not signal it, `up` starts the
/// real node.
#[test]
fn a_process_that_only_looks_like_a_node_is_never_adopted() {
    let c = TestCluster::new(10);
    c.up(&["--nodes", "3"]);
    assert_ok(&c.zkdev(&["stop", "1"]), "stop 1");
    let spec = std::fs::read_to_string(c.cluster_dir().join("cluster.toml")).unwrap();
    let uid = spec
        .lines()
        .find_map(|l| l.strip_prefix("uid = "))
        .unwrap()
        .trim_matches('"')
        .to_string();
    let zoo_cfg = c.cluster_dir().join("node1/conf/zoo.cfg");
    let mut impostor = std::process::Command::new("python3")
        .args([
            "-c",
            "import time;time.sleep(300)",
            "org.apache.zookeeper.server.quorum.QuorumPeerMain",
        ])
        .arg(&zoo_cfg)
        .arg(format!("-Dzkdev.node={uid}/1"))
        .spawn()
        .unwrap();
    let ipid = impostor.id() as i32;
    poll(Duration::from_secs(10), "the impostor to run", || {
        std::fs::read_to_string(format!("/proc/{ipid}/cmdline"))
            .ok()
            .filter(|c| c.contains("QuorumPeerMain") && c.contains("time.sleep"))
            .map(|_| ())
    });
    // Without a supervisor too: every command scans /proc afresh.
    signal(c.supervisor_pid().unwrap(), Signal::SIGKILL);
    let node1 = |s: &serde_json::Value| s["nodes"].as_array().unwrap()[0].clone();
    let s = c.status();
    assert_eq!(node1(&s)["process"], "stopped", "{s}");
    let out = c.zkdev(&["kill", "1", "--force"]);
    assert_ok(&out, "kill 1 --force");
    assert!(stdout(&out).contains("not running"), "{}", stdout(&out));
    assert!(impostor.try_wait().unwrap().is_none(), "the impostor was signalled");
    c.up(&[]);
    let s = c.status();
    assert_eq!(node1(&s)["process"], "running", "{s}");
    assert_ne!(node1(&s)["pid"].as_i64(), Some(i64::from(ipid)), "{s}");
    assert!(srvr(c.client_port(1)).is_some(), "the real node 1 serves");
    assert!(impostor.try_wait().unwrap().is_none(), "the impostor was signalled");
    impostor.kill().unwrap();
    impostor.wait().unwrap();
}

/// Issue 12.4: a truncated, garbage or symbolically linked state.json is treated as missing: status,
/// up and down find the JVMs by their tokens and say the file was ignored. `down` needs no lock file, so
/// a home where the lock cannot be created still stops every JVM.
#[test]
fn a_damaged_state_file_is_not_a_dead_end() {
    let c = TestCluster::new(11);
    c.up(&["--nodes", "3", "--observers", "1"]);
    signal(c.supervisor_pid().unwrap(), Signal::SIGKILL);
    let state = c.cluster_dir().join("state.json");
    let running = |s: &serde_json::Value| {
        s["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|n| n["process"] == "running")
            .count()
    };

    std::fs::write(&state, "{\"format\":1,\"nodes\":{\"1\":{\"sta").unwrap();
    let out = c.zkdev(&["status", "--json"]);
    assert_ok(&out, "status with a truncated state.json");
    assert!(stderr(&out).contains("state.json is damaged"), "{}", stderr(&out));
    assert_eq!(running(&serde_json::from_slice(&out.stdout).unwrap()), 4);

    std::fs::write(&state, "garbage\u{0}\u{1}").unwrap();
    let out = c.zkdev(&["up"]);
    assert_ok(&out, "up with a garbage state.json");
    assert!(stdout(&out).contains("already running"), "{}", stdout(&out));
    assert_eq!(c.jvms().len(), 4, "nothing started twice");

    // A link to somebody else's file: ignored, and replaced by a file of zkdev's own, never written through.
    signal(c.supervisor_pid().unwrap(), Signal::SIGKILL);
    let elsewhere = c.home_path().join("precious.json");
    std::fs::write(&elsewhere, "{\"format\":1,\"nodes\":{}}").unwrap();
    std::fs::remove_file(&state).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &state).unwrap();
    // The lock cannot be made (its directory is a file): `down` does not need it.
    let locks = c.home_path().join("locks");
    std::fs::remove_dir_all(&locks).unwrap();
    std::fs::write(&locks, "not a directory").unwrap();
    let out = c.zkdev(&["down"]);
    assert_ok(&out, "down with a linked state.json and no lock");
    assert!(stderr(&out).contains("symbolic link"), "{}", stderr(&out));
    assert!(c.jvms().is_empty(), "JVMs left: {:?}", c.jvms());
    assert_eq!(
        std::fs::read_to_string(&elsewhere).unwrap(),
        "{\"format\":1,\"nodes\":{}}"
    );
    std::fs::remove_file(&locks).unwrap();
}

/// Issue 12.5: what an interrupted command leaves is reported as it is. A `down` killed half-way still
/// ends with every node stopped (not "crashed"); Ctrl-C during `verify` restarts the leader it killed and
/// says it was interrupted; a node whose client port in cluster.toml no longer matches is unresponsive.
#[test]
fn interrupted_commands_leave_an_honest_status() {
    let c = TestCluster::new(12);
    c.up(&["--nodes", "3"]);

    let mut verify = c.spawn(&["verify", "--kills", "3", "--duration", "20"]);
    poll(Duration::from_secs(30), "verify's first kill", || {
        std::fs::read_to_string(c.cluster_dir().join("events.ndjson"))
            .ok()
            .filter(|j| j.contains("\"action\":\"kill\""))
            .map(|_| ())
    });
    signal(verify.id() as i32, Signal::SIGINT);
    let st = wait_exit(&mut verify, Duration::from_secs(90));
    let mut err = String::new();
    std::io::Read::read_to_string(verify.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert_eq!(st.code(), Some(1), "{err}");
    assert!(err.contains("interrupted after"), "{err}");
    assert!(!err.contains("a leader kill failed"), "{err}");
    let s = c.status();
    assert!(
        s["nodes"].as_array().unwrap().iter().all(|n| n["process"] == "running"),
        "{s}"
    );
    assert!(s["leader"].is_u64(), "{s}");

    let mut down = c.spawn(&["down"]);
    poll(Duration::from_secs(20), "down's stop in the journal", || {
        std::fs::read_to_string(c.cluster_dir().join("events.ndjson"))
            .ok()
            .filter(|j| j.contains("\"action\":\"stop\""))
            .map(|_| ())
    });
    signal(down.id() as i32, Signal::SIGKILL);
    let _ = down.wait();
    poll(Duration::from_secs(20), "every node stopped", || {
        c.jvms().is_empty().then_some(())
    });
    let s = c.status();
    assert!(
        s["nodes"].as_array().unwrap().iter().all(|n| n["process"] == "stopped"),
        "{s}"
    );

    // cluster.toml edited by hand: node 1's client port moved to where nothing listens.
    c.up(&[]);
    let spec_file = c.cluster_dir().join("cluster.toml");
    let spec = std::fs::read_to_string(&spec_file).unwrap();
    let port = c.client_port(1);
    let moved = spec.replacen(&format!("client = {port}"), &format!("client = {}", port + 5), 1);
    assert_ne!(spec, moved);
    std::fs::write(&spec_file, moved).unwrap();
    let n1 = poll(Duration::from_secs(20), "node 1 unresponsive", || {
        let s = c.status();
        let n = s["nodes"].as_array().unwrap()[0].clone();
        (n["process"] == "unresponsive").then_some(n)
    });
    assert!(
        n1["detail"]
            .as_str()
            .unwrap()
            .contains("nothing listens on client port"),
        "{n1}"
    );
}

/// A setting that listens beyond 127.0.0.1 (here the JVM's JMX agent) is refused unless the profile says
/// `allow_non_loopback = true`; then every `up` warns, and the listener is really there.
#[test]
fn a_profile_opens_listeners_beyond_loopback_only_when_it_says_so() {
    let c = TestCluster::new(52);
    let offset = c.offset.to_string();
    let jmx = "extends = \"fast\"\n[jvm.properties]\n\"com.sun.management.jmxremote\" = \"\"\n";
    let refused = write_profile(&c, "jmx.toml", jmx);
    let out = c.zkdev(&["up", "--profile", &refused, "--port-offset", &offset, "--nodes", "1"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("[jvm.properties] `com.sun.management.jmxremote` turns on the JVM's JMX agent"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("allow_non_loopback = true"), "{}", stderr(&out));
    assert!(!c.home_path().join("clusters").exists());

    let allowed = write_profile(&c, "jmx-allowed.toml", &format!("allow_non_loopback = true\n{jmx}"));
    let warning = "warning: the profile allows listening beyond 127.0.0.1 (allow_non_loopback = true): \
                   [jvm.properties] `com.sun.management.jmxremote`";
    let out = c.zkdev(&["up", "--profile", &allowed, "--port-offset", &offset, "--nodes", "1"]);
    assert_ok(&out, "up with allow_non_loopback");
    assert!(stderr(&out).contains(warning), "{}", stderr(&out));
    let pid = c.status()["nodes"][0]["pid"].as_i64().unwrap() as i32;
    poll(Duration::from_secs(10), "the JMX agent's listener", || {
        listening_of(pid)
            .iter()
            .any(|(addr, _)| !is_loopback_v4(addr))
            .then_some(())
    });
    assert_ok(&c.zkdev(&["down"]), "down");
    let out = c.zkdev(&["up"]);
    assert_ok(&out, "up again");
    assert!(
        stderr(&out).contains(warning),
        "an existing cluster's up must warn too:\n{}",
        stderr(&out)
    );
}

/// A `java` that is not one exits before ZooKeeper logs anything: say so, with its exit status and output.
#[test]
fn a_java_that_exits_at_once_is_reported_with_its_status_and_output() {
    let c = TestCluster::new(53);
    let offset = c.offset.to_string();
    let p = write_profile(&c, "false.toml", "extends = \"fast\"\n[dist]\njava = \"/bin/false\"\n");
    let out = c.zkdev(&["up", "--profile", &p, "--port-offset", &offset, "--nodes", "1"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(
            "node 1 exited while starting: `/bin/false` exited at once with exit status 1 and printed nothing"
        ),
        "{}",
        stderr(&out)
    );
    assert_ok(&c.zkdev(&["down", "--purge"]), "purge");

    let fake = c.home_path().join("fake-java");
    std::fs::write(&fake, "#!/bin/sh\necho 'this is not java' >&2\nexit 7\n").unwrap();
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let p = write_profile(
        &c,
        "fake.toml",
        &format!("extends = \"fast\"\n[dist]\njava = \"{}\"\n", fake.display()),
    );
    let out = c.zkdev(&["up", "--profile", &p, "--port-offset", &offset, "--nodes", "1"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("exited at once with exit status 7 and printed: this is not java"),
        "{}",
        stderr(&out)
    );
    assert!(c.jvms().is_empty());
}

/// A node that runs out of heap: the error names java.lang.OutOfMemoryError and the setting to raise, in
/// `up`'s failure and in `status`'s hint for the crashed node. 4 MB of heap reproduces it on one node.
#[test]
fn a_node_out_of_heap_is_diagnosed_with_the_setting_to_raise() {
    let c = TestCluster::new(54);
    let p = write_profile(
        &c,
        "tiny-heap.toml",
        "extends = \"fast\"\n[jvm]\nheap_max_mb = 4\nheap_min_mb = 4\n",
    );
    let offset = c.offset.to_string();
    let out = c.zkdev(&[
        "up",
        "--profile",
        &p,
        "--port-offset",
        &offset,
        "--nodes",
        "1",
        "--keep-on-failure",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let diagnosis = "the JVM ran out of memory: `java.lang.OutOfMemoryError: Java heap space`; raise `heap_max_mb`";
    assert!(
        stderr(&out).contains("node 1 exited while starting: exit code 3; ") && stderr(&out).contains(diagnosis),
        "{}",
        stderr(&out)
    );
    let n = &c.status()["nodes"][0];
    assert_eq!(n["process"], "crashed", "{n}");
    assert!(n["detail"].as_str().unwrap().contains(diagnosis), "{n}");
    assert!(c.jvms().is_empty());
}

fn ephemeral_range() -> (u16, u16) {
    let text = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap();
    let v: Vec<u16> = text.split_whitespace().map(|s| s.parse().unwrap()).collect();
    (v[0], v[1])
}

/// Ports in the system's ephemeral range: `render` and `up` of a new cluster warn, naming the first such port,
/// the range and an offset that fits below it.
#[test]
fn ports_in_the_ephemeral_range_are_warned_about() {
    let c = TestCluster::new(55);
    let (lo, hi) = ephemeral_range();
    assert!(lo > 4100 && hi > lo + 200, "unusual ephemeral range {lo}-{hi}");
    // Node 1's election port (3881 + offset) lands just inside the range; its client and quorum ports below.
    // The kernel may hand that very port to any outgoing connection meanwhile (that is what the warning is
    // about): take one that is free now, and move on to another if it was taken before `up` bound it.
    let fits = format!("a --port-offset of at most {}", lo - 1 - 3881);
    for attempt in 0..5u16 {
        let port = lo + 100 + attempt * 37;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_err() {
            continue;
        }
        let offset = (port - 3881).to_string();
        let expected = format!(
            "warning: port {port} (node 1 election port) is in the system's ephemeral port range {lo}-{hi} \
             (/proc/sys/net/ipv4/ip_local_port_range)"
        );
        let out = c.zkdev(&["render", "--profile", "fast", "--port-offset", &offset, "--nodes", "1"]);
        assert_ok(&out, "render");
        assert!(stderr(&out).contains(&expected), "{}", stderr(&out));
        assert!(stderr(&out).contains(&fits), "{}", stderr(&out));

        let out = c.zkdev(&["up", "--profile", "fast", "--port-offset", &offset, "--nodes", "1"]);
        if !out.status.success() && stderr(&out).contains(&format!("port {port} (node 1 election port) is in use")) {
            let _ = c.zkdev(&["down", "--purge"]);
            continue;
        }
        assert_ok(&out, "up");
        assert!(stderr(&out).contains(&expected), "{}", stderr(&out));
        assert!(c.zkdev(&["status"]).status.success());
        return;
    }
    panic!("five ports in the ephemeral range were all taken by outgoing connections");
}

/// A cluster port that an outgoing connection holds as its local port is not "closing": the message says
/// whose connection it is, and nothing starts.
#[test]
fn a_port_held_by_an_outgoing_connection_is_named_as_such() {
    use nix::sys::socket::{bind, connect, socket, AddressFamily, SockFlag, SockType, SockaddrIn};
    use std::os::fd::AsRawFd;
    let c = TestCluster::new(56);
    let port = 2180 + 1 + c.offset;
    let server = TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let server_port = server.local_addr().unwrap().port();
    let fd = socket(AddressFamily::Inet, SockType::Stream, SockFlag::SOCK_CLOEXEC, None).unwrap();
    bind(fd.as_raw_fd(), &SockaddrIn::new(127, 0, 0, 1, port)).unwrap();
    connect(fd.as_raw_fd(), &SockaddrIn::new(127, 0, 0, 1, server_port)).unwrap();
    let _accepted = server.accept().unwrap();

    let out = c.zkdev(&[
        "up",
        "--profile",
        "fast",
        "--port-offset",
        &c.offset.to_string(),
        "--nodes",
        "1",
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "port {port} (node 1 client port) is in use, not by a listener: it is the local port of an outgoing \
             connection of pid {} (",
            std::process::id()
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!("to 127.0.0.1:{server_port} (ESTABLISHED)")),
        "{err}"
    );
    assert!(!err.contains("still closing"), "{err}");
    assert!(c.jvms().is_empty());
    assert!(!c.cluster_dir().exists());
}

/// verify on one voter: refused at once with what verify needs, not kill-leader's --force.
#[test]
fn verify_on_one_voter_says_it_needs_three() {
    let c = TestCluster::new(57);
    c.up(&["--nodes", "1"]);
    let pids = c.jvms();
    let t = std::time::Instant::now();
    let out = c.zkdev(&["verify", "--duration", "2"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("has 1 voter: after a kill 0 would remain where a quorum needs 1"),
        "{err}"
    );
    assert!(
        err.contains("at least 3 voters")
            && err.contains(&format!(
                "zkdev --cluster t57 up --nodes 3 --profile fast --port-offset {}`",
                c.offset
            )),
        "{err}"
    );
    assert!(!err.contains("--force"), "{err}");
    assert!(t.elapsed() < Duration::from_secs(10), "took {:?}", t.elapsed());
    assert_eq!(c.jvms(), pids, "verify touched the node");
}

/// `start observer` / `start follower` find stopped nodes by their role in the spec; `verify` with a paused
/// node says at once how to resume it.
#[test]
fn start_by_role_finds_stopped_nodes_and_verify_names_paused_or_stopped_ones() {
    let c = TestCluster::new(58);
    c.up(&["--nodes", "3", "--observers", "1"]);
    assert_ok(&c.zkdev(&["stop", "observer"]), "stop observer");
    let out = c.zkdev(&["start", "observer"]);
    assert_ok(&out, "start observer");
    assert!(
        stdout(&out).contains("node 4: started, serving as observer"),
        "{}",
        stdout(&out)
    );
    assert_eq!(srvr(c.client_port(4)).unwrap().mode, "observer");

    // Another follower still serves: `start follower` means the stopped one.
    let (fid, _, _) = c.node_in_mode("follower");
    assert_ok(&c.zkdev(&["stop", &fid.to_string()]), "stop follower");
    let out = c.zkdev(&["start", "follower"]);
    assert_ok(&out, "start follower");
    assert!(
        stdout(&out).contains(&format!("node {fid}: started, serving as")),
        "{}",
        stdout(&out)
    );

    // Nodes that waiting will not bring back are named at once, with the command that does.
    assert_ok(&c.zkdev(&["stop", "observer"]), "stop observer");
    let t = std::time::Instant::now();
    let out = c.zkdev(&["verify", "--duration", "2"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("node 4 is not running: `zkdev start 4` (or `zkdev up`) starts it again"),
        "{}",
        stderr(&out)
    );
    assert!(t.elapsed() < Duration::from_secs(10), "took {:?}", t.elapsed());
    assert_ok(&c.zkdev(&["start", "observer"]), "start observer");

    let (fid, _, _) = c.node_in_mode("follower");
    assert_ok(&c.zkdev(&["pause", &fid.to_string()]), "pause");
    let t = std::time::Instant::now();
    let out = c.zkdev(&["verify", "--duration", "2"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "verify needs every node serving, but node {fid} is paused (SIGSTOP)"
        )),
        "{err}"
    );
    assert!(err.contains(&format!("`zkdev resume {fid}`")), "{err}");
    assert!(!err.contains("zkdev wait"), "{err}");
    assert!(t.elapsed() < Duration::from_secs(10), "took {:?}", t.elapsed());
    assert_ok(&c.zkdev(&["resume", &fid.to_string()]), "resume");
    assert_ok(&c.zkdev(&["wait", "--timeout", "30"]), "wait");
}
