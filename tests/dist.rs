//! Installations without the internet: release tarballs assembled from Debian's jars (a 3.5+ `-bin` layout
//! and a 3.4 layout), served with their `.sha512` from a local HTTP server on 127.0.0.1, installed through
//! `--mirror`, run, and switched between with a rolling upgrade.

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use common::*;
use sha2::{Digest, Sha512};

/// What the test server does with a path.
#[derive(Clone)]
enum Serve {
    Whole(Vec<u8>),
    /// Announce the full length, send half, hang up: a download that breaks off.
    Truncated(Vec<u8>),
}

/// A tiny HTTP/1.1 file server on an ephemeral loopback port; lives as long as the test process.
fn serve(files: HashMap<String, Serve>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let files = Arc::new(files);
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let files = files.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                let mut request = String::new();
                reader.read_line(&mut request).unwrap_or(0);
                loop {
                    let mut header = String::new();
                    if reader.read_line(&mut header).unwrap_or(0) == 0 || header == "\r\n" {
                        break;
                    }
                }
                let path = request.split_whitespace().nth(1).unwrap_or("/").to_string();
                let mut conn = conn;
                match files.get(&path) {
                    Some(Serve::Whole(body)) => {
                        let _ = write!(
                            conn,
                            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                            body.len()
                        );
                        let _ = conn.write_all(body);
                    }
                    Some(Serve::Truncated(body)) => {
                        let _ = write!(
                            conn,
                            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                            body.len()
                        );
                        let _ = conn.write_all(&body[..body.len() / 2]);
                    }
                    None => {
                        let _ = write!(
                            conn,
                            "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                        );
                    }
                }
            });
        }
    });
    format!("http://127.0.0.1:{port}/")
}

fn copy(from: &str, to: &Path) {
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    std::fs::copy(format!("/usr/share/java/{from}"), to).unwrap_or_else(|e| panic!("copy {from}: {e}"));
}

/// A release tarball whose jars are Debian's 3.8.0 under the file names of `version`'s release (the jar's
/// manifest pulls its dependencies from /usr/share/java). `legacy`: the 3.4 layout, main jar at the top.
fn tarball(work: &Path, version: &str, legacy: bool) -> Vec<u8> {
    let top = if legacy {
        format!("zookeeper-{version}")
    } else {
        format!("apache-zookeeper-{version}-bin")
    };
    let root = work.join(format!("build-{version}"));
    let dir = root.join(&top);
    let main = if legacy {
        dir.join(format!("zookeeper-{version}.jar"))
    } else {
        dir.join(format!("lib/zookeeper-{version}.jar"))
    };
    copy("zookeeper.jar", &main);
    copy(
        "zookeeper-jute.jar",
        &dir.join(format!("lib/zookeeper-jute-{version}.jar")),
    );
    copy("slf4j-log4j12.jar", &dir.join("lib/slf4j-log4j12-1.7.32.jar"));
    copy("log4j-1.2.jar", &dir.join("lib/log4j-1.2.17.jar"));
    std::fs::create_dir_all(dir.join("conf")).unwrap();
    std::fs::write(dir.join("conf/zoo_sample.cfg"), "tickTime=2000\n").unwrap();
    let out = root.join("release.tar.gz");
    let st = Command::new("tar")
        .arg("-czf")
        .arg(&out)
        .arg("-C")
        .arg(&root)
        .arg(&top)
        .status()
        .unwrap();
    assert!(st.success());
    std::fs::read(out).unwrap()
}

fn sha512_line(body: &[u8], file: &str) -> Vec<u8> {
    let hex: String = Sha512::digest(body).iter().map(|b| format!("{b:02x}")).collect();
    format!("{hex}  {file}\n").into_bytes()
}

fn release(files: &mut HashMap<String, Serve>, version: &str, file: &str, body: Vec<u8>, sha: Vec<u8>, truncate: bool) {
    let path = format!("/zookeeper-{version}/{file}");
    files.insert(format!("{path}.sha512"), Serve::Whole(sha));
    files.insert(
        path,
        if truncate {
            Serve::Truncated(body)
        } else {
            Serve::Whole(body)
        },
    );
}

