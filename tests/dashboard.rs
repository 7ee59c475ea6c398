//! The dashboard in a real headless browser (Debian's Chromium, driven through chromedriver's WebDriver
//! API), its guard against other sites, and `explain` (election, zxid, session) checked against what the
//! servers answer. One 3+1 `--net` cluster serves every assertion.
//!
//! Ports: slot 33 (nodes at offset 10330, proxies from 23300); the dashboard on 19533, chromedriver on
//! 19633; the power-cut test on slot 37 (dashboard 19537, chromedriver 19637). Screenshots go to target/test-artifacts/.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};
use zookeeper_client as zk;

const SLOT: u16 = 33;
const DASHBOARD_PORT: u16 = 19_500 + SLOT;
const DRIVER_PORT: u16 = 19_600 + SLOT;

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into()
}

/// (status code, body as JSON or a string)
fn http(method: &str, url: &str, headers: &[(&str, &str)], body: Option<&Value>) -> (u16, Value) {
    let a = agent();
    let mut resp = match (method, body) {
        ("GET", _) => {
            let mut r = a.get(url);
            for (k, v) in headers {
                r = r.header(*k, *v);
            }
            r.call()
        }
        ("DELETE", _) => a.delete(url).call(),
        (_, b) => {
            let mut r = a.post(url).header("content-type", "application/json");
            for (k, v) in headers {
                r = r.header(*k, *v);
            }
            r.send(b.map(|v| v.to_string()).unwrap_or_else(|| "{}".into()))
        }
    }
    .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let code = resp.status().as_u16();
    let text = resp.body_mut().read_to_string().unwrap_or_default();
    (code, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

/// chromedriver and the browser it starts; dropping it ends the session and kills both.
struct Browser {
    driver: Child,
    port: u16,
    session: Option<String>,
    profile: tempfile::TempDir,
}

impl Browser {
    fn start() -> Browser {
        Browser::start_on(DRIVER_PORT)
    }

    /// chromedriver on `port` (each test that opens a browser has a port of its own: they run at once).
    fn start_on(port: u16) -> Browser {
        for bin in ["/usr/bin/chromium", "/usr/bin/chromedriver"] {
            assert!(Path::new(bin).exists(), "{bin} is missing: run scripts/install-deps");
        }
        let profile = tempfile::Builder::new().prefix("zkdev-chromium-").tempdir().unwrap();
        let driver = Command::new("/usr/bin/chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let mut b = Browser {
            driver,
            port,
            session: None,
            profile,
        };
        poll(Duration::from_secs(20), "chromedriver ready", || {
            let r = agent().get(&format!("http://127.0.0.1:{port}/status")).call().ok()?;
            (r.status().as_u16() == 200).then_some(())
        });
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--window-size=1280,800",
            &format!("--user-data-dir={}", b.profile.path().display()),
        ];
        let caps = json!({ "capabilities": { "alwaysMatch": { "browserName": "chrome",
            "goog:chromeOptions": { "binary": "/usr/bin/chromium", "args": args } } } });
        let (code, v) = http("POST", &format!("http://127.0.0.1:{port}/session"), &[], Some(&caps));
        assert_eq!(code, 200, "new WebDriver session: {v}");
        b.session = Some(v["value"]["sessionId"].as_str().expect("a session id").to_string());
        b
    }

    fn url(&self, path: &str) -> String {
        format!(
            "http://127.0.0.1:{}/session/{}{path}",
            self.port,
            self.session.as_deref().unwrap()
        )
    }

    fn cmd(&self, method: &str, path: &str, body: Value) -> Value {
        let (code, v) = http(method, &self.url(path), &[], Some(&body));
        assert_eq!(code, 200, "WebDriver {method} {path}: {v}");
        v["value"].clone()
    }

    fn go(&self, url: &str) {
        self.cmd("POST", "/url", json!({ "url": url }));
    }

    fn js(&self, script: &str) -> Value {
        self.cmd("POST", "/execute/sync", json!({ "script": script, "args": [] }))
    }

    /// Click the element `css` names; found again if the page redrew it between finding and clicking.
    fn click(&self, css: &str) {
        for _ in 0..5 {
            let el = self.cmd("POST", "/element", json!({ "using": "css selector", "value": css }));
            let id = el
                .as_object()
                .and_then(|o| o.values().next())
                .and_then(Value::as_str)
                .expect("an element id")
                .to_string();
            let (code, v) = http(
                "POST",
                &self.url(&format!("/element/{id}/click")),
                &[],
                Some(&json!({})),
            );
            match code {
                200 => return,
                404 if v["value"]["error"] == "stale element reference" => continue,
                _ => panic!("WebDriver click {css}: {v}"),
            }
        }
        panic!("{css} was redrawn under every click");
    }

    /// Make the page's viewport `width` x `height` (the window adds its own frame).
    fn resize(&self, width: u32, height: u32) {
        let frame = |what: &str| {
            self.js(&format!("return window.outer{what} - window.inner{what}"))
                .as_u64()
                .unwrap_or(0) as u32
        };
        let (w, h) = (width + frame("Width"), height + frame("Height"));
        self.cmd("POST", "/window/rect", json!({ "width": w, "height": h }));
    }

    /// A PNG of the viewport into target/test-artifacts/NAME.
    fn screenshot(&self, name: &str) -> PathBuf {
        let (code, v) = http("GET", &self.url("/screenshot"), &[], None);
        assert_eq!(code, 200, "screenshot: {v}");
        let png = base64(v["value"].as_str().expect("base64 PNG"));
        assert!(png.starts_with(b"\x89PNG"), "a PNG");
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-artifacts");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, png).unwrap();
        path
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if self.session.is_some() {
            let _ = agent().delete(&self.url("")).call();
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        // A browser that outlived its driver: only Chromium's own processes (by executable) that name this
        // test's own, freshly made profile directory.
        let marker = self.profile.path().to_string_lossy().into_owned();
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            let chromium = std::fs::read_link(entry.path().join("exe"))
                .is_ok_and(|exe| exe.to_string_lossy().contains("chromium"));
            if chromium && String::from_utf8_lossy(&cmdline).contains(&marker) {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
            }
        }
    }
}

fn base64(text: &str) -> Vec<u8> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let (mut out, mut acc, mut bits) = (Vec::new(), 0u32, 0);
    for v in text.bytes().filter_map(val) {
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

fn leader_of(c: &TestCluster) -> (u64, u64) {
    poll(Duration::from_secs(30), "one leader", || {
        (1..=4u64).find_map(|id| {
            srvr(c.client_port(id))
                .filter(|s| s.mode == "leader")
                .map(|s| (id, s.epoch()))
        })
    })
}

fn json_of(out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", stdout(out)))
}

fn key(c: &Value) -> (u64, u64, u64) {
    let zxid = u64::from_str_radix(c["zxid"].as_str().unwrap().trim_start_matches("0x"), 16).unwrap();
    (c["epoch"].as_u64().unwrap(), zxid, c["id"].as_u64().unwrap())
}

#[test]
fn dashboard_in_a_browser_kill_leader_and_explain() {
    let c = TestCluster::new(SLOT);
    let base = (20_000 + SLOT * 100).to_string();
    c.up(&["--nodes", "3", "--observers", "1", "--net", "--net-port-base", &base]);
    // A taken port is named, with the flag that fixes it (19534: slot 34's dashboard port, also ours).
    let taken = std::net::TcpListener::bind(("127.0.0.1", 19_534)).expect("port 19534 free for the test");
    let out = c.zkdev(&["dashboard", "--port", "19534"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("port 19534") && stderr(&out).contains("--port"),
        "{}",
        stderr(&out)
    );
    drop(taken);
    let port = DASHBOARD_PORT.to_string();
    let out = c.zkdev(&["dashboard", "--port", &port, "--json"]);
    assert_ok(&out, "zkdev dashboard");
    // The address printed carries the actions' token in its fragment; the page and `status` do not.
    let printed = json_of(&out)["url"].as_str().unwrap().to_string();
    let url = format!("http://127.0.0.1:{DASHBOARD_PORT}/");
    assert!(printed.starts_with(&format!("{url}#token=")), "{printed}");
    assert!(stdout(&c.zkdev(&["status"])).contains(&format!("dashboard: {url}")));
    // Only on 127.0.0.1: the supervisor listens on no other address for it.
    let sup = c.supervisor_pid().expect("a supervisor");
    let listens: Vec<(String, u16)> = listening_of(sup)
        .into_iter()
        .filter(|(_, p)| *p == DASHBOARD_PORT)
        .collect();
    assert!(
        !listens.is_empty() && listens.iter().all(|(a, _)| is_loopback_v4(a)),
        "{listens:?}"
    );

    // A fault endpoint refuses a foreign Origin (even with no token), a request without the token, and a
    // foreign Host (DNS rebinding); the leader stays.
    let (leader, epoch) = leader_of(&c);
    let action = json!({ "action": "kill-leader" });
    let api = format!("{url}api/action");
    let (code, v) = http("POST", &api, &[("origin", "http://evil.example")], Some(&action));
    assert_eq!(code, 403, "{v}");
    assert!(v["error"].as_str().unwrap().contains("Origin"), "{v}");
    let (code, _) = http("POST", &api, &[], Some(&action));
    assert_eq!(code, 403);
    let (code, _) = http("GET", &url, &[("host", "evil.example")], None);
    assert_eq!(code, 421);
    assert_eq!(leader_of(&c), (leader, epoch), "a refused request changed nothing");

    // The page, in Chromium: the leader's id, then "kill leader", then the new one and a leaderless window.
    let b = Browser::start();
    b.go(&printed);
    b.resize(1280, 800);
    poll(Duration::from_secs(10), "the page shows the leader", || {
        (b.js("return document.getElementById('leader').dataset.id") == json!(leader.to_string())).then_some(())
    });
    poll(Duration::from_secs(10), "the page explains the election", || {
        b.js("return document.getElementById('story').innerText")
            .as_str()
            .filter(|t| t.contains("Election of epoch"))
            .map(|_| ())
    });
    b.screenshot("dashboard-before-1280x800.png");
    let windows = "return document.querySelectorAll('#timeline .ev-leaderless').length";
    let leaderless_before = b.js(windows).as_u64().unwrap();
    let t0 = Instant::now();
    b.click("#kill-leader");
    let new_leader = poll(
        Duration::from_secs(2),
        "a new leader and a leaderless window on the page within 2 s",
        || {
            let shown = b.js("return document.getElementById('leader').dataset.id");
            let shown = shown
                .as_str()
                .and_then(|s| s.parse::<u64>().ok())
                .filter(|id| *id != leader)?;
            (b.js(windows).as_u64().unwrap() > leaderless_before).then_some(shown)
        },
    );
    let seen_ms = t0.elapsed().as_millis();
    eprintln!("dashboard: new leader {new_leader} and a leaderless window shown {seen_ms} ms after the click");
    let (server_leader, new_epoch) = leader_of(&c);
    assert_eq!(server_leader, new_leader, "the page names the leader the servers name");
    assert!(new_epoch > epoch);
    let timeline = b.js("return document.getElementById('timeline').innerText");
    assert!(
        timeline.as_str().unwrap().contains(&format!("epoch {new_epoch}")),
        "{timeline}"
    );
    // Let the election story catch up, then the pictures.
    poll(Duration::from_secs(10), "the page explains the new election", || {
        b.js("return document.getElementById('story').innerText")
            .as_str()
            .filter(|t| t.contains(&format!("Election of epoch {new_epoch}")))
            .map(|_| ())
    });
    b.screenshot("dashboard-after-1280x800.png");

    // Isolate the observer (no quorum changes): its links are drawn cut, the proxies have the rules; heal.
    let cut_links =
        "return [...document.querySelectorAll('#svg line')].filter(l => l.textContent.endsWith(': cut')).length";
    b.click("button[data-action=isolate][data-node='4']");
    poll(Duration::from_secs(2), "the observer's three links drawn cut", || {
        (b.js(cut_links).as_u64() == Some(3)).then_some(())
    });
    let links = json_of(&c.zkdev(&["links", "--json"]));
    let rules = links["rules"].as_array().expect("rules");
    assert!(
        !rules.is_empty() && rules.iter().all(|r| r["from"] == "4" || r["to"] == "4"),
        "{links:#}"
    );
    b.js("window.scrollTo(0, 0)");
    b.screenshot("dashboard-isolated-1280x800.png");
    b.click("#heal");
    poll(Duration::from_secs(2), "no link drawn cut after heal", || {
        (b.js(cut_links).as_u64() == Some(0)).then_some(())
    });
    assert_eq!(json_of(&c.zkdev(&["links", "--json"]))["rules"], json!([]));

    // "Trace a write": the story of one write through a follower, drawn as messages along the links and
    // listed, with the zxid the servers give the znode.
    // The observer was isolated a moment ago: its INFORM is in the story only once it follows the leader
    // again (ZooKeeper notices the cut link, then the observer looks for the leader and syncs).
    poll(
        Duration::from_secs(30),
        "the observer serving again after the heal",
        || srvr(c.client_port(4)).filter(|s| s.mode == "observer").map(|_| ()),
    );
    b.click("#trace-write");
    let story = poll(Duration::from_secs(10), "the traced write's story on the page", || {
        b.js("return document.getElementById('trace-story').innerText")
            .as_str()
            .filter(|t| t.contains("zxid 0x"))
            .map(str::to_string)
    });
    std::thread::sleep(Duration::from_millis(1200)); // messages in flight for the picture
    b.js("window.scrollTo(0, 0)");
    b.screenshot("dashboard-trace-1280x800.png");
    for what in [
        "client request",
        "REQUEST",
        "PROPOSAL",
        "ACK",
        "COMMIT",
        "INFORM",
        "reply",
        "implied",
    ] {
        assert!(story.contains(what), "{what} in the story: {story}");
    }
    let (_, _, port) = c.node_in_mode("leader");
    let mzxid = with_client(&format!("127.0.0.1:{port}"), async |client| {
        client.sync("/zkdev-trace").await.expect("sync");
        client.get_data("/zkdev-trace").await.expect("the traced znode").1.mzxid
    });
    assert!(story.contains(&format!("zxid 0x{mzxid:x}")), "{story}");

    let overflow = "return document.documentElement.scrollWidth - document.documentElement.clientWidth";
    assert!(
        b.js(overflow).as_i64().unwrap() <= 0,
        "no sideways scrolling at 1280 px"
    );
    // Tall enough for the election explained below the picture and the timeline.
    b.resize(1280, 1300);
    b.js("window.scrollTo(0, 0)");
    b.screenshot("dashboard-tall-1280.png");
    b.resize(390, 844);
    std::thread::sleep(Duration::from_millis(300)); // one layout
    assert!(
        b.js(overflow).as_i64().unwrap() <= 0,
        "no sideways scrolling at phone width"
    );
    b.screenshot("dashboard-after-phone.png");
    drop(b);

    // The node the dashboard killed comes back, then `kill-leader` from the command line, then explain.
    let out = c.zkdev(&["start", &leader.to_string()]);
    assert_ok(&out, "start the killed node");
    let out = c.zkdev(&["kill-leader", "--json"]);
    assert_ok(&out, "kill-leader");
    let (final_leader, final_epoch) = leader_of(&c);
    // The new leader logs `Have quorum of supporters` once a quorum follows: wait for it to be in the log.
    let e = poll(Duration::from_secs(10), "explain election of the new epoch", || {
        let out = c.zkdev(&["explain", "election", "--json"]);
        let e = json_of(&out);
        (out.status.success() && e["epoch"] == json!(final_epoch) && !e["journal"].is_null()).then_some(e)
    });
    assert_eq!(
        e["leader"].as_u64(),
        Some(final_leader),
        "the winner the servers report: {e:#}"
    );
    assert!(
        e["journal"]["trigger"].as_str().unwrap().contains("zkdev kill-leader"),
        "{e:#}"
    );
    // The rule, checked here: each voter's votes only ever move to a greater (epoch, zxid, myid); the
    // winner is the greatest first proposal; every vote a voter sends is for a candidate no greater than it.
    let candidates: Vec<(u64, u64, u64)> = e["candidates"].as_array().unwrap().iter().map(key).collect();
    assert!(candidates.len() >= 2, "at least a quorum proposed itself: {e:#}");
    let greatest = *candidates.iter().max().unwrap();
    assert_eq!(
        greatest.2, final_leader,
        "the winner has the greatest (epoch, zxid, myid): {candidates:?}"
    );
    for n in e["nodes"].as_array().unwrap() {
        let votes: Vec<(u64, u64, u64)> = n["votes"].as_array().unwrap().iter().map(key).collect();
        assert!(
            votes.windows(2).all(|w| w[1] > w[0]),
            "node {} changed its vote against the rule: {votes:?}",
            n["node"]
        );
        if n["role"] == "participant" && n["took_part"] == true {
            assert_eq!(
                votes.first().map(|v| v.2),
                n["node"].as_u64(),
                "a voter first votes for itself"
            );
            assert_eq!(
                votes.last().map(|v| v.2),
                Some(final_leader),
                "and ends voting for the winner"
            );
        }
        for h in n["heard"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|h| h["sender_state"] == "LOOKING")
        {
            assert!(
                key(&h["vote"]) <= greatest,
                "no vote beyond the greatest candidate: {h}"
            );
        }
    }
    let supporters: Vec<u64> = e["supporters"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_u64)
        .collect();
    assert!(
        supporters.contains(&final_leader) && supporters.len() >= 2,
        "{supporters:?}"
    );
    let text = stdout(&c.zkdev(&["explain", "election"]));
    assert!(
        text.contains(&format!("node {final_leader} won")) || text.contains(&format!("Node {final_leader} won")),
        "{text}"
    );
    // The election the dashboard's kill caused, by its epoch.
    let earlier = json_of(&c.zkdev(&["explain", "election", "--epoch", &new_epoch.to_string(), "--json"]));
    assert_eq!(earlier["leader"].as_u64(), Some(new_leader), "{earlier:#}");
    assert!(
        earlier["journal"]["trigger"]
            .as_str()
            .unwrap()
            .contains("zkdev dashboard"),
        "{earlier:#}"
    );
    let one = json_of(&c.zkdev(&["explain", "election", "--node", &final_leader.to_string(), "--json"]));
    assert_eq!(one["nodes"].as_array().unwrap().len(), 1);
    assert_eq!(one["nodes"][0]["decided"], "leading");

    // explain zxid: the leader's own zxid belongs to its epoch, which the journal gives to it.
    let leader_port = c.client_port(final_leader);
    let z = srvr(leader_port).unwrap().zxid;
    let zx = json_of(&c.zkdev(&["explain", "zxid", &format!("{z:#x}"), "--json"]));
    assert_eq!(zx["epoch"].as_u64(), Some(z >> 32));
    assert_eq!(zx["counter"].as_u64(), Some(z & 0xffff_ffff));
    assert_eq!(zx["term"]["leader"].as_u64(), Some(final_leader), "{zx:#}");
    let bad = c.zkdev(&["explain", "zxid", "0xzz"]);
    assert_eq!(bad.status.code(), Some(2), "{}", stderr(&bad));

    // explain session: a live session with an ephemeral, created through the leader.
    with_client(&format!("127.0.0.1:{leader_port}"), async |cl: zk::Client| {
        let session = cl.session_id().0 as u64;
        let o = zk::CreateMode::Ephemeral.with_acls(zk::Acls::anyone_all());
        cl.create("/explained", b"", &o).await.unwrap();
        let s = json_of(&c.zkdev(&["explain", "session", &format!("{session:#x}"), "--json"]));
        assert_eq!(s["creator"].as_u64(), Some(session >> 56), "{s:#}");
        assert_eq!(
            s["creator"].as_u64(),
            Some(final_leader),
            "the node it connected to made it: {s:#}"
        );
        assert_eq!(s["live"], true, "{s:#}");
        assert_eq!(s["connected_to"].as_u64(), Some(final_leader));
        assert_eq!(
            s["timeout_ms"].as_u64(),
            Some(cl.session_timeout().as_millis() as u64),
            "the negotiated timeout"
        );
        assert_eq!(s["ephemerals"], json!(["/explained"]), "{s:#}");
    });

    // A supervisor that dies takes the page with it; the next one serves it again on the same port.
    let old = c.supervisor_pid().expect("a supervisor");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(old), nix::sys::signal::Signal::SIGKILL).unwrap();
    poll(Duration::from_secs(5), "the supervisor gone", || {
        (!pid_alive(old)).then_some(())
    });
    // On a --net cluster, status starts a new supervisor (the links live in it).
    assert_ok(&c.zkdev(&["status"]), "status after the supervisor died");
    poll(
        Duration::from_secs(10),
        "the page served again by a new supervisor",
        || {
            let sup = c.supervisor_pid().filter(|p| *p != old)?;
            let r = agent().get(&format!("{url}api/status")).call().ok()?;
            (r.status().as_u16() == 200).then_some(sup)
        },
    );
    assert!(stdout(&c.zkdev(&["status"])).contains(&format!("dashboard: {url}")));
}

/// The zxid beats the id: the follower with the higher id misses two writes (isolated), the leader dies, the
/// links heal, and the follower with the lower id but the higher zxid wins; `explain election` says so.
#[test]
fn explain_election_when_the_zxid_decides() {
    const SLOT: u16 = 34;
    let c = TestCluster::new(SLOT);
    let base = (20_000 + SLOT * 100).to_string();
    c.up(&["--nodes", "3", "--net", "--net-port-base", &base]);
    let (leader, epoch) = poll(Duration::from_secs(30), "one leader", || {
        (1..=3u64).find_map(|id| {
            srvr(c.client_port(id))
                .filter(|s| s.mode == "leader")
                .map(|s| (id, s.epoch()))
        })
    });
    // The journal has that first leader too (the supervisor looks every 100 ms): the election below is then
    // the next one, and the isolate before it counts among its actions.
    poll(Duration::from_secs(10), "the journal's first leader", || {
        (c.events().iter())
            .any(|e| e["kind"] == "leader_elected" && e["epoch"] == json!(epoch))
            .then_some(())
    });
    let followers: Vec<u64> = (1..=3).filter(|id| *id != leader).collect();
    let (behind, ahead) = (followers[1], followers[0]); // behind has the higher id
    assert_ok(&c.zkdev(&["isolate", &behind.to_string(), "--no-wait"]), "isolate");
    poll(Duration::from_secs(10), "the isolated follower stops serving", || {
        srvr(c.client_port(behind)).is_none().then_some(())
    });
    with_client(
        &format!("127.0.0.1:{}", c.client_port(leader)),
        async |cl: zk::Client| {
            let o = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
            cl.create("/missed-1", b"", &o).await.unwrap();
            cl.create("/missed-2", b"", &o).await.unwrap();
        },
    );
    assert_ok(&c.zkdev(&["kill", &leader.to_string(), "--no-wait"]), "kill the leader");
    assert_ok(&c.zkdev(&["heal", "--no-wait"]), "heal");
    let (winner, new_epoch) = poll(Duration::from_secs(30), "a new leader", || {
        followers.iter().find_map(|id| {
            srvr(c.client_port(*id))
                .filter(|s| s.mode == "leader")
                .map(|s| (*id, s.epoch()))
        })
    });
    assert!(new_epoch > epoch);
    assert_eq!(
        winner, ahead,
        "the follower that has every write wins, though its id is lower"
    );
    let e = poll(Duration::from_secs(10), "explain election of the new epoch", || {
        let out = c.zkdev(&["explain", "election", "--json"]);
        let e = json_of(&out);
        // The journal, too, has the new leader (the supervisor looks every 100 ms).
        (out.status.success() && e["epoch"] == json!(new_epoch) && !e["journal"].is_null()).then_some(e)
    });
    assert_eq!(e["leader"].as_u64(), Some(winner));
    let cand = |id: u64| {
        let c = e["candidates"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == json!(id));
        key(c.unwrap_or_else(|| panic!("node {id} proposed itself: {e:#}")))
    };
    let (a, b) = (cand(ahead), cand(behind));
    assert!(
        a.0 == b.0 && a.1 > b.1 && a.2 < b.2,
        "same epoch, higher zxid, lower id: {a:?} {b:?}"
    );
    let switch = e["switches"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["node"] == json!(behind))
        .unwrap_or_else(|| panic!("node {behind} changed its vote: {e:#}"));
    assert_eq!(switch["to"]["id"].as_u64(), Some(ahead));
    assert_eq!(switch["follows_rule"], true);
    assert!(switch["why"].as_str().unwrap().contains("higher zxid"), "{switch}");
    let actions: Vec<&str> = e["journal"]["actions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let at = |word: &str| {
        actions
            .iter()
            .position(|a| a.starts_with(word))
            .unwrap_or_else(|| panic!("{word}: {actions:?}"))
    };
    assert!(at("isolate") < at("kill") && at("kill") < at("heal"), "{actions:?}");
}

/// A process of ours running as another local user (`nobody`), killed when dropped.
struct OtherUser(Child);

impl OtherUser {
    /// `script` in bash as uid/gid 65534; its stdout is read line by line.
    fn bash(script: &str) -> OtherUser {
        let child = Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "bash", "-c", script])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("setpriv runs (the test runs as root to act as another user)");
        OtherUser(child)
    }
}

