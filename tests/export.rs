//! Exports for several machines, parsed back into typed structures and checked for the invariants that make
//! an ensemble: ids 1..N+M once each, one identical server list, observers marked, a PDB that keeps a
//! quorum, the standard ports, timing equal to the profile's. These engines are not run here (no Kubernetes
//! or Docker on this machine); what they get is checked, and validated by the engines' own schemas
//! (`kubernetes-validate --strict`, the compose-spec schema through `check-jsonschema`; both offline, installed
//! by scripts/install-deps).

mod common;

use std::collections::{BTreeMap, BTreeSet};

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
    assert!(stderr(&out).contains("2 host(s) given for 3 nodes"), "{}", stderr(&out));
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