fn cache_entries(home: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(home.join("dists"))
        .map(|r| r.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn install_through_a_mirror_run_it_and_upgrade_rolling() {
    let c = TestCluster::new(5);
    let work = tempfile::tempdir().unwrap();
    let mut files = HashMap::new();
    let bin = tarball(work.path(), "3.9.5", false);
    let sha = sha512_line(&bin, "apache-zookeeper-3.9.5-bin.tar.gz");
    release(
        &mut files,
        "3.9.5",
        "apache-zookeeper-3.9.5-bin.tar.gz",
        bin,
        sha,
        false,
    );
    let legacy = tarball(work.path(), "3.4.14", true);
    let sha = sha512_line(&legacy, "zookeeper-3.4.14.tar.gz");
    release(&mut files, "3.4.14", "zookeeper-3.4.14.tar.gz", legacy, sha, false);
    // A tarball whose published checksum does not match.
    let bad = tarball(work.path(), "3.6.4", false);
    release(
        &mut files,
        "3.6.4",
        "apache-zookeeper-3.6.4-bin.tar.gz",
        bad,
        sha512_line(b"something else", "x"),
        false,
    );
    // A download that breaks off half way.
    let cut = tarball(work.path(), "3.7.2", false);
    let sha = sha512_line(&cut, "apache-zookeeper-3.7.2-bin.tar.gz");
    release(&mut files, "3.7.2", "apache-zookeeper-3.7.2-bin.tar.gz", cut, sha, true);
    let mirror = serve(files);

    // A good install: verified, unpacked, listed with its layout.
    let out = c.zkdev(&["dist", "install", "3.9.5", "--mirror", &mirror]);
    assert_ok(&out, "dist install 3.9.5");
    assert!(stdout(&out).contains("checksum verified"), "{}", stdout(&out));
    let out = c.zkdev(&["dist", "install", "3.4.14", "--mirror", &mirror]);
    assert_ok(&out, "dist install 3.4.14");
    let list: serde_json::Value = serde_json::from_slice(&c.zkdev(&["dist", "list", "--json"]).stdout).unwrap();
    let row = |v: &str| {
        list.as_array()
            .unwrap()
            .iter()
            .find(|r| r["version"] == v)
            .cloned()
            .unwrap_or_else(|| panic!("{v} not listed: {list}"))
    };
    assert_eq!(row("3.9.5")["source"], "cache");
    assert_eq!(row("3.9.5")["layout"], "tarball");
    assert_eq!(row("3.4.14")["layout"], "legacytarball");

    // A checksum mismatch and a broken-off download leave nothing in the cache.
    let before = cache_entries(c.home_path());
    let out = c.zkdev(&["dist", "install", "3.6.4", "--mirror", &mirror]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("checksum mismatch"), "{}", stderr(&out));
    let out = c.zkdev(&["dist", "install", "3.7.2", "--mirror", &mirror]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("broke off"), "{}", stderr(&out));
    let out = c.zkdev(&["dist", "install", "3.5.10", "--mirror", &mirror]);
    assert_eq!(out.status.code(), Some(3));
    assert!(stderr(&out).contains("404"), "{}", stderr(&out));
    assert_eq!(
        cache_entries(c.home_path()),
        before,
        "a failed install left something behind"
    );

    // A 3+1 ensemble on the installed release.
    c.up(&["--dist", "3.9.5", "--nodes", "3", "--observers", "1"]);
    let spec = std::fs::read_to_string(c.cluster_dir().join("cluster.toml")).unwrap();
    assert!(spec.contains("version = \"3.9.5\""), "{spec}");
    let s = c.status();
    let leaders: Vec<_> = s["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| srvr(n["client_port"].as_u64().unwrap() as u16).is_some_and(|r| r.mode == "leader"))
        .collect();
    assert_eq!(leaders.len(), 1, "{s}");

    // Rolling upgrade to the 3.4-layout release: a serving leader at every moment but the final handover.
    let out = c.zkdev(&["rolling-restart", "--dist", "3.4.14", "--json"]);
    assert_ok(&out, "rolling-restart --dist 3.4.14");
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let steps = r["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 4);
    let last = steps[3]["id"].as_u64().unwrap();
    assert_eq!(steps[3]["was"], "leader", "the leader goes last: {r}");
    for w in r["leaderless"].as_array().unwrap() {
        assert_eq!(
            w["during_node"].as_u64(),
            Some(last),
            "no leader while a non-leader restarted: {r}"
        );
    }
    assert_eq!(r["to_version"], "3.4.14");
    let cfg = std::fs::read_to_string(c.cluster_dir().join("node1/conf/zoo.cfg")).unwrap();
    assert!(
        !cfg.contains("4lw.commands.whitelist") && !cfg.contains("admin."),
        "3.4 keys only:\n{cfg}"
    );
    assert_ok(&c.zkdev(&["wait", "--timeout", "10"]), "wait after the upgrade");
    assert_ok(&c.zkdev(&["smoke"]), "smoke after the upgrade");

    // Removing from the cache.
    assert_ok(&c.zkdev(&["down", "--purge"]), "down");
    assert_ok(&c.zkdev(&["dist", "remove", "3.9.5"]), "dist remove");
    assert!(!c.home_path().join("dists/3.9.5").exists());
}

/// An upstream-style installation (`lib/*.jar`) with Jetty but without the servlet API: the AdminServer cannot
/// start (a WARN with `NoClassDefFoundError: javax/servlet/Servlet`), yet ZooKeeper serves. `up` succeeds and
/// shows the warning instead of stopping a serving ensemble. The jars are links to Debian's, in a temporary
/// directory: the system's installation is not touched.
#[test]
fn an_installation_without_the_servlet_api_serves_and_up_shows_the_warning() {
    let system = Path::new("/usr/share/java");
    let zk_home = tempfile::tempdir().unwrap();
    let lib = zk_home.path().join("lib");
    std::fs::create_dir_all(&lib).unwrap();
    for (name, jar) in [
        ("zookeeper-3.8.0.jar", "zookeeper.jar"),
        ("zookeeper-jute-3.8.0.jar", "zookeeper-jute.jar"),
        ("slf4j-log4j12.jar", "slf4j-log4j12.jar"),
        ("log4j-1.2.jar", "log4j-1.2.jar"),
        ("netty-codec.jar", "netty-codec.jar"),
        ("netty-resolver.jar", "netty-resolver.jar"),
        (
            "netty-transport-native-unix-common.jar",
            "netty-transport-native-unix-common.jar",
        ),
        ("jetty-servlet.jar", "jetty9-servlet.jar"),
    ] {
        std::os::unix::fs::symlink(system.join(jar), lib.join(name)).unwrap();
    }
    // The fast profile turns the AdminServer off; this one brings it back.
    let profile = zk_home.path().join("admin.toml");
    std::fs::write(&profile, "extends = \"fast\"\n[zookeeper]\nadmin_server = true\n").unwrap();
    let c = TestCluster::new(38);
    let offset = c.offset.to_string();
    let home = zk_home.path().to_str().unwrap();
    let out = c.zkdev(&[
        "up",
        "--profile",
        profile.to_str().unwrap(),
        "--port-offset",
        &offset,
        "--nodes",
        "3",
        "--zk-home",
        home,
        "--timeout",
        "60",
    ]);
    assert_ok(&out, "zkdev up on an installation without the servlet API");
    for id in 1..=3 {
        assert!(srvr(c.client_port(id)).is_some(), "node {id} serves");
    }
    let log = std::fs::read_to_string(c.cluster_dir().join("node2/logs/zookeeper.log")).unwrap();
    assert!(
        log.contains("javax/servlet/Servlet"),
        "the installation lacks the servlet API as meant"
    );
    assert!(
        stderr(&out).contains("javax/servlet/Servlet") && stderr(&out).contains("warning"),
        "up shows the warning: {}",
        stderr(&out)
    );
}
