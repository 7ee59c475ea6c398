//! What client test suites need from an ensemble: TLS on every node's own secure port (Netty on Debian's
//! package), per-node ports from a profile, added four-letter words, and `up` failing fast with the cause.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

fn write_profile(c: &TestCluster, name: &str, text: &str) -> String {
    let p = c.home_path().join(name);
    std::fs::write(&p, text).unwrap();
    p.to_string_lossy().into_owned()
}

/// Send a four-letter word to 127.0.0.1:port and read the answer (empty when closed unanswered).
fn word(port: u16, w: &str) -> String {
    let mut s = TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(2)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    s.write_all(w.as_bytes()).unwrap();
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    text
}

/// `openssl s_client` against a port with the cluster's CA and client certificate: (handshake verified, output).
fn openssl(port: u16, tls: &std::path::Path) -> (bool, String) {
    let out = Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &format!("127.0.0.1:{port}"),
            "-verify_return_error",
            "-CAfile",
        ])
        .arg(tls.join("ca.pem"))
        .arg("-cert")
        .arg(tls.join("client-cert.pem"))
        .arg("-key")
        .arg(tls.join("client-key.pem"))
        .stdin(std::process::Stdio::null())
        .output()
        .expect("openssl runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (text.contains("Verify return code: 0 (ok)"), text)
}

/// `up --tls` on the fast profile plus added words and a per-node port: every node serves TLS on its own
/// secure port (a real TLS client and the Rust client's TLS via `smoke --tls`), a plain client gets nothing
/// from it, the added words answer, every port is where status and env say, and `verify --tls` loses
/// nothing over TLS through a leader kill.
#[test]
fn a_tls_ensemble_serves_every_node_over_tls() {
    let c = TestCluster::new(13);
    let profile = write_profile(
        &c,
        "tls.toml",
        "extends = \"fast\"\n[zookeeper]\nfour_letter_words = [\"cons\", \"wchs\"]\n[zookeeper.extra]\n\
         \"zkdev.test.node\" = \"{id}\"\n\"zkdev.test.port\" = \"{port:6300}\"\n",
    );
    let offset = c.offset.to_string();
    let out = c.zkdev(&["up", "--profile", &profile, "--port-offset", &offset, "--tls"]);
    assert_ok(&out, "up --tls");
    let text = stdout(&out);
    let tls = c.cluster_dir().join("tls");
    assert!(
        text.contains(&format!("trust store {}", tls.join("ca.pem").display())),
        "{text}"
    );
    assert!(text.contains("no password"), "{text}");

    let status = c.status();
    let nodes = status["nodes"].as_array().unwrap().clone();
    assert_eq!(nodes.len(), 3);
    let mut secure = Vec::new();
    for n in &nodes {
        let id = n["id"].as_u64().unwrap() as u16;
        let port = n["secure_client_port"].as_u64().unwrap() as u16;
        assert_eq!(port, 5180 + id + c.offset, "{n}");
        assert_eq!(n["other_ports"]["zkdev.test.port"], 6300 + id + c.offset, "{n}");
        secure.push(port);

        // A real TLS client completes the handshake and verifies the node's certificate for 127.0.0.1.
        let (ok, out) = openssl(port, &tls);
        assert!(ok, "node {id}: TLS handshake failed:\n{out}");
        assert!(out.contains(&format!("CN = zkdev t13 node {id}")), "{out}");
        // A plain client gets no answer from the secure port.
        assert_eq!(
            word(port, "srvr"),
            "",
            "node {id}: the secure port answered a plain srvr"
        );
        // The plain port still answers, and the added words are allowed; one not added is not.
        let client = n["client_port"].as_u64().unwrap() as u16;
        assert!(
            word(client, "wchs").contains("connections watching"),
            "{}",
            word(client, "wchs")
        );
        assert!(word(client, "cons").contains("queued="), "{}", word(client, "cons"));
        assert!(
            word(client, "wchc").contains("not in the whitelist"),
            "{}",
            word(client, "wchc")
        );
        let cfg = std::fs::read_to_string(c.cluster_dir().join(format!("node{id}/conf/zoo.cfg"))).unwrap();
        assert!(cfg.contains(&format!("\nzkdev.test.node={id}\n")), "{cfg}");
    }
    let expected: Vec<String> = secure.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    assert_eq!(status["secure_connect_string"], expected.join(","));
    let env = stdout(&c.zkdev(&["env"]));
    assert!(
        env.contains(&format!("export ZK_SECURE_CONNECT_STRING='{}'", expected.join(","))),
        "{env}"
    );

    // The Rust client over TLS to every node's secure port.
    let out = c.zkdev(&["smoke", "--tls", "--json"]);
    assert_ok(&out, "smoke --tls");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["tls"], true);
    assert_eq!(v["agree"], true, "{v}");
    assert_eq!(v["nodes"].as_array().unwrap().len(), 3);

    // verify over TLS: the writer and the per-node checker on the secure ports, through a leader kill.
    let out = c.zkdev(&["verify", "--tls", "--kills", "1", "--duration", "6", "--json"]);
    assert_ok(&out, "verify --tls");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["tls"], true, "{v}");
    assert_eq!(v["lost"], 0, "{v}");
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["kills"].as_array().unwrap().len(), 1, "{v}");
    assert!(v["acknowledged"].as_u64().unwrap() > 0, "{v}");
    for n in v["nodes"].as_array().unwrap() {
        assert_eq!(n["present"], v["acknowledged"], "{v}");
        assert!(n["error"].is_null(), "{v}");
    }
}

