//! One duration syntax for every flag and scenario step, with one rule for bare numbers: seconds where they
//! always meant seconds, refused with the fix where they meant milliseconds. These run the binary but start
//! no ZooKeeper: every case here is decided before a cluster is touched.

mod common;

use common::TestCluster;

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn bare_milliseconds_are_refused_naming_the_flag_and_the_fix() {
    let c = TestCluster::new(62);
    for (args, flag) in [
        (vec!["watch", "--interval", "200"], "--interval"),
        (vec!["link", "1", "2", "--delay", "200"], "--delay"),
        (vec!["link", "1", "2", "--delay", "1ms", "--jitter", "50"], "--jitter"),
        (vec!["disk", "1", "--slow-fsync", "300"], "--slow-fsync"),
    ] {
        let out = c.zkdev(&args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains(flag) && err.contains("ms`"),
            "{args:?} must name {flag} and the fix: {err}"
        );
    }
    // Nonsense is refused the same way everywhere.
    let out = c.zkdev(&["wait", "--timeout", "soon"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--timeout"), "{}", stderr(&out));
}

#[test]
fn bare_seconds_keep_their_meaning_and_every_duration_flag_says_its_unit() {
    let c = TestCluster::new(62);
    // A bare number where it meant seconds still parses (it fails later only because there is no cluster).
    for args in [
        vec!["wait", "--timeout", "20"],
        vec!["chaos", "--duration", "20"],
        vec!["verify", "--duration", "20"],
        vec!["down", "--grace", "3"],
        vec!["watch", "--duration", "5"],
    ] {
        let out = c.zkdev(&args);
        let err = stderr(&out);
        assert!(
            !err.contains("invalid value"),
            "{args:?} must take a bare number as seconds: {err}"
        );
    }
    // `chaos --duration 20` was refused ("give at least 1s": it meant 20 ms); it is 20 s now.
    let out = c.zkdev(&["chaos", "--duration", "20"]);
    assert!(!stderr(&out).contains("at least 1s"), "{}", stderr(&out));
    for (cmd, flag) in [
        (vec!["up"], "--timeout"),
        (vec!["watch"], "--interval"),
        (vec!["watch"], "--duration"),
        (vec!["chaos"], "--duration"),
        (vec!["verify"], "--duration"),
        (vec!["down"], "--grace"),
        (vec!["link"], "--delay"),
        (vec!["disk"], "--slow-fsync"),
        (vec!["kill-leader"], "--timeout"),
    ] {
        let mut args = cmd.clone();
        args.push("--help");
        let out = c.zkdev(&args);
        let help = String::from_utf8_lossy(&out.stdout).into_owned();
        let key = format!("  {flag} <DURATION>");
        let at = help
            .match_indices(&key)
            .map(|(i, _)| i)
            .find(|&i| help[i + key.len()..].starts_with([' ', '\n']))
            .unwrap_or_else(|| panic!("{cmd:?} {flag}: {help}"));
        let text = help[at..help[at..].find("\n  -").map_or(help.len(), |e| at + e)]
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        assert!(
            text.contains("a bare number is seconds") || text.contains("a bare number is refused"),
            "{cmd:?} {flag} must say its unit: {text}"
        );
    }
}

#[test]
fn a_scenario_with_a_bare_wait_is_refused_naming_the_line() {
    let c = TestCluster::new(62);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bare.toml");
    std::fs::write(
        &file,
        "name = \"bare\"\nsteps = [\n  \"kill-leader\",\n  \"wait 5\",\n]\n",
    )
    .unwrap();
    let out = c.zkdev(&["run", file.to_str().unwrap()]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("bare.toml:4") && err.contains("`5s`"), "{err}");
    // With the unit it loads (and then fails only because this home has no cluster).
    std::fs::write(
        &file,
        "name = \"unit\"\nsteps = [\n  \"kill-leader\",\n  \"wait 5s\",\n]\n",
    )
    .unwrap();
    let out = c.zkdev(&["run", file.to_str().unwrap()]);
    assert!(!stderr(&out).contains("bare.toml:"), "{}", stderr(&out));
}
