//! [`Ensemble`]: a real ZooKeeper ensemble owned by a Rust program (a `cargo test`, say): brought up from
//! [`Options`], observed through the typed [`ClusterStatus`], broken with the engine's faults, and stopped
//! and removed by [`Ensemble::down`], or by drop (also when the test panics).

use std::path::PathBuf;
use std::time::Duration;

use super::kill_leader::{self, KillLeader, KillReport};
use super::nemesis::Env;
use crate::error::{Error, Result};
use crate::model::spec::ClusterSpec;
use crate::os::state::{ClusterPaths, Home};
use crate::supervisor::control::{Request, Supervisor};
use crate::zk::observe::{self, ClusterStatus};

/// How to bring an ensemble up: where it lives, its shape and its ports. Built with [`Options::new`] and
/// the methods after it.
#[derive(Debug, Clone)]
pub struct Options {
    home: PathBuf,
    cluster: String,
    nodes: u32,
    observers: u32,
    profile: String,
    port_offset: Option<u16>,
    zkdev: PathBuf,
    timeout: Duration,
    purge: bool,
}

impl Options {
    /// An ensemble of 3 voters on the `fast` profile, in zkdev home `home` (a directory of the caller's:
    /// a temporary one in a test), cluster `default`, removed when dropped. The supervisor that owns its
    /// nodes is the `zkdev` binary found on `PATH` unless [`Options::zkdev_binary`] names another.
    pub fn new(home: impl Into<PathBuf>) -> Options {
        Options {
            home: home.into(),
            cluster: "default".into(),
            nodes: 3,
            observers: 0,
            profile: "fast".into(),
            port_offset: None,
            zkdev: PathBuf::from("zkdev"),
            timeout: Duration::from_secs(60),
            purge: true,
        }
    }

    /// The cluster's name inside the home.
    pub fn cluster(mut self, name: impl Into<String>) -> Options {
        self.cluster = name.into();
        self
    }

    /// Voting participants (ids 1..=n).
    pub fn nodes(mut self, n: u32) -> Options {
        self.nodes = n;
        self
    }

    /// Observers (ids after the voters).
    pub fn observers(mut self, n: u32) -> Options {
        self.observers = n;
        self
    }

    /// A built-in profile's name (`fast`, `default`, `chaos`, ...) or a profile file's path.
    pub fn profile(mut self, profile: impl Into<String>) -> Options {
        self.profile = profile.into();
        self
    }

    /// Added to every port (client 2181 + k, ...), so ensembles can run side by side.
    pub fn port_offset(mut self, k: u16) -> Options {
        self.port_offset = Some(k);
        self
    }

    /// The `zkdev` binary that runs the supervisor (in a test of this crate: `env!("CARGO_BIN_EXE_zkdev")`).
    pub fn zkdev_binary(mut self, path: impl Into<PathBuf>) -> Options {
        self.zkdev = path.into();
        self
    }

    /// How long [`Ensemble::up`] waits for every node to serve with one leader.
    pub fn timeout(mut self, timeout: Duration) -> Options {
        self.timeout = timeout;
        self
    }

    /// Keep the cluster's directory (data, logs) when the ensemble is stopped; by default it is removed.
    pub fn keep(mut self) -> Options {
        self.purge = false;
        self
    }
}

/// A running ensemble. Dropping it stops every node and its supervisor and (unless [`Options::keep`])
/// removes the cluster's directory; [`Ensemble::down`] does the same and reports what went wrong.
#[derive(Debug)]
pub struct Ensemble {
    options: Options,
    home: Home,
    spec: ClusterSpec,
    paths: ClusterPaths,
    /// Set once stopped, so drop does nothing more.
    down: bool,
}

/// The cause journalled with what the library does.
const CAUSE: &str = "zkdev library (Ensemble)";

