//! `sessions` and `expire-session` against a real ensemble, with real clients (the zookeeper-client crate):
//! the servers list the session with its creator and timeout; expiring it deletes its ephemeral znode on
//! every node and the client itself observes Expired, while another client's session is untouched.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;
use zookeeper_client as zk;

fn ephemeral() -> zk::CreateOptions<'static> {
    zk::CreateMode::Ephemeral.with_acls(zk::Acls::anyone_all())
}

async fn connect(port: u16) -> zk::Client {
    tokio::time::timeout(
        Duration::from_secs(20),
        zk::Client::connector()
            .with_session_timeout(Duration::from_secs(10))
            .connect(&format!("127.0.0.1:{port}")),
    )
    .await
    .expect("client connects within 20 s")
    .expect("client connects")
}

/// Does `path` exist on the node at `port`, as a fresh client of that node reads it?
async fn exists_on(port: u16, path: &str) -> bool {
    let c = connect(port).await;
    c.check_stat(path).await.expect("check_stat").is_some()
}

#[test]
fn an_expired_session_loses_its_ephemerals_everywhere_and_its_client_sees_expired() {
    let c = TestCluster::new(17);
    c.up(&["--nodes", "3"]);
    let ports: Vec<u16> = (1..=3).map(|id| c.client_port(id)).collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();

    // Client A on node 1 owns /victim; client B on node 2 owns /bystander.
    let (a, b) = rt.block_on(async {
        let a = connect(ports[0]).await;
        let b = connect(ports[1]).await;
        a.create("/victim", b"a", &ephemeral())
            .await
            .expect("A creates its ephemeral");
        b.create("/bystander", b"b", &ephemeral())
            .await
            .expect("B creates its ephemeral");
        (a, b)
    });
    let a_id = format!("{:#x}", a.session_id().0 as u64);
    let b_id = format!("{:#x}", b.session_id().0 as u64);
    let a_timeout = a.session_timeout().as_millis() as u64;

    // `sessions` lists A from the servers themselves: created by node 1 (the top byte), on node 1.
    let out = c.zkdev(&["sessions", "--json"]);
    assert_ok(&out, "zkdev sessions --json");
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    let find = |id: &str| {
        listed["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == id)
            .unwrap_or_else(|| panic!("session {id} not listed: {listed}"))
            .clone()
    };
    let sa = find(&a_id);
    assert_eq!(sa["created_by"], 1, "{sa}");
    assert_eq!(sa["connected_to"], 1, "{sa}");
    assert_eq!(sa["timeout_ms"], a_timeout, "the negotiated timeout: {sa}");
    assert_eq!(sa["ephemerals"], serde_json::json!(["/victim"]), "{sa}");
    let sb = find(&b_id);
    assert_eq!(sb["created_by"], 2, "{sb}");
    assert_eq!(sb["connected_to"], 2, "{sb}");
    let text = stdout(&c.zkdev(&["sessions"]));
    assert!(text.contains(&a_id) && text.contains("/victim"), "{text}");

    let mut a_states = a.state_watcher();
    let out = c.zkdev(&["expire-session", &a_id, "--json"]);
    assert_ok(&out, "zkdev expire-session");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let e = &report["expired"][0];
    assert_eq!(e["id"], a_id.as_str(), "{report}");
    assert_eq!(e["ephemerals_deleted"], serde_json::json!(["/victim"]), "{report}");
    assert_ne!(e["via"], 1, "closed through another node than the client's: {report}");

    rt.block_on(async {
        // The client itself is told: its connection is dropped and the reconnect answers SESSION_EXPIRED.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let state = tokio::time::timeout(Duration::from_secs(30), a_states.changed())
                .await
                .expect("client A hears of its session within 30 s");
            if state == zk::SessionState::Expired {
                break;
            }
            assert!(Instant::now() < deadline, "client A never saw Expired (last {state:?})");
        }
        assert!(a.check_stat("/").await.is_err(), "an expired client's requests fail");
        // Every node: the ephemeral is gone, the bystander's is there, and B's session still works.
        for port in &ports {
            assert!(
                !exists_on(*port, "/victim").await,
                "/victim still on node at port {port}"
            );
            assert!(
                exists_on(*port, "/bystander").await,
                "/bystander gone on node at port {port}"
            );
        }
        assert_eq!(b.state(), zk::SessionState::SyncConnected);
        b.set_data("/bystander", b"still here", None)
            .await
            .expect("B's session is untouched");
    });
    let after = c.zkdev(&["sessions", "--json"]);
    let after: Value = serde_json::from_slice(&after.stdout).unwrap();
    let ids: Vec<&str> = after["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["id"].as_str())
        .collect();
    assert!(!ids.contains(&a_id.as_str()) && ids.contains(&b_id.as_str()), "{after}");

    // The journal has it, as a fault zkdev made; an unknown session and an unknown client are refused clearly.
    assert!(
        c.events().iter().any(|ev| ev["kind"] == "action"
            && ev["action"] == "expire-session"
            && ev["message"]
                .as_str()
                .is_some_and(|m| m.contains(&format!("session {a_id} expired")))),
        "no journal action for the expiry"
    );
    let again = c.zkdev(&["expire-session", &a_id]);
    assert!(!again.status.success());
    assert!(
        stderr(&again).contains("not one the ensemble knows"),
        "{}",
        stderr(&again)
    );
    let nobody = c.zkdev(&["expire-session", "--client", "127.0.0.1:1"]);
    assert!(!nobody.status.success());
    assert!(
        stderr(&nobody).contains("no session is connected from 127.0.0.1:1"),
        "{}",
        stderr(&nobody)
    );
    // --all --node 3: only the sessions connected to node 3.
    let c3 = rt.block_on(async {
        let c3 = connect(ports[2]).await;
        c3.create("/third", b"c", &ephemeral())
            .await
            .expect("C creates its ephemeral");
        c3
    });
    let c3_id = format!("{:#x}", c3.session_id().0 as u64);
    let r: Value =
        serde_json::from_slice(&c.zkdev(&["expire-session", "--all", "--node", "3", "--json"]).stdout).unwrap();
    let ids: Vec<&str> = r["expired"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["id"].as_str())
        .collect();
    assert_eq!(ids, vec![c3_id.as_str()], "{r}");
    rt.block_on(async {
        assert!(!exists_on(ports[0], "/third").await);
        assert!(exists_on(ports[0], "/bystander").await);
    });
    drop(c3);

    // This cluster was made without disk faults: `disk` says how to get them.
    let disk = c.zkdev(&["disk", "1", "--full"]);
    assert!(!disk.status.success());
    assert!(stderr(&disk).contains("--disk-faults"), "{}", stderr(&disk));
    drop(b);
    drop(a);
}
