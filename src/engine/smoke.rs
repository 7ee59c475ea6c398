//! Smoke check: write a znode through one node, then on every node sync and read it with a real client;
//! report what each returned and whether they all agree. `zkdev smoke` and a scenario's `smoke` step call it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::future::join_all;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::model::server::Mode;
use crate::model::span::secs;
use crate::model::spec::ClusterSpec;
use crate::os::state::ClusterPaths;
use crate::os::tls::TlsFiles;
use crate::zk::client as zk;
use crate::zk::observe;

/// What one node returned.
#[derive(Debug, Serialize)]
pub struct NodeRead {
    /// The node.
    pub id: u32,
    /// Its mode when the check began.
    pub mode: Option<Mode>,
    /// It answered with what was written.
    pub ok: bool,
    /// The data it returned.
    pub data: Option<String>,
    /// The znode's mzxid as it returned it.
    pub mzxid: Option<String>,
    /// Why it could not answer, or that it disagreed.
    pub error: Option<String>,
    /// Not asked: the node was stopped on purpose (`zkdev stop`), so there is nothing to read from.
    #[serde(default)]
    pub skipped: bool,
}

/// What [`smoke`] wrote and what every node read back.
#[derive(Debug, Serialize)]
pub struct SmokeReport {
    /// The znode written.
    pub path: String,
    /// The node it was written through.
    pub written_via: u32,
    /// Over TLS, to every node's secure client port.
    pub tls: bool,
    /// The data written.
    pub data: String,
    /// The znode's mzxid as the write returned it.
    pub mzxid: String,
    /// What each node returned.
    pub nodes: Vec<NodeRead>,
    /// Every node asked returned the same data and mzxid.
    pub agree: bool,
}

/// How to smoke-test.
#[derive(Debug, Clone)]
pub struct SmokeOptions {
    /// Write through this node (default: node 1, or the first node not stopped on purpose).
    pub via: Option<u32>,
    /// Over TLS, to every node's secure client port.
    pub tls: bool,
    /// How long each connection and read may take.
    pub timeout: Duration,
}

impl Default for SmokeOptions {
    fn default() -> Self {
        SmokeOptions {
            via: None,
            tls: false,
            timeout: Duration::from_secs(10),
        }
    }
}

impl SmokeReport {
    /// `Ok` when every node asked agrees, else an error naming each node that did not.
    pub fn verdict(&self) -> Result<()> {
        if self.agree {
            return Ok(());
        }
        let bad: Vec<String> = self
            .nodes
            .iter()
            .filter(|n| !n.ok)
            .map(|n| format!("node {} ({})", n.id, n.error.clone().unwrap_or_default()))
            .collect();
        Err(Error::check_failed(format!("smoke failed: {}", bad.join("; "))))
    }
}

/// Write one znode through a node, read it back on every node (after a sync), and report. The znode is
/// removed afterwards.
pub async fn smoke(spec: &ClusterSpec, paths: &ClusterPaths, args: &SmokeOptions) -> Result<SmokeReport> {
    let timeout = args.timeout;
    let status = observe::gather(spec, paths, &paths.load_state()?).await;
    let session = Duration::from_secs(10);
    let stopped = |id: u32| {
        status
            .node(id)
            .is_some_and(|n| n.process() == observe::ProcessState::Stopped)
    };
    // Written through node 1, or the first node not stopped on purpose.
    let via = args
        .via
        .unwrap_or_else(|| spec.nodes.iter().map(|n| n.id).find(|id| !stopped(*id)).unwrap_or(1));
    if args.tls && !spec.settings.tls {
        return Err(Error::usage(format!(
            "--tls: cluster `{}` was made without TLS; {}",
            spec.name,
            spec.remake_advice(&["--tls"])
        )));
    }
    let tls = args.tls.then(|| TlsFiles::of(paths));
    // The address smoke talks to: the node's secure client port with --tls.
    let port_of = |n: &crate::model::spec::NodeSpec| match &tls {
        Some(_) => std::net::SocketAddrV4::new(n.address, n.ports.secure.unwrap_or(n.ports.client)),
        None => n.client_addr(),
    };
    let via_port = port_of(
        spec.node(via)
            .ok_or_else(|| Error::usage(format!("--via {via}: cluster `{}` has no node {via}", spec.name)))?,
    );
    let connect = |addr: std::net::SocketAddrV4| {
        let tls = tls.clone();
        async move {
            let to = addr.to_string();
            match &tls {
                Some(files) => zk::connect_tls(&to, session, timeout, files).await,
                None => zk::connect(&to, session, timeout).await,
            }
        }
    };

    let writer = connect(via_port)
        .await
        .map_err(|e| Error::failed(format!("node {via} (write side): {e}; pick another with --via ID")))?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let path = format!("/zkdev-smoke/{now}-{}", std::process::id());
    let data = format!("zkdev smoke {now}");
    zk::ensure(&writer, "/zkdev-smoke").await?;
    let (stat, _) = writer
        .create(&path, data.as_bytes(), &zk::open_acl())
        .await
        .map_err(|e| Error::failed(format!("write through node {via} failed: {e}")))?;

    let reads = join_all(spec.nodes.iter().map(|n| {
        let path = path.clone();
        let mode = status.node(n.id).and_then(|s| s.mode());
        let connect = &connect;
        let skipped = stopped(n.id);
        async move {
            if skipped {
                return NodeRead {
                    id: n.id,
                    mode,
                    ok: true,
                    data: None,
                    mzxid: None,
                    error: None,
                    skipped: true,
                };
            }
            let read = async {
                let c = connect(port_of(n)).await?;
                c.sync(&path).await.map_err(|e| Error::failed(format!("sync: {e}")))?;
                let r = c.get_data(&path).await.map_err(|e| Error::failed(format!("read: {e}")));
                r
            };
            match tokio::time::timeout(timeout, read).await {
                Ok(Ok((d, st))) => NodeRead {
                    id: n.id,
                    mode,
                    ok: true,
                    data: Some(String::from_utf8_lossy(&d).into_owned()),
                    mzxid: Some(zk::zxid(st.mzxid).to_string()),
                    error: None,
                    skipped: false,
                },
                Ok(Err(e)) => NodeRead {
                    id: n.id,
                    mode,
                    ok: false,
                    data: None,
                    mzxid: None,
                    error: Some(e.to_string()),
                    skipped: false,
                },
                Err(_) => NodeRead {
                    id: n.id,
                    mode,
                    ok: false,
                    data: None,
                    mzxid: None,
                    error: Some(format!("no answer within {}", secs(timeout))),
                    skipped: false,
                },
            }
        }
    }))
    .await;
    let _ = writer.delete(&path, None).await;
    // The parent goes too unless another smoke run is using it (then the delete fails: fine).
    let _ = writer.delete("/zkdev-smoke", None).await;

    let mzxid = zk::zxid(stat.mzxid).to_string();
    let mut nodes = reads;
    for n in &mut nodes {
        if n.ok
            && !n.skipped
            && (n.data.as_deref() != Some(data.as_str()) || n.mzxid.as_deref() != Some(mzxid.as_str()))
        {
            n.ok = false;
            n.error = Some("disagrees with what was written".into());
        }
    }
    let agree = nodes.iter().all(|n| n.ok);
    let report = SmokeReport {
        path,
        written_via: via,
        tls: tls.is_some(),
        data,
        mzxid,
        nodes,
        agree,
    };
    Ok(report)
}