impl Ensemble {
    /// Create the cluster, start its supervisor and nodes, and return once every node serves with one
    /// leader. Fails (and leaves nothing running) when the cluster already exists, a port is taken, or the
    /// ensemble does not serve within the timeout.
    pub async fn up(options: Options) -> Result<Ensemble> {
        let home = Home {
            root: options.home.clone(),
        };
        crate::model::spec::validate_cluster_name(&options.cluster)?;
        let paths = home.cluster(&options.cluster);
        if paths.exists() {
            return Err(Error::usage(format!(
                "cluster `{}` already exists in {}: an Ensemble makes a new one; pick another name or home",
                options.cluster,
                options.home.display()
            )));
        }
        let flags = super::spec::NewCluster {
            profile: Some(&options.profile),
            port_offset: options.port_offset,
            voters: options.nodes,
            observers: options.observers,
            ..Default::default()
        };
        let spec = super::spec::new_spec(&options.home, &options.cluster, flags)?;
        crate::os::launch::check_dist_present(&spec)?;
        crate::os::launch::check_ports_free(&spec, &spec.ids()).await?;
        crate::os::launch::check_proxy_ports_free(&spec)?;
        std::fs::create_dir_all(&paths.root).map_err(|e| Error::io("cannot create", &paths.root, e))?;
        let mut ensemble = Ensemble {
            options,
            home,
            spec,
            paths,
            down: false,
        };
        // From here on, a failure stops and removes what was made (the drop below).
        let e = &mut ensemble;
        if e.spec.settings.reconfig {
            e.spec.super_digest = Some(crate::os::super_user::create(&e.paths)?);
        }
        crate::os::state::write_atomic(
            &e.paths.marker(),
            format!(
                "This directory was created by zkdev; `zkdev down --purge` removes it.\nuid={}\n",
                e.spec.uid
            )
            .as_bytes(),
        )?;
        crate::os::state::write_atomic(&e.paths.spec_file(), e.spec.to_toml().as_bytes())?;
        crate::os::tls::ensure(&e.spec, &e.paths)?;
        let sup = e.supervisor().await?;
        let start = Request::Start {
            ids: e.spec.ids(),
            cause: CAUSE.into(),
        };
        sup.ask_for::<crate::supervisor::replies::StartReply>(start, Duration::from_secs(120))
            .await?;
        match observe::wait_until(&e.spec, &e.paths, e.options.timeout, |s| s.healthy(), |_| {}).await {
            Ok(_) => Ok(ensemble),
            Err((_, s)) => Err(Error::failed(format!(
                "the ensemble did not serve with one leader within {}: {}",
                crate::model::span::secs(ensemble.options.timeout),
                crate::model::status::summary_line(&s)
            ))),
        }
    }

