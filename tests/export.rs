//! Exports for several machines, parsed back into typed structures and checked for the invariants that make
//! an ensemble: ids 1..N+M once each, one identical server list, observers marked, a PDB that keeps a
//! quorum, the standard ports, timing equal to the profile's. These engines are not run here (no Kubernetes
//! or Docker on this machine); what they get is checked, and validated by the engines' own schemas
//! (`kubernetes-validate --strict`, the compose-spec schema through `check-jsonschema`; both offline, installed
//! by scripts/install-deps).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::*;
use serde::Deserialize;

const PROFILE: &str = "extends = \"fast\"\n[zookeeper]\ntick_time = 300\nsync_limit = 7\n\
[zookeeper.extra]\nlocalSessionsEnabled = \"true\"\n[jvm]\nheap_max_mb = 48\n";

fn export(c: &TestCluster, args: &[&str]) -> String {
    let profile = c.home_path().join("p.toml");
    std::fs::write(&profile, PROFILE).unwrap();
    let mut all = vec!["export"];
    all.extend_from_slice(args);
    all.extend_from_slice(&[
        "--nodes",
        "3",
        "--observers",
        "2",
        "--dist",
        "3.9.5",
        "--profile",
        profile.to_str().unwrap(),
    ]);
    let out = c.zkdev(&all);
    assert_ok(&out, "export");
    stdout(&out)
}

/// Snapshots must not depend on the temporary home's name.
fn redact(c: &TestCluster, text: &str) -> String {
    text.replace(c.home_path().to_str().unwrap(), "[HOME]")
}

fn server_lines(cfg: &str) -> Vec<String> {
    cfg.lines()
        .filter(|l| l.starts_with("server."))
        .map(String::from)
        .collect()
}

fn cfg_value<'a>(cfg: &'a str, key: &str) -> Option<&'a str> {
    cfg.lines().find_map(|l| l.strip_prefix(&format!("{key}=")))
}

/// Timing values and the extra key from PROFILE, in a zoo.cfg.
fn assert_profile_in(cfg: &str) {
    assert_eq!(cfg_value(cfg, "tickTime"), Some("300"), "{cfg}");
    assert_eq!(cfg_value(cfg, "syncLimit"), Some("7"));
    assert_eq!(cfg_value(cfg, "initLimit"), Some("20"), "inherited from fast");
    assert_eq!(cfg_value(cfg, "localSessionsEnabled"), Some("true"));
    assert_eq!(cfg_value(cfg, "clientPort"), Some("2181"));
}

#[derive(Deserialize)]
struct Doc {
    kind: String,
    metadata: Meta,
    #[serde(default)]
    data: BTreeMap<String, String>,
    #[serde(default)]
    spec: serde_norway::Value,
}

#[derive(Deserialize)]
struct Meta {
    name: String,
}

#[derive(Deserialize)]
struct StatefulSetSpec {
    replicas: usize,
    #[serde(rename = "serviceName")]
    service_name: String,
    template: PodTemplate,
}

#[derive(Deserialize)]
struct PodTemplate {
    spec: PodSpec,
}

#[derive(Deserialize)]
struct PodSpec {
    containers: Vec<Container>,
}

#[derive(Deserialize)]
struct Container {
    image: String,
    command: Vec<String>,
    env: Vec<EnvVar>,
    #[serde(rename = "readinessProbe")]
    readiness: serde_norway::Value,
    resources: serde_norway::Value,
}

#[derive(Deserialize)]
struct EnvVar {
    name: String,
    value: String,
}