/// Per-node placeholders render distinct ports; a taken one is refused by name before anything starts; the
/// same fixed port on every node (the old `[zookeeper.extra] secureClientPort` trap) is refused too.
#[test]
fn per_node_ports_are_distinct_and_checked_by_name() {
    let c = TestCluster::new(14);
    let offset = c.offset.to_string();
    let profile = write_profile(
        &c,
        "ports.toml",
        "extends = \"fast\"\n[zookeeper.extra]\n\"myPlugin.port\" = \"{port:6300}\"\n",
    );
    let out = c.zkdev(&["render", "--profile", &profile, "--port-offset", &offset]);
    assert_ok(&out, "render");
    for id in 1..=3u16 {
        assert!(
            stdout(&out).contains(&format!("\nmyPlugin.port={}\n", 6300 + id + c.offset)),
            "{}",
            stdout(&out)
        );
    }
    let taken = 6300 + 2 + c.offset;
    let _holder = TcpListener::bind(("127.0.0.1", taken)).unwrap();
    let out = c.zkdev(&["up", "--profile", &profile, "--port-offset", &offset]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("port {taken} (node 2 `myPlugin.port` port) is in use")),
        "{}",
        stderr(&out)
    );
    assert!(c.jvms().is_empty());

    let same = write_profile(
        &c,
        "same.toml",
        "extends = \"fast\"\n[zookeeper.extra]\nsecureClientPort = 16999\nsecureClientPortAddress = \"127.0.0.1\"\n",
    );
    let out = c.zkdev(&["up", "--profile", &same, "--port-offset", &offset]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out)
            .contains("port 16999 would be both node 1 `secureClientPort` port and node 2 `secureClientPort` port"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("{port:BASE}"), "{}", stderr(&out));
}

/// A node whose client port is taken after zkdev checked it dies of a BindException: `up` fails within
/// seconds and quotes the exception's first line, not only the bottom of its stack trace.
#[test]
fn a_bind_exception_fails_up_at_once_with_the_line_quoted() {
    let c = TestCluster::new(15);
    let offset = c.offset.to_string();
    let mut up = c.spawn(&["up", "--profile", "fast", "--port-offset", &offset, "--timeout", "60"]);
    // Once the JVMs exist the port check is behind us; a JVM needs far longer than this to bind its port.
    poll(Duration::from_secs(30), "the first JVM", || {
        (!c.jvms().is_empty()).then_some(())
    });
    let port = c.client_port(3);
    let _thief = TcpListener::bind(("127.0.0.1", port)).expect("node 3's client port is still free");
    let t = Instant::now();
    let status = wait_exit(&mut up, Duration::from_secs(30));
    let waited = t.elapsed();
    let mut err = String::new();
    up.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(waited < Duration::from_secs(5), "up took {waited:?} to fail:\n{err}");
    assert!(err.contains("node 3"), "{err}");
    assert!(err.contains("java.net.BindException: Address already in use"), "{err}");
    poll(Duration::from_secs(10), "no JVM left", || {
        c.jvms().is_empty().then_some(())
    });
}

/// A node added to a TLS ensemble with quorum TLS (`zkdev add` on `up --reconfig`) gets a certificate from the
/// cluster's own CA: it syncs with the leader over TLS, the reconfig commits it on every member, and a TLS
/// client reaches it on its secure port like the others.
#[test]
fn a_node_added_to_a_tls_ensemble_speaks_tls() {
    let c = TestCluster::new(35);
    let profile = write_profile(
        &c,
        "qtls.toml",
        "extends = \"fast\"\n[tls]\nenabled = true\nquorum = true\n",
    );
    let offset = c.offset.to_string();
    let out = c.zkdev(&["up", "--profile", &profile, "--port-offset", &offset, "--reconfig"]);
    assert_ok(&out, "up --reconfig with quorum TLS");
    let out = c.zkdev(&["add", "--json"]);
    assert_ok(&out, "add");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["members_after"], "voters 1,2,3,4", "{v}");
    assert!(c.cluster_dir().join("tls/node4.pem").is_file());
    let out = c.zkdev(&["smoke", "--tls", "--json"]);
    assert_ok(&out, "smoke --tls");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["agree"], true, "{v}");
    assert_eq!(v["nodes"].as_array().unwrap().len(), 4, "{v}");
}