impl Drop for OtherUser {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One GET on a fresh connection: the status line's code, or None when the server closed without answering.
fn raw_get(port: u16, path: &str, within: Duration) -> Option<u16> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(within)).ok()?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n").ok()?;
    let mut head = [0u8; 12];
    s.read_exact(&mut head).ok()?;
    String::from_utf8_lossy(&head[9..12]).parse().ok()
}

/// The dashboard port of a test on `slot` (each test of this binary has a slot of its own: they run at once).
const fn dashboard_port(slot: u16) -> u16 {
    19_500 + slot
}

/// A 3-node cluster on `slot` with its dashboard on `dashboard_port(slot)`; the address `zkdev dashboard`
/// printed.
fn cluster_with_dashboard(slot: u16) -> (TestCluster, String) {
    let c = TestCluster::new(slot);
    c.up(&["--nodes", "3"]);
    let out = c.zkdev(&["dashboard", "--port", &dashboard_port(slot).to_string(), "--json"]);
    assert_ok(&out, "zkdev dashboard");
    let url = json_of(&out)["url"].as_str().unwrap().to_string();
    (c, url)
}

/// The page carries no action token: another local user who can reach 127.0.0.1 (and so GET the page) cannot
/// act; only the address `zkdev dashboard` prints to the cluster's owner can.
#[test]
fn the_page_carries_no_token_only_the_printed_address_does() {
    const PORT: u16 = dashboard_port(35);
    let (_c, url) = cluster_with_dashboard(35);
    let base = format!("http://127.0.0.1:{PORT}/");
    let token = url
        .strip_prefix(&format!("{base}#token="))
        .unwrap_or_else(|| panic!("`zkdev dashboard` prints the page with its token: {url}"))
        .to_string();
    assert!(
        token.len() >= 32 && token.chars().all(|c| c.is_ascii_hexdigit()),
        "{token}"
    );
    let (code, page) = http("GET", &base, &[], None);
    assert_eq!(code, 200);
    let page = page.as_str().unwrap().to_string();
    assert!(!page.contains(&token), "GET / hands out the action token");
    let hex_run = page
        .as_bytes()
        .windows(32)
        .any(|w| w.iter().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b)));
    assert!(!hex_run, "the page carries something that looks like a token");
    // Actions: none without the token, none with an old one, one with the token of the printed address.
    let api = format!("{base}api/action");
    let resume = json!({ "action": "resume", "node": 1 });
    let (code, v) = http("POST", &api, &[], Some(&resume));
    assert_eq!(code, 403, "{v}");
    let (code, v) = http(
        "POST",
        &api,
        &[("x-zkdev-token", "0123456789abcdef0123456789abcdef")],
        Some(&resume),
    );
    assert_eq!(code, 403, "{v}");
    let (code, v) = http("POST", &api, &[("x-zkdev-token", &token)], Some(&resume));
    assert_eq!(code, 200, "{v}");
}