#[test]
fn k8s_manifests_describe_the_same_ensemble() {
    let c = TestCluster::new(30);
    let text = export(&c, &["k8s", "--namespace", "zk"]);
    insta::assert_snapshot!("k8s_3_plus_2", redact(&c, &text));
    let docs: Vec<Doc> = serde_norway::Deserializer::from_str(&text)
        .map(|d| Doc::deserialize(d).unwrap())
        .collect();
    let kinds: Vec<&str> = docs.iter().map(|d| d.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "ConfigMap",
            "Service",
            "Service",
            "PodDisruptionBudget",
            "StatefulSet",
            "StatefulSet"
        ]
    );

    let cm = &docs[0];
    let (voter_cfg, observer_cfg) = (&cm.data["zoo.cfg"], &cm.data["zoo-observer.cfg"]);
    assert_eq!(
        server_lines(voter_cfg),
        server_lines(observer_cfg),
        "one server list for every node"
    );
    let servers = server_lines(voter_cfg);
    let ids: BTreeSet<u32> = servers
        .iter()
        .map(|l| l["server.".len()..l.find('=').unwrap()].parse().unwrap())
        .collect();
    assert_eq!(ids, (1..=5).collect());
    assert_eq!(servers.iter().filter(|l| l.ends_with(":observer")).count(), 2);
    assert!(
        servers[0].starts_with("server.1=zk-t30-0.zk-t30-hs.zk.svc.cluster.local:2888:3888"),
        "{servers:?}"
    );
    assert!(servers[3].starts_with("server.4=zk-t30-obs-0."), "{servers:?}");
    assert!(!voter_cfg.contains("peerType=observer") && observer_cfg.contains("peerType=observer"));
    assert_profile_in(voter_cfg);
    assert_profile_in(observer_cfg);
    assert!(
        voter_cfg.contains("4lw.commands.whitelist=srvr"),
        "the readiness probe's srvr is whitelisted"
    );

    let pdb = &docs[3];
    assert_eq!(pdb.spec["minAvailable"].as_u64(), Some(2), "a quorum of 3 voters");
    assert_eq!(
        pdb.spec["selector"]["matchLabels"]["zookeeper/role"].as_str(),
        Some("participant")
    );

    let sets: Vec<(String, StatefulSetSpec)> = docs[4..]
        .iter()
        .map(|d| {
            (
                d.metadata.name.clone(),
                serde_norway::from_value(d.spec.clone()).unwrap(),
            )
        })
        .collect();
    assert_eq!(sets[0].0, "zk-t30");
    assert_eq!(sets[0].1.replicas, 3);
    assert_eq!(sets[1].1.replicas, 2);
    for (_, s) in &sets {
        assert_eq!(s.service_name, "zk-t30-hs");
        let ct = &s.template.spec.containers[0];
        assert_eq!(ct.image, "zookeeper:3.9.5");
        let flags = &ct.env.iter().find(|e| e.name == "SERVER_JVMFLAGS").unwrap().value;
        assert!(flags.contains("-Xmx48m"), "{flags}");
        assert_eq!(
            ct.resources["requests"]["memory"].as_str(),
            Some("144Mi"),
            "heap + 96 Mi"
        );
        let probe = ct.readiness["exec"]["command"].as_sequence().unwrap();
        let probe: Vec<&str> = probe.iter().map(|v| v.as_str().unwrap()).collect();
        assert_eq!(probe[..2], ["sh", "-c"], "no JVM per probe: {probe:?}");
        assert!(probe[2].starts_with("echo srvr | nc -w 2 127.0.0.1 2181"), "{probe:?}");
    }
    // myid from the ordinal: voters start at 1, observers right after them.
    assert!(sets[0].1.template.spec.containers[0].command[2].contains("ZOO_MY_ID=$((ordinal + 1))"));
    assert!(sets[1].1.template.spec.containers[0].command[2].contains("ZOO_MY_ID=$((ordinal + 4))"));
    assert!(sets[1].1.template.spec.containers[0].command[2].contains("zoo-observer.cfg"));
}

#[derive(Deserialize)]
struct Compose {
    services: BTreeMap<String, Service>,
    volumes: BTreeMap<String, serde_norway::Value>,
}

#[derive(Deserialize)]
struct Service {
    image: String,
    environment: BTreeMap<String, String>,
    ports: Vec<String>,
    volumes: Vec<String>,
    healthcheck: serde_norway::Value,
}

#[test]
fn compose_file_describes_the_same_ensemble() {
    let c = TestCluster::new(31);
    let text = export(&c, &["compose"]);
    insta::assert_snapshot!("compose_3_plus_2", redact(&c, &text));
    let compose: Compose = serde_norway::from_str(&text).unwrap();
    assert_eq!(compose.services.len(), 5);
    let ids: BTreeSet<u32> = compose
        .services
        .values()
        .map(|s| s.environment["ZOO_MY_ID"].parse().unwrap())
        .collect();
    assert_eq!(ids, (1..=5).collect());
    let lists: BTreeSet<&String> = compose
        .services
        .values()
        .map(|s| &s.environment["ZOO_SERVERS"])
        .collect();
    assert_eq!(lists.len(), 1, "one server list for every node");
    let list = lists.into_iter().next().unwrap();
    assert!(list.starts_with("server.1=zk1:2888:3888;2181 "), "3.5+ syntax: {list}");
    assert_eq!(list.matches(":observer;").count(), 2);
    for (name, s) in &compose.services {
        let id: u32 = s.environment["ZOO_MY_ID"].parse().unwrap();
        assert_eq!(name, &format!("zk{id}"));
        assert_eq!(s.image, "zookeeper:3.9.5");
        assert_eq!(s.environment["ZOO_TICK_TIME"], "300");
        assert_eq!(s.environment["ZOO_SYNC_LIMIT"], "7");
        let extra = &s.environment["ZOO_CFG_EXTRA"];
        assert!(extra.contains("localSessionsEnabled=true"), "{extra}");
        assert_eq!(extra.contains("peerType=observer"), id > 3, "{name}: {extra}");
        assert_eq!(
            s.ports,
            vec![format!("127.0.0.1:{}:2181", 2180 + id)],
            "published on loopback only"
        );
        assert!(s.volumes.iter().any(|v| v == &format!("zk{id}-data:/data")));
        assert!(compose.volumes.contains_key(&format!("zk{id}-data")));
        assert!(s.healthcheck["test"].as_sequence().is_some());
    }
}