    /// The cluster's supervisor, started from the configured binary when none answers.
    async fn supervisor(&self) -> Result<Supervisor> {
        if let Some(s) = Supervisor::find(&self.paths).await {
            return Ok(s);
        }
        let status = std::process::Command::new(&self.options.zkdev)
            .arg("--home")
            .arg(&self.home.root)
            .arg("--cluster")
            .arg(&self.options.cluster)
            .args(["supervise", "--detach"])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .map_err(|e| {
                Error::env(format!(
                    "cannot run {} to start the supervisor: {e}; name the zkdev binary with Options::zkdev_binary",
                    self.options.zkdev.display()
                ))
            })?;
        if !status.success() {
            return Err(Error::env(format!(
                "{} supervise did not start ({status}); see {}",
                self.options.zkdev.display(),
                self.paths.supervisor_log().display()
            )));
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::time::Instant::now() < deadline {
            if let Some(s) = Supervisor::find(&self.paths).await {
                return Ok(s);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Err(Error::env(format!(
            "the supervisor did not answer within 10 s; see {}",
            self.paths.supervisor_log().display()
        )))
    }

    /// The cluster's spec: node ids, roles, ports.
    pub fn spec(&self) -> &ClusterSpec {
        &self.spec
    }

    /// The connect string of every node's client port.
    pub fn connect_string(&self) -> String {
        self.spec.connect_string()
    }

    /// Every node as its server answers now: mode, zxid, epoch, process state; the leader and the quorum.
    pub async fn status(&self) -> Result<ClusterStatus> {
        Ok(observe::gather(&self.spec, &self.paths, &self.paths.load_state()?).await)
    }

    /// Wait until every node serves with one leader, within `timeout`.
    pub async fn wait_healthy(&self, timeout: Duration) -> Result<ClusterStatus> {
        observe::wait_until(&self.spec, &self.paths, timeout, |s| s.healthy(), |_| {})
            .await
            .map_err(|(_, s)| {
                Error::failed(format!(
                    "not every node served with one leader within {}: {}",
                    crate::model::span::secs(timeout),
                    crate::model::status::summary_line(&s)
                ))
            })
    }

    /// Kill the leader (as `zkdev kill-leader` does) and return once a new one serves with a higher epoch.
    pub async fn kill_leader(&self, options: &KillLeader) -> Result<KillReport> {
        let sup = self.supervisor().await?;
        let (report, _) = kill_leader::kill_leader(&sup, CAUSE, &self.spec, &self.paths, options).await?;
        Ok(report)
    }

    /// What the engine's faults need: this ensemble's supervisor and cluster, with `force` for take-downs
    /// that lose the quorum. Pass it to [`super::faults`] and [`super::nemesis`].
    pub async fn with_env<T>(&self, force: bool, f: impl AsyncFnOnce(&Env<'_>) -> T) -> Result<T> {
        let sup = self.supervisor().await?;
        let env = Env {
            sup: &sup,
            cause: CAUSE,
            spec: &self.spec,
            paths: &self.paths,
            force,
        };
        Ok(f(&env).await)
    }

    /// Stop every node and the supervisor, then (unless [`Options::keep`]) remove the cluster's directory.
    pub async fn down(mut self) -> Result<()> {
        self.down = true;
        stop(&self.paths, &self.options).await
    }
}

/// Stop the supervisor (which stops the nodes first) and remove the cluster's directory unless kept. With
/// no supervisor answering (it died), `zkdev down` stops the nodes it finds through /proc.
async fn stop(paths: &ClusterPaths, options: &Options) -> Result<()> {
    let purge = options.purge;
    if Supervisor::find(paths).await.is_none() && paths.root.exists() {
        let mut down = tokio::process::Command::new(&options.zkdev);
        down.arg("--home")
            .arg(&options.home)
            .arg("--cluster")
            .arg(&options.cluster)
            .args(["down", "--grace", "5"]);
        if purge {
            down.arg("--purge");
        }
        let out = down
            .output()
            .await
            .map_err(|e| Error::env(format!("cannot run {}: {e}", options.zkdev.display())))?;
        if !out.status.success() {
            return Err(Error::failed(format!(
                "`zkdev down` failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        return Ok(());
    }
    if let Some(sup) = Supervisor::find(paths).await {
        let req = Request::Shutdown {
            grace_ms: 5000,
            cause: CAUSE.into(),
        };
        sup.ask_for::<crate::supervisor::replies::ShutdownReply>(req, Duration::from_secs(40))
            .await?;
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while Supervisor::find(paths).await.is_some() && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    if purge && paths.root.exists() {
        std::fs::remove_dir_all(&paths.root).map_err(|e| Error::io("cannot remove", &paths.root, e))?;
    }
    Ok(())
}

impl Drop for Ensemble {
    /// Stop and remove what [`Ensemble::up`] made, on a thread of its own (drop cannot wait on the async
    /// runtime it may run inside, and may run while a test panics).
    fn drop(&mut self) {
        if self.down {
            return;
        }
        let (paths, options) = (self.paths.clone(), self.options.clone());
        let stopped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build();
            runtime.map(|r| r.block_on(stop(&paths, &options)))
        })
        .join();
        // Drop has no caller to return an error to, and the engine prints nothing: `Ensemble::down` is the
        // call that reports a failed stop. A failed first attempt gets one more through `zkdev down`.
        if !matches!(stopped, Ok(Ok(Ok(())))) {
            let mut down = std::process::Command::new(&self.options.zkdev);
            down.arg("--home")
                .arg(&self.options.home)
                .arg("--cluster")
                .arg(&self.options.cluster)
                .args(["down", "--grace", "3"])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null());
            if self.options.purge {
                down.arg("--purge");
            }
            let _ = down.status();
        }
    }
}
