//! Seeing the ensemble truthfully (issue: status under faults, watch, wait, env, logs, smoke, foreground).
//! One cluster walks through the faults in order; `up --foreground` has its own.

mod common;

use std::time::{Duration, Instant};

use common::*;
use nix::sys::signal::Signal;

fn node_json(c: &TestCluster, id: u64) -> serde_json::Value {
    c.status()["nodes"][(id - 1) as usize].clone()
}

#[test]
fn status_watch_wait_smoke_and_logs_under_faults() {
    let c = TestCluster::new(1);
    c.up(&["--nodes", "3", "--observers", "1"]);

    // wait and smoke on a healthy ensemble.
    assert_ok(&c.zkdev(&["wait", "--timeout", "10"]), "wait");
    let out = c.zkdev(&["smoke", "--json"]);
    assert_ok(&out, "smoke");
    let smoke: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(smoke["agree"], true);
    assert_eq!(smoke["nodes"].as_array().unwrap().len(), 4);

    // env: the connect string a client needs.
    let out = c.zkdev(&["env"]);
    assert_ok(&out, "env");
    let connect = c.status()["connect_string"].as_str().unwrap().to_string();
    assert!(
        stdout(&out).contains(&format!("export ZK_CONNECT_STRING='{connect}'")),
        "{}",
        stdout(&out)
    );

    // logs: the named node's lines only; all nodes merged with a prefix.
    let out = c.zkdev(&["logs", "2", "-n", "30"]);
    assert_ok(&out, "logs 2");
    let text = stdout(&out);
    assert!(text.lines().count() >= 10, "{text}");
    assert!(text.contains("[myid:2]"));
    for id in [1, 3, 4] {
        assert!(
            !text.contains(&format!("[myid:{id}]")),
            "node {id}'s line in node 2's log:\n{text}"
        );
    }
    let out = c.zkdev(&["logs", "-n", "400"]);
    for id in 1..=4 {
        assert!(
            stdout(&out).contains(&format!("node{id} | ")),
            "no node{id} lines in merged logs"
        );
    }
    // Piped output has no colour unless asked for.
    assert!(!stdout(&out).contains('\x1b'));
    let out = c.zkdev(&["logs", "-n", "5", "--color", "always"]);
    assert!(stdout(&out).contains("\x1b["), "{}", stdout(&out));

    // A paused follower: status answers within a second and says paused; resumed, it serves again.
    let (fid, fpid, fport) = c.node_in_mode("follower");
    signal(fpid, Signal::SIGSTOP);
    poll(Duration::from_secs(2), "SIGSTOP to take effect", || {
        (process_state(fpid) == Some('T')).then_some(())
    });
    let t = Instant::now();
    let n = node_json(&c, fid);
    assert!(
        t.elapsed() < Duration::from_secs(1),
        "status took {:?} with a paused node",
        t.elapsed()
    );
    assert_eq!(n["process"], "paused");
    assert!(n["mode"].is_null());
    // wait gives up (a paused node never serves by waiting) and names the command that brings it back.
    let out = c.zkdev(&["wait", "--timeout", "1"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(&format!(
            "paused (SIGSTOP) and will not serve until resumed: `zkdev resume {fid}`"
        )),
        "{}",
        stderr(&out)
    );
    signal(fpid, Signal::SIGCONT);
    poll(Duration::from_secs(20), "the resumed follower to serve", || {
        let n = node_json(&c, fid);
        (n["process"] == "running" && n["mode"] == "follower").then_some(())
    });
    assert_eq!(srvr(fport).unwrap().mode, "follower");

    // watch (not a terminal): the leader killed by another process shows as lost, LOOKING, new leader.
    let (lid, lpid, _) = c.node_in_mode("leader");
    let old_epoch = node_json(&c, lid)["epoch"].as_u64().unwrap();
    let mut watch = c.spawn(&["watch", "--duration", "60"]);
    let mut lines = Lines::of(&mut watch);
    lines.wait_for(&format!("leader {lid} (epoch {old_epoch})"), Duration::from_secs(10));
    signal(lpid, Signal::SIGKILL);
    lines.wait_for(&format!("no serving leader (was {lid}"), Duration::from_secs(10));
    let elected = lines.wait_for("new leader", Duration::from_secs(20));
    let _ = watch.kill();
    let _ = watch.wait();
    assert!(
        lines.seen.iter().any(|l| l.contains("-> looking")),
        "no LOOKING phase seen:\n{}",
        lines.seen.join("\n")
    );
    // The supervisor reaped it: the exit status, and that zkdev did not send the signal.
    let crash = format!("node {lid} (pid {lpid}) crashed: killed by SIGKILL (not sent by zkdev)");
    assert!(
        lines.seen.iter().any(|l| l.contains(&crash)),
        "no {crash:?} in:\n{}",
        lines.seen.join("\n")
    );
    let new_leader = c.node_in_mode("leader");
    assert_ne!(new_leader.0, lid);
    let new_epoch = srvr(new_leader.2).unwrap().epoch();
    assert!(new_epoch > old_epoch);
    assert!(
        elected.contains(&format!("new leader {} (epoch {new_epoch})", new_leader.0)),
        "{elected}"
    );
    assert!(elected.contains("without a leader"), "{elected}");

    // The node killed behind zkdev's back is crashed, not stopped.
    let n = node_json(&c, lid);
    assert_eq!(n["process"], "crashed");
    assert!(
        n["detail"].as_str().unwrap().contains("SIGKILL (not sent by zkdev)"),
        "{n}"
    );

    // smoke names the node that cannot answer.
    let out = c.zkdev(&["smoke"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(stderr(&out).contains(&format!("node {lid} (")), "{}", stderr(&out));
    assert!(stdout(&out).contains("FAIL"));

    // Quorum lost: wait gives up within its timeout and says why.
    let (f2, _, _) = c.node_in_mode("follower");
    assert_ok(&c.zkdev(&["kill", &f2.to_string(), "--force"]), "kill a second voter");
    let t = Instant::now();
    let out = c.zkdev(&["wait", "--timeout", "2"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(t.elapsed() < Duration::from_secs(10));
    assert!(
        stderr(&out).contains("1 of 3 voters is up and a quorum needs 2"),
        "{}",
        stderr(&out)
    );

    // `up` starts the crashed and killed nodes again.
    c.up(&[]);
    assert_ok(&c.zkdev(&["wait", "--timeout", "10"]), "wait after up");
}

#[test]
fn ctrl_c_on_up_foreground_leaves_no_jvm() {
    let c = TestCluster::new(2);
    let offset = c.offset.to_string();
    let mut up = c.spawn(&[
        "up",
        "--profile",
        "fast",
        "--port-offset",
        &offset,
        "--nodes",
        "3",
        "--foreground",
    ]);
    let mut lines = Lines::of(&mut up);
    lines.wait_for("is serving", Duration::from_secs(60));
    lines.wait_for("watching", Duration::from_secs(10));
    assert_eq!(c.jvms().len(), 3);
    signal(up.id() as i32, Signal::SIGINT);
    let st = wait_exit(&mut up, Duration::from_secs(30));
    assert!(st.success(), "up --foreground exited with {st:?}");
    lines.wait_for("stopped cluster", Duration::from_secs(5));
    assert!(c.jvms().is_empty(), "JVMs left: {:?}", c.jvms());
    // Data kept: the cluster is stopped, not gone.
    let s = c.status();
    assert!(s["nodes"].as_array().unwrap().iter().all(|n| n["process"] == "stopped"));
}

/// `--color` and NO_COLOR / CLICOLOR_FORCE decide colour for every command that prints it (`logs`, `status`);
/// `--json` never carries it. Two nodes: a single node's log has no coloured prefix, and there is a leader.
#[test]
fn colour_follows_the_flag_and_the_environment() {
    let c = TestCluster::new(61);
    c.up(&["--nodes", "2"]);
    let run = |args: &[&str], env: &[(&str, &str)]| -> String {
        let mut cmd = c.cmd();
        cmd.env_remove("NO_COLOR")
            .env_remove("CLICOLOR_FORCE")
            .env_remove("CLICOLOR");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.args(args).output().expect("zkdev runs");
        assert_ok(&out, &format!("{env:?} zkdev {}", args.join(" ")));
        stdout(&out)
    };
    let coloured = |text: &str| text.contains('\x1b');
    let force = ("CLICOLOR_FORCE", "1");
    let no_color = ("NO_COLOR", "1");

    // logs: the merged prefix is coloured only when asked for.
    let logs = ["logs", "-n", "20"];
    let text = run(&[&["--color", "always"][..], &logs].concat(), &[]);
    assert!(text.contains("\x1b[36mnode1 |\x1b[0m "), "{text}");
    assert!(!coloured(&run(&logs, &[])), "piped output is plain");
    assert!(coloured(&run(&logs, &[force])), "CLICOLOR_FORCE colours a pipe");
    let text = run(&logs, &[no_color, force]);
    assert!(!coloured(&text), "NO_COLOR wins over CLICOLOR_FORCE:\n{text}");
    assert!(text.contains("node1 | "), "{text}");
    assert!(!coloured(&run(&[&["--color", "never"][..], &logs].concat(), &[force])));
    assert!(
        coloured(&run(&[&["--color", "always"][..], &logs].concat(), &[no_color])),
        "the flag wins"
    );

    // status: the leader's mode is coloured; the columns are the same with and without.
    let text = run(&["--color", "always", "status"], &[]);
    assert!(text.contains("leader\x1b[0m"), "{text}");
    let header = |t: &str| t.lines().next().unwrap_or_default().to_string();
    assert_eq!(header(&text), header(&run(&["status"], &[])));
    assert!(!coloured(&run(&["status"], &[])));
    assert!(!coloured(&run(&["status"], &[no_color, force])));
    assert!(!coloured(&run(&["--color", "never", "status"], &[force])));
    let json = run(&["--color", "always", "status", "--json"], &[]);
    assert!(!coloured(&json), "{json}");
    serde_json::from_str::<serde_json::Value>(&json).expect("status --json is JSON");
}
