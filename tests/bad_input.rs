//! Bad input and a hostile environment: a clear message, the right exit code, and nothing written or started.

mod common;

use std::net::TcpListener;

use common::*;

#[test]
fn a_profile_with_an_unknown_key_names_file_line_and_key() {
    let c = TestCluster::new(60);
    let profile = c.home_path().join("mine.toml");
    std::fs::write(
        &profile,
        "extends = \"fast\"\n[zookeeper]\ntick_time = 300\nsynclimit = 4\n",
    )
    .unwrap();
    let out = c.zkdev(&["up", "--profile", profile.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("profile {}: line 4, column 1", profile.display())),
        "{err}"
    );
    assert!(err.contains("unknown field `synclimit`"), "{err}");
    assert!(!c.cluster_dir().exists(), "nothing may be written");
}

#[test]
fn a_zero_tick_time_is_refused_with_its_line() {
    let c = TestCluster::new(61);
    let profile = c.home_path().join("zero.toml");
    std::fs::write(&profile, "[zookeeper]\ntick_time = 0\n").unwrap();
    let out = c.zkdev(&["up", "--profile", profile.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("line 2"), "{}", stderr(&out));
    assert!(!c.cluster_dir().exists());
}

#[test]
fn impossible_shapes_and_names_are_usage_errors() {
    let c = TestCluster::new(62);
    let out = c.zkdev(&["up", "--nodes", "0", "--observers", "1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--nodes 0"), "{}", stderr(&out));

    let out = c.zkdev(&["up", "--port-offset", "60000"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("would be 68081"), "{}", stderr(&out));

    let out = assert_cmd::Command::cargo_bin("zkdev")
        .unwrap()
        .args(["--home", c.home_path().to_str().unwrap(), "--cluster", "../evil", "up"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("invalid --cluster `../evil`"), "{}", stderr(&out));

    let out = c.zkdev(&["up", "--profile", "nope"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("no profile named `nope`; built-in profiles are: default, fast"));
    // Nothing written at all: not even a lock file.
    assert_eq!(std::fs::read_dir(c.home_path()).unwrap().count(), 0);
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