/// One local user's many event streams and silent connections do not lock the page out for another.
#[test]
fn one_user_s_connections_do_not_lock_out_another() {
    const PORT: u16 = dashboard_port(36);
    let (c, _url) = cluster_with_dashboard(36);
    // Another user holds 40 event streams and 40 silent connections; the owner still gets the page and a stream.
    let script = format!(
        "for i in $(seq 40); do exec {{fd}}<>/dev/tcp/127.0.0.1/{PORT} || exit 1; \
         printf 'GET /events HTTP/1.1\\r\\nHost: 127.0.0.1:{PORT}\\r\\n\\r\\n' >&$fd; done; \
         for i in $(seq 40); do exec {{fd}}<>/dev/tcp/127.0.0.1/{PORT} || exit 1; done; echo ready; exec sleep 300"
    );
    let mut other = OtherUser::bash(&script);
    let mut lines = Lines::of(&mut other.0);
    lines.wait_for("ready", Duration::from_secs(20));
    // Every one of them connected (the kernel completes the handshake; the supervisor accepts at once).
    poll(Duration::from_secs(10), "the other user's 80 connections", || {
        let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
        let to_us = format!("0100007F:{PORT:04X}");
        let n = table
            .lines()
            .filter(|l| l.split_whitespace().nth(2) == Some(to_us.as_str()))
            .count();
        (n >= 80).then_some(())
    });
    let t = Instant::now();
    assert_eq!(
        raw_get(PORT, "/", Duration::from_secs(5)),
        Some(200),
        "the page, while another user holds 80 connections"
    );
    assert_eq!(
        raw_get(PORT, "/events", Duration::from_secs(5)),
        Some(200),
        "an event stream for the owner too"
    );
    eprintln!(
        "dashboard: page and stream served in {} ms beside 80 connections of another user",
        t.elapsed().as_millis()
    );
    drop(lines);
    drop(other);
    let _ = c;
}

