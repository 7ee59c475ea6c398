//! `zkdev smoke`: write a znode through one node, then on every node sync and read it with a real client;
//! show what each returned and fail if any node disagrees or cannot answer.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::future::join_all;
use serde::Serialize;

use super::Ctx;
use crate::cli::SmokeArgs;
use crate::error::{Error, Result};
use crate::model::server::Mode;
use crate::model::words;
use crate::os::tls::TlsFiles;
use crate::output;
use crate::zk::client as zk;
use crate::zk::observe;

#[derive(Debug, Serialize)]
struct NodeRead {
    id: u32,
    mode: Option<Mode>,
    ok: bool,
    data: Option<String>,
    mzxid: Option<String>,
    error: Option<String>,
    /// Not asked: the node was stopped on purpose (`zkdev stop`), so there is nothing to read from.
    #[serde(default)]
    skipped: bool,
}

#[derive(Debug, Serialize)]
struct SmokeReport {
    path: String,
    written_via: u32,
    /// Over TLS, to every node's secure client port.
    tls: bool,
    data: String,
    mzxid: String,
    nodes: Vec<NodeRead>,
    agree: bool,
}

pub async fn run(ctx: &Ctx, args: SmokeArgs) -> Result<()> {
    let timeout = args.timeout;
    let (paths, spec) = ctx.existing()?;
    let status = observe::gather(&spec, &paths, &paths.load_state()?).await;
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
    let tls = args.tls.then(|| TlsFiles::of(&paths));
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
                    error: Some(format!("no answer within {}", output::secs(timeout))),
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
    if ctx.json {
        output::print_json(&report);
    } else {
        crate::outln!(
            "wrote {} = \"{}\" through node {via}{} (mzxid {})",
            report.path,
            report.data,
            if report.tls { " over TLS" } else { "" },
            report.mzxid
        );
        let rows: Vec<Vec<String>> = report
            .nodes
            .iter()
            .map(|n| {
                vec![
                    n.id.to_string(),
                    n.mode.map_or("-".to_string(), |m| m.to_string()),
                    if n.skipped {
                        "skipped".into()
                    } else if n.ok {
                        "ok".into()
                    } else {
                        "FAIL".into()
                    },
                    n.data.clone().unwrap_or_else(|| "-".into()),
                    n.mzxid.clone().unwrap_or_else(|| "-".into()),
                    if n.skipped {
                        "stopped on purpose: not asked".into()
                    } else {
                        n.error.clone().unwrap_or_default()
                    },
                ]
            })
            .collect();
        crate::out!(
            "{}",
            output::table(&["NODE", "MODE", "RESULT", "DATA", "MZXID", "ERROR"], &rows)
        );
    }
    if report.agree {
        if !ctx.json {
            let skipped: Vec<u32> = report.nodes.iter().filter(|n| n.skipped).map(|n| n.id).collect();
            let asked = report.nodes.len() - skipped.len();
            let tls = if report.tls {
                ", each over TLS on its secure client port"
            } else {
                ""
            };
            if skipped.is_empty() {
                crate::outln!(
                    "{} returned the same data and mzxid{tls}",
                    if asked == 1 {
                        "the one node".to_string()
                    } else {
                        format!("all {asked} nodes")
                    }
                );
            } else {
                crate::outln!(
                    "all {} asked returned the same data and mzxid{tls}; {} skipped (stopped)",
                    words::count(asked, "node"),
                    words::nodes(&skipped)
                );
            }
        }
        Ok(())
    } else {
        let bad: Vec<String> = report
            .nodes
            .iter()
            .filter(|n| !n.ok)
            .map(|n| format!("node {} ({})", n.id, n.error.clone().unwrap_or_default()))
            .collect();
        Err(Error::check_failed(format!("smoke failed: {}", bad.join("; "))))
    }
}
