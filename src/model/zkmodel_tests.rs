use super::*;

const E1: i64 = 1 << 32;
const E2: i64 = 2 << 32;

/// An acknowledged operation invoked at 10*id us, answered 5 us later.
fn op(id: u64, session: &str, f: F, path: &str) -> ZkOp {
    ZkOp {
        id,
        session: session.into(),
        f,
        path: path.into(),
        call_us: id * 10,
        ret_us: Some(id * 10 + 5),
        outcome: Outcome::Ok,
        node: Some(1),
        zxid: None,
        czxid: None,
        mzxid: None,
        pzxid: None,
        version: None,
        value: None,
        children: None,
        absent: false,
        ephemeral: false,
        sync: false,
        watch: None,
        reg: None,
        event: None,
        ops: Vec::new(),
        error: None,
    }
}

fn set(id: u64, s: &str, path: &str, value: &str, version: i32, z: i64) -> ZkOp {
    ZkOp {
        value: Some(value.into()),
        version: Some(version),
        mzxid: Some(z),
        ..op(id, s, F::Set, path)
    }
}

fn create(id: u64, s: &str, path: &str, value: &str, z: i64) -> ZkOp {
    ZkOp {
        value: Some(value.into()),
        czxid: Some(z),
        ..op(id, s, F::Create, path)
    }
}

fn get(id: u64, s: &str, node: u32, path: &str, value: &str, version: i32, m: i64) -> ZkOp {
    ZkOp {
        node: Some(node),
        value: Some(value.into()),
        version: Some(version),
        mzxid: Some(m),
        ..op(id, s, F::Get, path)
    }
}

fn event(id: u64, s: &str, path: &str, reg: u64) -> ZkOp {
    ZkOp {
        reg: Some(reg),
        zxid: Some(-1),
        event: Some("changed".into()),
        ..op(id, s, F::Event, path)
    }
}

/// Two sessions on a znode /a: writes through the leader, reads through a lagging follower (stale but
/// allowed), a sync read, a data watch whose event comes with zxid -1, a move, an ephemeral, a close.
fn valid() -> Vec<ZkOp> {
    vec![
        op(0, "A", F::Open, ""),
        op(1, "B", F::Open, ""),
        create(2, "A", "/a", "0", E1 + 1),
        set(3, "A", "/a", "1", 1, E1 + 2),
        // B reads through node 3, still at the create: stale, allowed (B saw nothing newer).
        ZkOp {
            watch: Some(Watch::Data),
            ..get(4, "B", 3, "/a", "0", 0, E1 + 1)
        },
        set(5, "A", "/a", "2", 2, E1 + 3),
        event(6, "B", "/a", 4),
        // After the event: at least as new as the change it announced (zxid E1+2).
        get(7, "B", 3, "/a", "1", 1, E1 + 2),
        ZkOp {
            sync: true,
            ..get(8, "B", 3, "/a", "2", 2, E1 + 3)
        },
        create(
            9,
            "A",
            "/e",
            "mine",
            E1 + 4,
        ),
        ZkOp {
            node: Some(2),
            ..op(10, "A", F::Move, "")
        },
        get(11, "A", 2, "/a", "2", 2, E1 + 3),
        ZkOp {
            sync: true,
            ..get(12, "B", 2, "/e", "mine", 0, E1 + 4)
        },
        op(13, "A", F::Close, ""),
        ZkOp {
            sync: true,
            absent: true,
            ..op(14, "B", F::Get, "/e")
        },
    ]
    .into_iter()
    .map(|mut o| {
        if o.id == 9 {
            o.ephemeral = true;
        }
        o
    })
    .collect()
}

fn only(v: &ZkVerdict) -> &Violation {
    assert!(!v.valid, "expected a violation: {}", v.summary());
    &v.violations[0]
}

#[test]
fn a_valid_history_passes_with_stale_reads_watches_moves_and_ephemerals() {
    let v = check(&valid());
    assert!(v.valid, "{:#?}", v.violations);
    assert_eq!(v.sessions, 2);
    assert_eq!(v.events, 1);
    assert!(v.summary().ends_with("valid"), "{}", v.summary());
}

#[test]
fn a_read_going_back_in_time_for_one_session_is_caught() {
    let mut h = valid();
    // B, after reading version 1 (zxid E1+2), reads version 0 again through another node.
    h.push(get(15, "B", 1, "/a", "0", 0, E1 + 1));
    let v = check(&h);
    let x = only(&v);
    assert_eq!(x.guarantee, Guarantee::MonotonicReads, "{x:#?}");
    assert_eq!(x.name, "a session's reads never go back in time");
    // The read that set the floor (the sync read #12 of /e at E1+4), the change that replaced E1+1, the stale read.
    assert_eq!(x.excerpt, vec![3, 12, 15]);
    assert!(x.message.contains("session B, node 1"), "{}", x.message);
    assert!(x.message.contains("0x100000001"), "{}", x.message);
    let lines = excerpt_lines(&h, x);
    assert!(lines[2].starts_with("#15 session B node 1 getData /a -> ok \"0\" v0 mzxid=0x100000001"), "{lines:?}");
}