/// The owner-only control socket cuts a 300 MB request line off early and drops an idle request; the
/// supervisor stays small and answering.
#[test]
fn the_control_socket_bounds_a_request_s_size_and_idle_time() {
    let c = TestCluster::new(68);
    c.up(&["--nodes", "1"]);
    let socket = c.cluster_dir().join("supervisor.sock");
    let sup = c.supervisor_pid().expect("a supervisor");
    let rss_kb = |pid: i32| -> u64 {
        let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        s.lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    let before = rss_kb(sup);
    let sent = {
        use std::io::Write;
        let mut s = std::os::unix::net::UnixStream::connect(&socket).expect("control socket");
        s.set_write_timeout(Some(Duration::from_secs(20))).unwrap();
        let chunk = vec![b'x'; 1 << 20];
        let mut sent = 0usize;
        while sent < 300 << 20 {
            match s.write(&chunk) {
                Ok(n) => sent += n,
                Err(_) => break,
            }
        }
        sent
    };
    let after = rss_kb(sup);
    eprintln!(
        "control socket: the server took {} MB of a 300 MB line; supervisor RSS {before} kB -> {after} kB",
        sent >> 20
    );
    assert!(
        sent < 64 << 20,
        "the supervisor read {} MB of one request line",
        sent >> 20
    );
    assert!(after < before + 32 * 1024, "supervisor RSS {before} kB -> {after} kB");
    let t = Instant::now();
    let dropped = {
        use std::io::{Read, Write};
        let mut s = std::os::unix::net::UnixStream::connect(&socket).expect("control socket");
        s.write_all(b"{\"op\":").unwrap();
        s.set_read_timeout(Some(Duration::from_secs(40))).unwrap();
        let mut buf = [0u8; 64];
        matches!(s.read(&mut buf), Ok(0) | Err(_)) && t.elapsed() < Duration::from_secs(30)
    };
    assert!(dropped, "an idle request was held for {} ms", t.elapsed().as_millis());
    eprintln!(
        "control socket: an idle request dropped after {} ms",
        t.elapsed().as_millis()
    );
    assert_ok(&c.zkdev(&["status"]), "status after the oversized and idle requests");
    assert_eq!(c.supervisor_pid(), Some(sup), "the same supervisor answers");
}

/// A node that lost data in a power cut is shown as such on the page (the same cut `status` shows), through
/// its restart, until `zkdev reset` forgets it. With `forceSync=no` the transaction log is never fsynced, so
/// the cut of a follower right after a burst of writes drops bytes (the test asserts it: it cannot pass on a
/// cut that lost nothing).
#[test]
fn a_node_that_lost_data_in_a_power_cut_is_shown_until_reset() {
    const SLOT: u16 = 37;
    ensure_faultfs_built();
    let c = TestCluster::new(SLOT);
    let profile = c.home_path().join("nosync.toml");
    std::fs::write(&profile, "extends = \"fast\"\n[zookeeper.extra]\nforceSync = \"no\"\n").unwrap();
    let offset = port_offset(SLOT).to_string();
    assert_ok(
        &c.zkdev(&[
            "up",
            "--nodes",
            "3",
            "--disk-faults",
            "--profile",
            profile.to_str().unwrap(),
            "--port-offset",
            &offset,
        ]),
        "zkdev up with forceSync=no",
    );
    let out = c.zkdev(&["dashboard", "--port", &dashboard_port(SLOT).to_string(), "--json"]);
    assert_ok(&out, "zkdev dashboard");
    let url = json_of(&out)["url"].as_str().unwrap().to_string();
    let b = Browser::start_on(19_600 + SLOT);
    b.go(&url);
    poll(Duration::from_secs(10), "the page shows a leader", || {
        b.js("return document.getElementById('leader').dataset.id")
            .as_str()
            .filter(|s| !s.is_empty())
            .map(|_| ())
    });
    assert_eq!(
        b.js("return document.querySelectorAll('.lost').length"),
        json!(0),
        "a mark before any cut"
    );
    // 2.5 s of acknowledged writes, then at once the cut of a follower: the kernel had written back only
    // what is older than 1 s, so the tail is on no disk. (A cut less than 1 s after the log's first write
    // would empty the new log, header and all, and ZooKeeper 3.8 would refuse to start: `java.io.EOFException`.)
    let (follower, _, _) = c.node_in_mode("follower");
    let connect = format!("127.0.0.1:{}", c.client_port(follower));
    with_client(&connect, async |z| {
        let opts = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
        let t = Instant::now();
        let mut i = 0;
        while t.elapsed() < Duration::from_millis(2500) {
            z.create(&format!("/burst-{i:05}"), &[7u8; 200], &opts)
                .await
                .expect("an acknowledged write");
            i += 1;
        }
    });
    let cut = json(
        &c.zkdev(&[
            "disk",
            &follower.to_string(),
            "--power-cut",
            "--writeback",
            "1s",
            "--json",
        ]),
        "disk --power-cut",
    );
    let lost = cut["bytes_lost"].as_u64().unwrap();
    assert!(
        lost > 0,
        "forceSync=no: the cut of node {follower} dropped nothing: {cut}"
    );
    let at_ms = cut["cuts"][0]["at_ms"].as_u64().unwrap();
    let clock = {
        let s = at_ms / 1000 % 86_400;
        format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    };
    let bytes = lost
        .to_string()
        .as_bytes()
        .rchunks(3)
        .rev()
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect::<Vec<_>>()
        .join(",");
    let want = format!("lost {bytes} B in a power cut at {clock}");
    // `status` names the same cut.
    let status = c.status();
    assert_eq!(
        status["power_cuts"][follower.to_string()]["at_ms"],
        json!(at_ms),
        "{status}"
    );
    let shown = |id: u64| -> Option<String> {
        b.js(&format!(
            "const e = document.getElementById('lost-{id}'); return e ? e.textContent : null"
        ))
        .as_str()
        .map(str::to_string)
    };
    let text = poll(
        Duration::from_secs(10),
        "the page marks the node that lost data",
        || shown(follower),
    );
    assert_eq!(text, want, "the node's mark");
    let title = b.js(&format!("return document.getElementById('lost-{follower}').title"));
    assert!(
        title.as_str().unwrap().contains("data/version-2/log."),
        "the mark's detail names the log: {title}"
    );
    let picture = b.js(&format!(
        "const g = document.querySelector('#svg g.node[data-id=\"{follower}\"] .lost-mark'); return g ? g.textContent : null"
    ));
    assert!(
        picture.as_str().is_some_and(|t| t.contains(&format!("lost {bytes} B"))),
        "the picture's mark: {picture}"
    );
    for other in (1..=3u64).filter(|i| *i != follower) {
        assert_eq!(shown(other), None, "node {other} lost nothing but is marked");
    }
    b.screenshot("dashboard-power-cut-1280x800.png");
    // Started again, it still lost that data: the mark stays.
    assert_ok(&c.zkdev(&["start", &follower.to_string()]), "start the cut node");
    poll(Duration::from_secs(20), "the page shows the node serving again", || {
        let mode = b.js(&format!(
            "return document.querySelector('#node-{follower} td.mode').textContent"
        ));
        (mode.as_str() == Some("follower")).then_some(())
    });
    assert_eq!(
        shown(follower).as_deref(),
        Some(want.as_str()),
        "the mark after the restart"
    );
    // `reset` wipes every znode: what the cut lost is gone with them, and so is the mark (and status's line).
    let out = c.zkdev(&["reset"]);
    assert_ok(&out, "zkdev reset");
    assert!(
        stdout(&out).contains(&format!("forgot the power cut of node {follower}")),
        "{}",
        stdout(&out)
    );
    poll(Duration::from_secs(10), "the mark gone after reset", || {
        (b.js("return document.querySelectorAll('.lost, .lost-mark').length") == json!(0)).then_some(())
    });
    assert_eq!(c.status()["power_cuts"], json!({}), "status after reset");
    eprintln!("dashboard: node {follower} shown as `{want}` from the cut through its restart, gone after reset");
}
