//! zkdev as a Rust library: a test brings an ensemble up through `engine::Ensemble` (not the binary's
//! command line), kills its leader, reads the new one from the typed status, and drops it; dropping it,
//! also while a test panics, leaves no JVM, no supervisor and no cluster directory.

mod common;

use std::time::Duration;

use common::*;
use zkdev::engine::kill_leader::KillLeader;
use zkdev::engine::{Ensemble, Options};
use zkdev::model::server::Mode;
use zkdev::zk::observe::ProcessState;

fn options(c: &TestCluster) -> Options {
    Options::new(c.home_path())
        .cluster(&c.name)
        .nodes(3)
        .port_offset(c.offset)
        .zkdev_binary(env!("CARGO_BIN_EXE_zkdev"))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Up, kill the leader, see the new leader in the typed status (and in what the servers answer), drop:
/// nothing left. Then the same ensemble made inside a panicking test: also nothing left.
#[test]
fn an_ensemble_from_the_library_elects_a_new_leader_and_drops_clean() {
    // The harness's guard stays as the backstop should the library's own cleanup fail.
    let c = TestCluster::new(69);
    let rt = runtime();
    rt.block_on(async {
        let ensemble = Ensemble::up(options(&c)).await.expect("the ensemble comes up");
        let before = ensemble.status().await.unwrap();
        let old = before.leader.expect("one leader after up");
        assert_eq!(before.quorum.voters_up, 3, "{before:?}");

        let killed = ensemble.kill_leader(&KillLeader::default()).await.unwrap();
        assert_eq!(killed.old_leader, old);
        let new = killed.new_leader.expect("a new leader was seen");
        assert_ne!(new, old);

        let after = ensemble.status().await.unwrap();
        assert_eq!(after.leader, Some(new), "{after:?}");
        assert!(
            after.epoch > before.epoch,
            "epoch {:?} -> {:?}",
            before.epoch,
            after.epoch
        );
        assert_eq!(after.node(new).and_then(|n| n.mode()), Some(Mode::Leader));
        let gone = after.node(old).map(|n| n.process());
        assert!(
            matches!(gone, Some(ProcessState::Crashed | ProcessState::Stopped)),
            "{gone:?}"
        );
        // What the server itself says, not only zkdev's view of it.
        assert_eq!(
            srvr(c.client_port(u64::from(new))).map(|s| s.mode),
            Some("leader".to_string())
        );
        assert!(!c.jvms().is_empty() && !c.supervisors().is_empty());
        drop(ensemble);
    });
    assert!(c.jvms().is_empty(), "JVMs left after drop: {:?}", c.jvms());
    assert!(
        c.supervisors().is_empty(),
        "supervisor left after drop: {:?}",
        c.supervisors()
    );
    assert!(!c.cluster_dir().exists(), "the cluster directory was not removed");

    // A test that panics while it holds an ensemble still leaves nothing.
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        rt.block_on(async {
            let ensemble = Ensemble::up(options(&c)).await.expect("the ensemble comes up again");
            assert!(ensemble.status().await.unwrap().leader.is_some());
            panic!("on purpose, holding the ensemble");
        })
    }));
    assert!(panicked.is_err());
    poll(Duration::from_secs(5), "the panicking test's ensemble gone", || {
        (c.jvms().is_empty() && c.supervisors().is_empty()).then_some(())
    });
    assert!(
        !c.cluster_dir().exists(),
        "the cluster directory was not removed after the panic"
    );
}