#[test]
fn host_bundles_describe_the_same_ensemble() {
    let c = TestCluster::new(32);
    let out = c.home_path().join("bundle");
    export(
        &c,
        &["hosts", "zk-a,zk-b,zk-c,zk-d,zk-e", "--out", out.to_str().unwrap()],
    );
    let hosts = ["zk-a", "zk-b", "zk-c", "zk-d", "zk-e"];
    let mut lists = BTreeSet::new();
    let mut ids = BTreeSet::new();
    for (i, h) in hosts.iter().enumerate() {
        let cfg = std::fs::read_to_string(out.join(h).join("conf/zoo.cfg")).unwrap();
        assert_profile_in(&cfg);
        assert!(
            !cfg.contains("clientPortAddress"),
            "real hosts listen on their own interfaces"
        );
        assert_eq!(cfg.contains("peerType=observer"), i >= 3);
        lists.insert(server_lines(&cfg));
        ids.insert(
            std::fs::read_to_string(out.join(h).join("data/myid"))
                .unwrap()
                .trim()
                .parse::<u32>()
                .unwrap(),
        );
        let start = out.join(h).join("start.sh");
        let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&start).unwrap().permissions());
        assert_eq!(mode & 0o111, 0o111, "start.sh is executable");
        assert!(std::fs::read_to_string(&start)
            .unwrap()
            .contains("zkServer.sh\" start-foreground"));
    }
    assert_eq!(ids, (1..=5).collect());
    assert_eq!(lists.len(), 1, "one server list for every host");
    let list = lists.into_iter().next().unwrap();
    assert_eq!(list[0], "server.1=zk-a:2888:3888");
    assert_eq!(list[4], "server.5=zk-e:2888:3888:observer");
    let readme = std::fs::read_to_string(out.join("README.md")).unwrap();
    insta::assert_snapshot!("hosts_readme", redact(&c, &readme));
    assert!(readme.contains("zk-a:2181,zk-b:2181,zk-c:2181,zk-d:2181,zk-e:2181"));

    // One host per node, named once each.
    let out = c.zkdev(&["export", "hosts", "a,b", "--nodes", "3"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("2 hosts given for 3 nodes"), "{}", stderr(&out));
    let out = c.zkdev(&["export", "hosts", "a,a,b", "--nodes", "3"]);
    assert!(stderr(&out).contains("named twice"), "{}", stderr(&out));
}

#[test]
fn an_export_of_the_running_cluster_matches_it() {
    let c = TestCluster::new(28);
    c.up(&["--nodes", "3", "--observers", "1"]);
    let out = c.zkdev(&["export", "compose"]);
    assert_ok(&out, "export compose");
    let compose: Compose = serde_norway::from_str(&stdout(&out)).unwrap();
    assert_eq!(compose.services.len(), 4);
    // The cluster's settings, on the standard ports whatever its local ports (offset 10280) were.
    let status = c.status();
    for n in status["nodes"].as_array().unwrap() {
        let id = n["id"].as_u64().unwrap();
        assert_ne!(
            n["client_port"].as_u64(),
            Some(2180 + id),
            "a local layout unlike the export's"
        );
        let s = &compose.services[&format!("zk{id}")];
        assert_eq!(s.ports, vec![format!("127.0.0.1:{}:2181", 2180 + id)]);
        assert_eq!(s.environment["ZOO_TICK_TIME"], "200");
        assert!(s.environment["ZOO_SERVERS"].starts_with("server.1=zk1:2888:3888;2181 "));
    }
}

/// A validator installed by scripts/install-deps: `target/validators/bin/NAME` (a venv), else NAME on PATH.
fn validator(name: &str) -> std::path::PathBuf {
    let venv = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target/validators/bin")
        .join(name);
    if venv.is_file() {
        return venv;
    }
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).map(|d| d.join(name)).find(|f| f.is_file()))
        .unwrap_or_default();
    on_path
        .unwrap_or_else(|| panic!("`{name}` is not installed: run scripts/install-deps (it makes target/validators)"))
}