#[test]
fn a_lost_acknowledged_write_is_caught() {
    let mut h = valid();
    // A acknowledged setData v3 at E1+5, and a sync read later shows v2 at E1+3: no read ever showed v3.
    h.push(set(20, "A2", "/a", "3", 3, E1 + 5));
    h.push(ZkOp {
        sync: true,
        ..get(21, "C", 1, "/a", "2", 2, E1 + 3)
    });
    let v = check(&h);
    let x = only(&v);
    assert_eq!(x.guarantee, Guarantee::LostWrite, "{x:#?}");
    assert!(x.message.contains("it was lost"), "{}", x.message);
    assert_eq!(x.excerpt, vec![20, 21]);
}

#[test]
fn a_write_shown_differently_at_its_zxid_is_a_lost_write() {
    let mut h = valid();
    h.push(get(30, "C", 2, "/a", "other", 2, E1 + 3));
    let x = only(&check(&h)).clone();
    assert_eq!(x.guarantee, Guarantee::LostWrite, "{x:#?}");
    assert_eq!(x.excerpt, vec![5, 30]);
}

#[test]
fn a_watch_delivered_after_the_data_it_announces_was_read_is_caught() {
    let mut h = valid();
    // B reads version 1 (E1+2) before the event #6 of its watch (registered at E1+1) arrives.
    let early = get(5, "B", 3, "/a", "1", 1, E1 + 2);
    h.retain(|o| o.id != 5);
    h.push(ZkOp {
        call_us: 40,
        ret_us: Some(45),
        ..set(55, "A", "/a", "2", 2, E1 + 3)
    });
    h.push(early);
    let v = check(&h);
    let x = v
        .violations
        .iter()
        .find(|x| x.guarantee == Guarantee::WatchBeforeData)
        .unwrap_or_else(|| panic!("{:#?}", v.violations));
    assert_eq!(x.excerpt, vec![4, 5, 6]);
    assert!(x.message.contains("before the event #6"), "{}", x.message);
}

#[test]
fn a_read_after_a_watch_event_that_shows_the_old_state_is_caught() {
    let mut h = valid();
    h.retain(|o| o.id != 7 && o.id != 8);
    h.push(get(7, "B", 3, "/a", "0", 0, E1 + 1));
    let x = only(&check(&h)).clone();
    assert_eq!(x.guarantee, Guarantee::WatchThenNewer, "{x:#?}");
    // The event, the change it announced (inferred: the event came with zxid -1), the read.
    assert_eq!(x.excerpt, vec![3, 6, 7]);
    assert!(x.message.contains("announced to its session by the watch event #6"), "{}", x.message);
}

#[test]
fn a_watch_fired_twice_is_caught() {
    let mut h = valid();
    h.push(ZkOp {
        id: 16,
        ..event(16, "B", "/a", 4)
    });
    let x = only(&check(&h)).clone();
    assert_eq!(x.guarantee, Guarantee::WatchOnce, "{x:#?}");
    assert_eq!(x.excerpt, vec![4, 6, 16]);
    assert!(x.message.contains("fired twice"), "{}", x.message);
}

#[test]
fn an_ephemeral_gone_before_its_session_ended_is_caught() {
    let mut h = valid();
    // A sync read finds /e gone while its session A still writes afterwards (#13 closes later).
    h.retain(|o| o.id != 12);
    h.push(ZkOp {
        sync: true,
        absent: true,
        ..op(12, "B", F::Get, "/e")
    });
    h.push(ZkOp {
        call_us: 126,
        ret_us: Some(128),
        ..set(99, "A", "/a", "3", 3, E1 + 6)
    });
    let v = check(&h);
    let x = v
        .violations
        .iter()
        .find(|x| x.guarantee == Guarantee::Ephemeral)
        .unwrap_or_else(|| panic!("{:#?}", v.violations));
    assert_eq!(x.name, "ephemerals vanish exactly when their session ends");
    assert_eq!(x.excerpt, vec![9, 12, 99]);
}

#[test]
fn an_ephemeral_still_there_after_its_session_closed_is_caught() {
    let mut h = valid();
    h.retain(|o| o.id != 14);
    h.push(ZkOp {
        sync: true,
        ..get(14, "B", 1, "/e", "mine", 0, E1 + 4)
    });
    let x = only(&check(&h)).clone();
    assert_eq!(x.guarantee, Guarantee::Ephemeral, "{x:#?}");
    assert_eq!(x.excerpt, vec![9, 13, 14]);
}

