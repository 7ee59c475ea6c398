//! `zkdev check FILE` on histories made elsewhere: public histories with published verdicts (Knossos's and
//! Porcupine's, in tests/data with their sources named), malformed files, `--json`, the excerpt, the picture,
//! and zkdev's own `history.ndjson`. No ZooKeeper is started.

use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;
use serde_json::Value;

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(name)
}

fn check(args: &[&str]) -> Output {
    Command::cargo_bin("zkdev")
        .expect("binary built")
        .arg("check")
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("zkdev runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn json(args: &[&str]) -> (Option<i32>, Value) {
    let mut all = args.to_vec();
    all.push("--json");
    let out = check(&all);
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{args:?}: --json is not JSON ({e}): {}", text(&out.stdout)));
    (out.status.code(), v)
}

#[test]
fn public_histories_give_their_published_verdicts() {
    // (file, linearizable) as tests/data/README.md names them.
    let published = [
        ("knossos-good-cas-register-bug.edn", true),
        ("knossos-good-memstress3-33.edn", true),
        ("knossos-bad-bad-analysis.edn", false),
        ("knossos-bad-rethink-fail-minimal.edn", false),
        ("knossos-bad-cas-failure.edn", false),
        ("porcupine-etcd_000.log", false),
        ("porcupine-etcd_001.log", false),
        ("porcupine-etcd_002.log", true),
        ("porcupine-etcd_007.log", true),
    ];
    for (name, good) in published {
        let file = data(name);
        let (code, v) = json(&[file.to_str().unwrap()]);
        let format = if name.ends_with(".edn") { "edn" } else { "porcupine" };
        assert_eq!(
            (code, v["verdict"].as_str()),
            if good {
                (Some(0), Some("valid"))
            } else {
                (Some(1), Some("violation"))
            },
            "{name}: {v}"
        );
        assert_eq!(
            (v["format"].as_str(), v["format_detected"].as_bool()),
            (Some(format), Some(true)),
            "{name}"
        );
        assert_eq!(v["model"], "cas", "{name}");
        assert!(
            v["ops"].as_u64().unwrap() > 0 && v["check_ms"].is_number(),
            "{name}: {v}"
        );
        // A violation names the operations that show it; a valid history has none to name.
        let excerpt = v["excerpt"].as_array().unwrap();
        assert_eq!(excerpt.is_empty(), good, "{name}: {v}");
    }
}

#[test]
fn a_bad_history_prints_the_excerpt_that_shows_it_and_draws_it() {
    // Knossos's bad-analysis: after the value became 0, with a write of 1 still pending (it crashed), two
    // concurrent reads saw 3 and 2; no order explains both.
    let dir = tempfile::tempdir().unwrap();
    let svg = dir.path().join("bad.svg");
    let file = data("knossos-bad-bad-analysis.edn");
    let out = check(&[file.to_str().unwrap(), "--svg", svg.to_str().unwrap()]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stdout.contains("edn format, told from the content") && stdout.contains("NOT linearizable"),
        "{stdout}"
    );
    for shown in [
        "process 20  line 12-(no answer)  write 1 -> unknown",
        "process 22  lines 16-19          read -> 3",
        "process 21  lines 17-18          read -> 2",
    ] {
        assert!(stdout.contains(shown), "missing {shown:?} in:\n{stdout}");
    }
    assert!(stdout.contains("the 3 operations below"), "{stdout}");
    assert!(stderr.contains("not linearizable"), "{stderr}");
    let picture = std::fs::read_to_string(&svg).expect("the picture is written");
    assert!(picture.starts_with("<svg") && picture.contains("read -&gt; 3") && picture.contains("process 22"));
    assert!(
        picture.contains("line 16") && picture.contains("stroke-dasharray"),
        "{picture}"
    );
    // The same as a page.
    let html = dir.path().join("bad.html");
    let out = check(&[file.to_str().unwrap(), "--html", html.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.starts_with("<!doctype html>") && page.contains("<svg") && page.contains("<td>write 1</td>"));
    // A valid history draws nothing.
    let good = dir.path().join("good.svg");
    let out = check(&[
        data("porcupine-etcd_002.log").to_str().unwrap(),
        "--svg",
        good.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0));
    assert!(!good.exists() && text(&out.stdout).contains("no picture"));
}

#[test]
fn malformed_files_exit_2_naming_the_line_and_what_was_expected() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "broken.edn",
            "[{:process 0, :type :invoke, :f :read, :value nil}\n {:process 0, :type :ok, :f :read, :value 1}\n {:process 1, :type :invoke, :f :cas, :value 3}]\n",
            ":3: expected a :cas's value as [old new]",
        ),
        (
            "unclosed.edn",
            "[{:process 0, :type :invoke, :f :read, :value nil}\n",
            "to close what line 1 opened",
        ),
        (
            "broken.log",
            "INFO  jepsen.util - 0\t:invoke\t:read\tnil\nINFO  jepsen.util - 0\t:ok\n",
            ":2: expected a Jepsen operation line",
        ),
        (
            "broken.ndjson",
            "{\"id\":0,\"client\":1,\"f\":\"read\",\"key\":\"r0\",\"call_us\":1,\"ret_us\":2,\"outcome\":\"ok\",\"value\":\"0@0\"}\n{\"id\":1,\"client\":1}\n",
            ":2: expected a history record",
        ),
        ("prose.txt", "\nthis is not a history\n", ":2: expected the start of a history"),
    ];
    for (name, body, said) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, body).unwrap();
        let out = check(&[path.to_str().unwrap()]);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {err}");
        assert!(
            err.contains(&format!("{}{said}", path.display())) || err.contains(said),
            "{name}: {err}"
        );
        assert!(err.contains(name), "{name}: the file is named: {err}");
    }
    // A history the model cannot take is refused the same way, with the fix.
    let out = check(&[data("porcupine-etcd_000.log").to_str().unwrap(), "--model", "register"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("porcupine-etcd_000.log:1:") && err.contains("--model cas"),
        "{err}"
    );
    // A missing file too.
    let out = check(&[dir.path().join("nothing.edn").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
}

/// Records as `zkdev chaos` writes them in `history.ndjson`.
fn record(
    id: usize,
    client: u32,
    f: &str,
    (call, ret): (u64, Option<u64>),
    outcome: &str,
    value: &str,
    expect: Option<i32>,
) -> String {
    let mut v = serde_json::json!({"id": id, "client": client, "f": f, "key": "r0", "call_us": call, "outcome": outcome, "value": value});
    if let Some(r) = ret {
        v["ret_us"] = r.into();
    }
    if let Some(e) = expect {
        v["expect"] = e.into();
    }
    if outcome == "fail" && f == "cas" {
        v["error"] = "mismatch version".into();
    }
    v.to_string()
}

#[test]
fn a_zkdev_history_round_trips_through_check() {
    let dir = tempfile::tempdir().unwrap();
    let good = [
        record(0, 1, "cas", (1_000, Some(2_000)), "ok", "7", Some(0)),
        record(1, 2, "read", (3_000, Some(4_000)), "ok", "7@1", None),
        // Overlapping: one CAS on version 1 wins, the other is refused.
        record(2, 1, "cas", (5_000, Some(8_000)), "fail", "8", Some(1)),
        record(3, 2, "cas", (5_500, Some(7_000)), "ok", "9", Some(1)),
        // No answer: it may have applied (the later read says it did).
        record(4, 3, "cas", (9_000, None), "unknown", "10", Some(2)),
        record(5, 2, "read", (2_009_000, Some(2_010_000)), "ok", "10@3", None),
    ];
    let path = dir.path().join("history.ndjson");
    std::fs::write(&path, good.join("\n") + "\n").unwrap();
    let (code, v) = json(&[path.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{v}");
    assert_eq!(
        (&v["verdict"], &v["format"], &v["model"], &v["ops"], &v["checked"]),
        (
            &"valid".into(),
            &"zkdev".into(),
            &"register".into(),
            &6.into(),
            &6.into()
        ),
        "{v}"
    );
    // A stale read after an acknowledged CAS: a violation, its two operations named with their times.
    let mut bad = good.to_vec();
    bad.push(record(6, 4, "read", (2_020_000, Some(2_021_000)), "ok", "9@2", None));
    std::fs::write(&path, bad.join("\n") + "\n").unwrap();
    let out = check(&[path.to_str().unwrap()]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("zkdev format, told from the content") && stdout.contains("register model"));
    assert!(stdout.contains("client 4  2.020-2.021 s  read -> 9@2"), "{stdout}");
    assert!(stdout.contains("#6"), "the records' own ids name them: {stdout}");
    // The register model is zkdev's: as a cas register the file is refused, naming the line and the fix.
    let out = check(&[path.to_str().unwrap(), "--model", "cas"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("history.ndjson:1:") && text(&out.stderr).contains("--model register"));
    // --initial: from 7@1 the first CAS (on version 0) cannot have been acknowledged.
    let (code, v) = json(&[path.to_str().unwrap(), "--initial", "7@1"]);
    assert_eq!((code, &v["verdict"]), (Some(1), &"violation".into()), "{v}");
}

#[test]
fn initial_values_and_forced_formats() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.edn");
    std::fs::write(
        &path,
        "{:process 0, :type :invoke, :f :read, :value nil}\n{:process 0, :type :ok, :f :read, :value 5}\n",
    )
    .unwrap();
    // From nil, a read of 5 with no write is a violation; from 5 it is not.
    assert_eq!(check(&[path.to_str().unwrap()]).status.code(), Some(1));
    assert_eq!(
        check(&[path.to_str().unwrap(), "--initial", "5"]).status.code(),
        Some(0)
    );
    // --format names the format: the output does not claim it was detected.
    let (code, v) = json(&[path.to_str().unwrap(), "--initial", "5", "--format", "edn"]);
    assert_eq!((code, &v["format_detected"]), (Some(0), &false.into()), "{v}");
    // Read as the wrong format, it is unreadable.
    assert_eq!(
        check(&[path.to_str().unwrap(), "--format", "zkdev"]).status.code(),
        Some(2)
    );
}

/// One operation of a zk history (`chaos --workload zk`), as its lines are written.
fn zk_line(id: u64, session: &str, f: &str, node: u32, mzxid: i64, value: &str, version: i32) -> String {
    serde_json::json!({
        "id": id, "session": session, "f": f, "path": "/x", "call_us": id * 10, "ret_us": id * 10 + 5,
        "outcome": "ok", "node": node, "czxid": 0x1_0000_0001i64, "mzxid": mzxid, "value": value, "version": version,
    })
    .to_string()
}

#[test]
fn a_zk_history_is_checked_against_zookeepers_model_and_a_read_back_in_time_is_caught() {
    let dir = tempfile::tempdir().unwrap();
    let good = [
        zk_line(1, "a", "create", 1, 0x1_0000_0001, "0", 0),
        zk_line(2, "a", "set", 1, 0x1_0000_0002, "1", 1),
        zk_line(3, "b", "get", 2, 0x1_0000_0002, "1", 1),
    ];
    let good_file = dir.path().join("good.ndjson");
    std::fs::write(&good_file, good.join("\n") + "\n").unwrap();
    let g = good_file.to_str().unwrap();
    // Told from the content: no --model needed.
    let (code, v) = json(&[g]);
    assert_eq!(code, Some(0), "{v}");
    assert_eq!(
        (v["model"].as_str(), v["verdict"].as_str(), v["ops"].as_u64()),
        (Some("zk"), Some("valid"), Some(3))
    );

    // Session b reads the older state on another node after it saw the newer one: allowed stale for a
    // linearizability checker's eyes? No: ZooKeeper never lets one session's reads go back in time.
    let mut bad = good.to_vec();
    bad.push(zk_line(4, "b", "get", 3, 0x1_0000_0001, "0", 0));
    let bad_file = dir.path().join("bad.ndjson");
    std::fs::write(&bad_file, bad.join("\n") + "\n").unwrap();
    let b = bad_file.to_str().unwrap();
    let svg = dir.path().join("bad.svg");
    let out = check(&["--model", "zk", b, "--svg", svg.to_str().unwrap()]);
    let said = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{said}{}", text(&out.stderr));
    assert!(said.contains("a session's reads never go back in time"), "{said}");
    assert!(
        said.contains("#4 session b node 3 getData /x") && said.contains("mzxid=0x100000001"),
        "{said}"
    );
    assert!(
        std::fs::read_to_string(&svg).unwrap().contains("session b"),
        "the picture names the session"
    );
    let (code, v) = json(&[b]);
    assert_eq!(code, Some(1));
    assert_eq!(v["violations"][0]["guarantee"], "monotonic_reads", "{v}");
    assert_eq!(v["violations"][0]["excerpt"], serde_json::json!([2, 3, 4]), "{v}");

    // A broken line: exit 2 naming it.
    let mal = dir.path().join("mal.ndjson");
    std::fs::write(&mal, format!("{}\n{{\"id\": 2, \"session\": \"a\"}}\n", good[0])).unwrap();
    let out = check(&["--model", "zk", mal.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("mal.ndjson:2:") && err.contains("missing field `f`"),
        "{err}"
    );
    // A register history given to the zk model: exit 2 with the fix.
    let out = check(&["--model", "zk", data("knossos-bad-cas-failure.edn").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("--model cas"), "{}", text(&out.stderr));
}