/// Run a validator on files; panics with its output when it rejects one.
fn validate(tool: &str, args: &[&str], files: &[std::path::PathBuf]) {
    let out = std::process::Command::new(validator(tool))
        .args(args)
        .args(files)
        .output()
        .unwrap_or_else(|e| panic!("{tool} runs: {e}"));
    assert!(
        out.status.success(),
        "{tool} rejects an export:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Exports in several shapes (observers or none, AdminServer off, metrics on, one node), each through the
/// engines' own schemas: every manifest through `kubernetes-validate --strict` (unknown fields rejected), every
/// Compose file through the compose-spec JSON schema. Both ship their schemas: no network is used.
#[test]
fn exports_pass_the_engines_own_schemas() {
    let c = TestCluster::new(29);
    let dir = c.home_path().join("validate");
    std::fs::create_dir_all(&dir).unwrap();
    let shapes: [(&str, &str, &[&str]); 4] = [
        ("3+2", PROFILE, &["--nodes", "3", "--observers", "2"]),
        ("1+0", "extends = \"default\"\n", &["--nodes", "1"]),
        (
            "5+0-metrics-no-admin",
            "[zookeeper]\nadmin_server = false\nmetrics = true\n",
            &["--nodes", "5"],
        ),
        (
            "3+1-fast",
            "extends = \"fast\"\n",
            &["--nodes", "3", "--observers", "1"],
        ),
    ];
    let (mut manifests, mut composes) = (Vec::new(), Vec::new());
    for (name, profile, shape) in shapes {
        let p = dir.join(format!("{name}.toml"));
        std::fs::write(&p, profile).unwrap();
        for kind in ["k8s", "compose"] {
            let mut args = vec!["export", kind, "--dist", "3.9.5", "--profile", p.to_str().unwrap()];
            args.extend_from_slice(shape);
            let out = c.zkdev(&args);
            assert_ok(&out, &format!("export {kind} {name}"));
            let file = dir.join(format!("{name}.{kind}.yaml"));
            std::fs::write(&file, &out.stdout).unwrap();
            if kind == "k8s" {
                manifests.push(file);
            } else {
                composes.push(file);
            }
        }
    }
    validate("kubernetes-validate", &["--strict", "--quiet"], &manifests);
    validate(
        "check-jsonschema",
        &["--builtin-schema", "vendor.compose-spec"],
        &composes,
    );
    let metrics = std::fs::read_to_string(dir.join("5+0-metrics-no-admin.k8s.yaml")).unwrap();
    assert!(metrics.contains("metricsProvider.httpPort=7000"), "{metrics}");
    assert!(!metrics.contains("admin.serverPort"), "{metrics}");
}

/// The nodes of a hosts bundle started on this machine: dropping it kills (SIGKILL, by pid) every JVM it
/// started whose command line still names the bundle's directory, and reaps it, even when the test failed.
struct RunningBundle {
    dir: std::path::PathBuf,
    children: Vec<std::process::Child>,
}

/// Does the process's command line name `dir`?
fn names_dir(pid: u32, dir: &std::path::Path) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .is_ok_and(|c| String::from_utf8_lossy(&c).contains(dir.to_str().unwrap()))
}

impl Drop for RunningBundle {
    fn drop(&mut self) {
        for child in &mut self.children {
            if child.try_wait().ok().flatten().is_none() && names_dir(child.id(), &self.dir) {
                eprintln!("bundle guard: killing node JVM {}", child.id());
                let _ = child.kill();
            }
            let _ = child.wait();
        }
    }
}

/// Debian's package, or an unpacked installation named by ZOOKEEPER_HOME.
fn zookeeper_home() -> std::path::PathBuf {
    let home = std::env::var_os("ZOOKEEPER_HOME")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| "/usr/share/zookeeper".into());
    assert!(
        home.join("bin/zkServer.sh").is_file(),
        "no zkServer.sh under {} (scripts/install-deps installs Debian's zookeeper)",
        home.display()
    );
    home
}