#[test]
fn a_sync_read_missing_an_acknowledged_write_is_caught_and_a_leader_change_names_zookeeper_1675() {
    let mut h = valid();
    // A new leader (epoch 2) acknowledges a write; C's sync+read through node 2 still shows epoch 1's state;
    // a later read shows the write, so it was not lost: the sync read was stale.
    h.push(set(40, "A2", "/a", "3", 3, E2 + 1));
    h.push(ZkOp {
        sync: true,
        ..get(41, "C", 2, "/a", "2", 2, E1 + 3)
    });
    h.push(get(42, "D", 1, "/a", "3", 3, E2 + 1));
    let v = check(&h);
    let x = only(&v);
    assert_eq!(x.guarantee, Guarantee::SyncRead, "{x:#?}");
    assert_eq!(x.excerpt, vec![40, 41]);
    assert!(x.cause.as_deref().unwrap_or("").contains("ZOOKEEPER-1675"), "{x:#?}");
    // Without the sync, the same read is a stale read ZooKeeper allows.
    let plain: Vec<ZkOp> = h
        .into_iter()
        .map(|mut o| {
            if o.id == 41 {
                o.sync = false;
            }
            o
        })
        .collect();
    assert!(check(&plain).valid);
}

#[test]
fn two_writes_with_one_zxid_or_against_real_time_break_the_write_order() {
    let mut h = valid();
    h.push(set(50, "C", "/b", "x", 1, E1 + 2));
    let x = only(&check(&h)).clone();
    assert_eq!(x.guarantee, Guarantee::WriteOrder);
    assert_eq!(x.excerpt, vec![3, 50]);
    let mut h = valid();
    h.push(create(50, "C", "/b", "x", E1));
    let v = check(&h);
    assert!(
        v.violations.iter().any(|x| x.guarantee == Guarantee::WriteOrder && x.excerpt.contains(&50)),
        "{:#?}",
        v.violations
    );
}

#[test]
fn a_session_whose_later_write_got_a_lower_zxid_breaks_fifo() {
    let mut h = valid();
    h.push(ZkOp {
        call_us: 1,
        ret_us: Some(2),
        ..set(60, "F", "/f", "1", 1, E1 + 20)
    });
    h.push(ZkOp {
        call_us: 3,
        ret_us: Some(4),
        ..set(61, "F", "/g", "1", 1, E1 + 19)
    });
    let v = check(&h);
    assert!(
        v.violations.iter().any(|x| x.guarantee == Guarantee::SessionFifo && x.excerpt == vec![60, 61]),
        "{:#?}",
        v.violations
    );
}

#[test]
fn lines_round_trip_and_a_bad_line_is_named() {
    for o in valid() {
        let line = serde_json::to_string(&o).unwrap();
        assert_eq!(parse_line(&line).unwrap(), o);
    }
    let text = "{\"id\":1,\"session\":\"0x1\",\"f\":\"get\",\"path\":\"/a\",\"call_us\":1,\"outcome\":\"ok\"}\n\n{\"id\":2}\n";
    let (line, e) = parse(text).unwrap_err();
    assert_eq!(line, 3);
    assert!(e.contains("missing field `session`"), "{e}");
    assert!(parse_line("{\"id\":1,\"session\":\"s\",\"f\":\"frob\",\"call_us\":1,\"outcome\":\"ok\"}").is_err());
}

/// 100,000 operations by 10 sessions on 20 znodes, 5 % with unknown outcome, reads stale by a few writes:
/// valid. Prints the time (asserting none).
#[test]
fn a_large_generated_history_is_checked_near_linearly() {
    let mut rng = crate::model::rng::Rng::new(7);
    let mut h = Vec::new();
    let keys = 20;
    // Per znode: the zxids of its versions.
    let mut versions: Vec<Vec<i64>> = vec![Vec::new(); keys];
    let mut z = E1;
    let mut floor = [0i64; 10];
    for k in 0..keys {
        z += 1;
        versions[k].push(z);
        h.push(create(h.len() as u64, "setup", &format!("/k{k}"), "0", z));
    }
    while h.len() < 100_000 {
        let id = h.len() as u64;
        let s = rng.range(0, 9) as usize;
        let k = rng.range(0, keys as u64 - 1) as usize;
        let path = format!("/k{k}");
        let session = format!("s{s}");
        if rng.range(0, 99) < 30 {
            z += 1;
            let v = versions[k].len() as i32;
            let mut o = set(id, &session, &path, &v.to_string(), v, z);
            if rng.range(0, 99) < 5 {
                o.outcome = Outcome::Unknown;
                o.ret_us = None;
                o.mzxid = None;
            } else {
                floor[s] = floor[s].max(z);
            }
            versions[k].push(z);
            h.push(o);
        } else {
            // The newest version no older than the session's floor, or a few behind.
            let vs = &versions[k];
            let newest = vs.len() - 1;
            let lag = rng.range(0, 2) as usize;
            let mut i = newest.saturating_sub(lag);
            while i < newest && vs[i + 1] <= floor[s] {
                i += 1;
            }
            floor[s] = floor[s].max(vs[i]);
            h.push(get(id, &session, (s % 5) as u32 + 1, &path, &i.to_string(), i as i32, vs[i]));
        }
    }
    let t = std::time::Instant::now();
    let v = check(&h);
    eprintln!(
        "zkmodel: {} operations, {} sessions checked in {:.1} ms: {}",
        v.ops,
        v.sessions,
        t.elapsed().as_secs_f64() * 1e3,
        v.summary()
    );
    assert!(v.valid, "{:#?}", &v.violations[..v.violations.len().min(2)]);
}