/// The hosts bundle for 3 voters + 1 observer, written for 127.0.0.11..14, run for real: each host's own
/// `start.sh` (its data directory moved with ZK_DATA_DIR) through the installation's zkServer.sh. The nodes
/// elect a leader, every socket they listen on is on their own address with the standard ports, a write
/// through one node reads back through every node; then they stop and nothing is left running.
#[test]
fn hosts_bundle_runs_for_real() {
    let c = TestCluster::new(65);
    let zk_home = zookeeper_home();
    let addresses: [[u8; 4]; 4] = [[127, 0, 0, 11], [127, 0, 0, 12], [127, 0, 0, 13], [127, 0, 0, 14]];
    let hosts: Vec<String> = addresses
        .iter()
        .map(|a| std::net::Ipv4Addr::from(*a).to_string())
        .collect();
    for a in &addresses {
        assert!(
            srvr_at(*a, 2181).is_none(),
            "something already serves on {a:?}:2181; this test needs 127.0.0.11..14 to itself"
        );
    }
    let dir = c.home_path().join("bundle");
    let out = c.zkdev(&[
        "export",
        "hosts",
        &hosts.join(","),
        "--nodes",
        "3",
        "--observers",
        "1",
        "--profile",
        "fast",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert_ok(&out, "export hosts");

    let mut bundle = RunningBundle {
        dir: dir.clone(),
        children: Vec::new(),
    };
    for h in &hosts {
        let log = std::fs::File::create(dir.join(format!("{h}.out"))).unwrap();
        let child = std::process::Command::new(dir.join(h).join("start.sh"))
            .env("ZOOKEEPER_HOME", &zk_home)
            .env("ZK_DATA_DIR", dir.join("run").join(h))
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start.sh runs");
        bundle.children.push(child);
    }
    let logs = |dir: &std::path::Path| -> String {
        hosts
            .iter()
            .map(|h| {
                format!(
                    "--- {h}\n{}",
                    std::fs::read_to_string(dir.join(format!("{h}.out"))).unwrap_or_default()
                )
            })
            .collect()
    };

    // Every node serves, in the mode its role gives it, with exactly one leader.
    let modes = poll(Duration::from_secs(60), "the bundle's 4 nodes to serve", || {
        for child in &mut bundle.children {
            if let Some(st) = child.try_wait().unwrap() {
                panic!("a node exited ({st}):\n{}", logs(&dir));
            }
        }
        let modes: Vec<String> = addresses
            .iter()
            .map(|a| srvr_at(*a, 2181).map(|s| s.mode))
            .collect::<Option<_>>()?;
        (modes.iter().filter(|m| *m == "leader").count() == 1).then_some(modes)
    });
    assert_eq!(modes[3], "observer", "{modes:?}");
    assert_eq!(modes[..3].iter().filter(|m| *m == "follower").count(), 2, "{modes:?}");

    // The JVMs are the children themselves (start.sh and zkServer.sh exec java), each listening on its own
    // address and the standard ports only.
    for (child, a) in bundle.children.iter().zip(&addresses) {
        let pid = child.id() as i32;
        let cmd = String::from_utf8_lossy(&std::fs::read(format!("/proc/{pid}/cmdline")).unwrap()).into_owned();
        assert!(cmd.contains("QuorumPeerMain"), "{cmd}");
        let listening = listening_of(pid);
        assert!(listening.iter().any(|(_, p)| *p == 2181), "{a:?}: {listening:?}");
        assert!(listening.iter().any(|(_, p)| *p == 3888), "{a:?}: {listening:?}");
        for (addr, port) in &listening {
            assert!(is_v4(addr, *a), "{a:?} listens on {addr}:{port}");
            assert!([2181, 2888, 3888, 8080].contains(port), "{a:?} listens on port {port}");
        }
    }

    // A write through the first node, read back through every node.
    let data = with_client(&format!("{}:2181", hosts[0]), async |client| {
        client
            .create(
                "/bundle",
                b"from the hosts bundle",
                &zookeeper_client::CreateMode::Persistent.with_acls(zookeeper_client::Acls::anyone_all()),
            )
            .await
            .expect("create /bundle");
        "from the hosts bundle".to_string()
    });
    for h in &hosts {
        let read = with_client(&format!("{h}:2181"), async |client| {
            client.sync("/bundle").await.expect("sync");
            client.get_data("/bundle").await.expect("read /bundle").0
        });
        assert_eq!(String::from_utf8_lossy(&read), data, "read through {h}");
    }

    // Stopped the way a service manager stops them (SIGTERM), nothing of the bundle is left running.
    for child in &bundle.children {
        signal(child.id() as i32, nix::sys::signal::Signal::SIGTERM);
    }
    for child in &mut bundle.children {
        wait_exit(child, Duration::from_secs(20));
    }
    assert_eq!(jvms_under(&dir), Vec::<i32>::new(), "JVMs of the bundle left running");
    for a in &addresses {
        assert!(
            std::net::TcpStream::connect_timeout(&(*a, 2181).into(), Duration::from_secs(1)).is_err(),
            "{a:?}:2181 still accepts connections"
        );
    }
}
