//! `zkdev partition|isolate|link|heal|links`: network faults on a `--net` cluster. Targets are resolved by
//! asking the servers at that moment; the supervisor changes its proxies and journals the change; the
//! report (who elected whom, when the cut-off leader stopped, when every node served again on one zxid)
//! is measured from the journal, whose times are the supervisor's probes (every 100 ms).

use std::time::Duration;

use serde::Serialize;

use super::Ctx;
use crate::cli::{HealArgs, IsolateArgs, LinkArgs, LinkPort, PartitionArgs};
use crate::engine::nemesis::Env;
use crate::engine::net::{self, Cut, HealOptions, HealReport, LinkOptions, LinkPorts, SplitOptions, SplitReport};
use crate::error::{Error, Result};
use crate::model::links::{self, Fault, Flow, Rule};
use crate::model::spec::{ClusterSpec, Role};
use crate::model::words;
use crate::os::state::ClusterPaths;
use crate::output;
use crate::supervisor::control::{call_for, Request, Supervisor};
use crate::supervisor::proxy::LiveLink;
use crate::supervisor::replies::LinksReply;

/// The cluster, refusing one made without proxied links.
fn proxied(ctx: &Ctx) -> Result<(ClusterPaths, ClusterSpec)> {
    let (paths, spec) = ctx.existing()?;
    if spec.net.is_none() {
        return Err(crate::supervisor::links::not_proxied(&spec));
    }
    Ok((paths, spec))
}

fn env_of<'a>(sup: &'a Supervisor, cause: &'a str, spec: &'a ClusterSpec, paths: &'a ClusterPaths) -> Env<'a> {
    Env {
        sup,
        cause,
        spec,
        paths,
        force: false,
    }
}

pub async fn partition(ctx: &Ctx, args: PartitionArgs) -> Result<()> {
    let options = SplitOptions {
        cut: Cut::Partition,
        side: args.nodes,
        from: args.from,
        one_way: args.one_way,
        wait: (!args.no_wait).then_some(args.timeout),
    };
    split(ctx, &options).await
}

pub async fn isolate(ctx: &Ctx, args: IsolateArgs) -> Result<()> {
    let options = SplitOptions {
        cut: Cut::Isolate,
        side: vec![args.node],
        from: Vec::new(),
        one_way: args.one_way,
        wait: (!args.no_wait).then_some(args.timeout),
    };
    split(ctx, &options).await
}

async fn split(ctx: &Ctx, options: &SplitOptions) -> Result<()> {
    let (paths, spec) = proxied(ctx)?;
    let sup = Supervisor::ensure(&ctx.home, &ctx.cluster).await?;
    let cause = ctx.cause();
    let report = net::split(&env_of(&sup, &cause, &spec, &paths), options).await?;
    if ctx.json {
        output::print_json(&report);
    } else {
        crate::out!("{}", split_text(&report));
    }
    Ok(())
}

fn list(ids: &[u32]) -> String {
    ids.iter().map(u32::to_string).collect::<Vec<_>>().join(",")
}

fn nodes_word(ids: &[u32]) -> String {
    if ids.len() == 1 {
        format!("node {}", ids[0])
    } else {
        format!("nodes {}", list(ids))
    }
}

/// A split report as `zkdev partition` and `isolate` print it.
pub(super) fn split_text(r: &SplitReport) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let way = if r.one_way { " (one way)" } else { "" };
    let _ = writeln!(
        out,
        "{}: {} cut off from {}{way}",
        r.action,
        nodes_word(&r.cut_off),
        nodes_word(&r.from)
    );
    if let Some(old) = r.old_leader {
        let _ = writeln!(
            out,
            "  old leader: {old}{}",
            r.old_epoch.map_or(String::new(), |e| format!(" (epoch {e})"))
        );
    }
    match (&r.majority_side, r.new_leader) {
        (Some(side), Some(l)) => {
            let _ = writeln!(
                out,
                "  side {{{}}} holds a quorum: leader {l}{} serving{}",
                list(side),
                r.new_epoch.map_or(String::new(), |e| format!(" (epoch {e})")),
                r.new_leader_ms.map_or(String::new(), |m| format!(" after {m} ms"))
            );
        }
        (Some(side), None) => {
            let _ = writeln!(out, "  side {{{}}} holds a quorum but no leader was seen", list(side));
        }
        (None, _) => {
            let _ = writeln!(out, "  no side holds a quorum");
        }
    }
    if let Some(old) = r.old_leader {
        if let Some(stopped) = r.old_leader_stopped_ms {
            let _ = writeln!(
                out,
                "  old leader {old} stopped leading after {stopped} ms (ZooKeeper lets it go on for up to syncLimit x tickTime = {} ms)",
                r.sync_limit_ms
            );
        }
    }
    if !r.not_serving.is_empty() {
        let _ = writeln!(out, "  not serving (LOOKING): {}", list(&r.not_serving));
    }
    if let Some(w) = &r.warning {
        let _ = writeln!(out, "warning: {w}");
    }
    out
}

/// A fault's length (a link delay, a slow fsync) in whole milliseconds, at most an hour.
pub fn fault_ms(d: Duration, flag: &str) -> Result<u32> {
    if d <= Duration::from_secs(3600) {
        Ok(d.as_millis() as u32)
    } else {
        Err(Error::usage(format!(
            "{flag} {}: give at most an hour (1h)",
            crate::model::span::format(d)
        )))
    }
}

/// "10%", "10", "0.5%" -> whole per cent (rounded), 0..=100.
pub fn parse_percent(text: &str) -> Result<u32> {
    match text.trim().trim_end_matches('%').trim().parse::<f64>() {
        Ok(v) if (0.0..=100.0).contains(&v) => Ok(v.round() as u32),
        _ => Err(Error::usage(format!(
            "--loss `{text}`: give a percentage from 0 to 100, e.g. 10%"
        ))),
    }
}

/// "64KiB/s", "1MB/s", "5000" (bytes per second).
pub fn parse_rate(text: &str) -> Result<u64> {
    let t = text.trim().trim_end_matches("/s").trim();
    let units: [(&str, f64); 7] = [
        ("KiB", 1024.0),
        ("MiB", 1024.0 * 1024.0),
        ("KB", 1000.0),
        ("MB", 1_000_000.0),
        ("kB", 1000.0),
        ("B", 1.0),
        ("", 1.0),
    ];
    for (u, mult) in units {
        if let Some(n) = t.strip_suffix(u) {
            if let Ok(v) = n.trim().parse::<f64>() {
                if v >= 1.0 {
                    return Ok((v * mult) as u64);
                }
            }
        }
    }
    Err(Error::usage(format!(
        "--bandwidth `{text}`: give bytes per second such as 64KiB/s, 1MB/s or 5000"
    )))
}

pub async fn link(ctx: &Ctx, args: LinkArgs) -> Result<()> {
    let options = link_options(args)?;
    let (paths, spec) = proxied(ctx)?;
    let sup = Supervisor::ensure(&ctx.home, &ctx.cluster).await?;
    let cause = ctx.cause();
    let report = net::link(&env_of(&sup, &cause, &spec, &paths), &options).await?;
    if ctx.json {
        output::print_json(&report);
    } else {
        crate::outln!("{}", report.message);
    }
    Ok(())
}

/// The engine's options for `zkdev link`'s arguments (durations, percentages and rates checked).
pub(super) fn link_options(args: LinkArgs) -> Result<LinkOptions> {
    Ok(LinkOptions {
        a: args.a,
        b: args.b,
        fault: Fault {
            cut: args.cut,
            stall: args.stall,
            delay_ms: args.delay.map(|d| fault_ms(d, "--delay")).transpose()?.unwrap_or(0),
            jitter_ms: args.jitter.map(|d| fault_ms(d, "--jitter")).transpose()?.unwrap_or(0),
            loss_pct: args.loss.as_deref().map(parse_percent).transpose()?.unwrap_or(0),
            bandwidth: args.bandwidth.as_deref().map(parse_rate).transpose()?,
        },
        reset: args.reset,
        one_way: args.one_way,
        ports: match args.port {
            LinkPort::Quorum => LinkPorts::Quorum,
            LinkPort::Election => LinkPorts::Election,
            LinkPort::Both => LinkPorts::Both,
        },
    })
}

pub async fn heal(ctx: &Ctx, args: HealArgs) -> Result<()> {
    let (paths, spec) = proxied(ctx)?;
    let options = HealOptions {
        ends: args.ends,
        all: args.all,
        wait: (!args.no_wait).then_some(args.timeout),
    };
    let sup = Supervisor::ensure(&ctx.home, &ctx.cluster).await?;
    let cause = ctx.cause();
    let report = net::heal(&env_of(&sup, &cause, &spec, &paths), &options).await?;
    if ctx.json {
        output::print_json(&report);
    } else {
        crate::out!("{}", heal_text(&report));
    }
    Ok(())
}

/// A heal report as `zkdev heal` prints it.
pub(super) fn heal_text(report: &HealReport) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    {
        let _ = writeln!(out, "healed {}", report.healed);
        if let Some(m) = report.all_serving_ms {
            let leader = match (report.leader, report.epoch) {
                (Some(l), Some(e)) => format!(" (leader {l}, epoch {e})"),
                (Some(l), None) => format!(" (leader {l})"),
                _ => String::new(),
            };
            let _ = writeln!(out, "  every node serving after {m} ms{leader}");
        }
        if let Some(m) = report.one_zxid_ms {
            let _ = writeln!(
                out,
                "  every node on zxid {} after {m} ms",
                report.zxid.clone().unwrap_or_default()
            );
        }
        if let Some(n) = &report.note {
            let _ = writeln!(out, "  {n}");
        }
        if let Some(w) = &report.warning {
            let _ = writeln!(out, "warning: {w}");
        }
    }
    out
}

/// The links section of `status --json` and `zkdev links --json`. The fields are in the order the JSON
/// has always printed them (alphabetical).
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct LinksView {
    /// Live proxied connections per link; null when no supervisor answers (its proxies are down with it).
    pub links: Option<Vec<LiveLink>>,
    pub port_base: Option<u16>,
    pub proxied: bool,
    /// The proxies live in the supervisor: without one every link is down until a command starts one.
    pub proxies_up: bool,
    pub rules: Vec<Rule>,
    /// Proxies whose port another program holds: each down (and retried), the others up.
    pub unbound: Vec<String>,
}

/// The links section: rules and live connections from the supervisor, or the saved rules when none runs.
pub async fn links_view(paths: &ClusterPaths, spec: &ClusterSpec) -> Option<LinksView> {
    let net = spec.net?;
    let answer = call_for::<LinksReply>(&paths.socket(), &Request::Links, Duration::from_millis(500))
        .await
        .and_then(|r| r.ok());
    Some(match answer {
        Some(r) => LinksView {
            links: Some(r.links),
            port_base: Some(net.port_base),
            proxied: true,
            proxies_up: true,
            rules: r.rules,
            unbound: r.unbound,
        },
        None => LinksView {
            links: None,
            port_base: Some(net.port_base),
            proxied: true,
            proxies_up: false,
            rules: crate::supervisor::links::read(paths).rules,
            unbound: Vec::new(),
        },
    })
}

pub async fn show(ctx: &Ctx) -> Result<()> {
    let (paths, spec) = proxied(ctx)?;
    // Showing the links needs the proxies: start a supervisor (it restores them) if none runs.
    let _ = ctx.supervisor().await?;
    let view = links_view(&paths, &spec).await.expect("a --net cluster");
    if ctx.json {
        // As a JSON value: every object's keys in order, nested ones too, as this output has always had them.
        output::print_json(&serde_json::to_value(&view).expect("the links view serialises"));
        return Ok(());
    }
    let table = links::LinkTable {
        rules: view.rules.clone(),
        ..Default::default()
    };
    let mut rows = Vec::new();
    for l in view.links.iter().flatten() {
        let (d, t, port) = (l.dialler, l.target, l.port);
        let out = table.fault(Flow::new(d, t, port));
        let back = table.fault(Flow::new(t, d, port));
        rows.push(vec![
            format!("{d} -> {t}"),
            port.as_str().to_string(),
            // The port, on 127.0.0.1; a peer link of a cluster with reconfig has an address of its own.
            if l.proxy.starts_with("127.0.0.1:") {
                l.listen.to_string()
            } else {
                l.proxy.clone()
            },
            l.connections.to_string(),
            out.describe(),
            back.describe(),
        ]);
    }
    crate::out!(
        "{}",
        output::table(&["link", "port", "proxy", "conns", "sent by dialler", "answers"], &rows)
    );
    let faults = table.rules.len();
    crate::outln!(
        "{}; {}",
        words::count(faults, "fault rule"),
        if faults == 0 {
            "every link healthy"
        } else {
            "`zkdev heal` heals every link"
        }
    );
    let _ = Role::Participant;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::links::{Endpoint, Port};

    #[test]
    fn durations_rates_and_percentages() {
        assert_eq!(fault_ms(Duration::from_millis(200), "--delay").unwrap(), 200);
        assert_eq!(fault_ms(Duration::from_secs(3600), "--delay").unwrap(), 3_600_000);
        let e = fault_ms(Duration::from_secs(3601), "--delay").unwrap_err();
        assert!(e.to_string().contains("--delay 1h1s"), "{e}");
        assert_eq!(parse_rate("64KiB/s").unwrap(), 65536);
        assert_eq!(parse_rate("1MB/s").unwrap(), 1_000_000);
        assert_eq!(parse_rate("5000").unwrap(), 5000);
        assert!(parse_rate("lots").is_err());
        assert_eq!(parse_percent("10%").unwrap(), 10);
        assert!(parse_percent("120%").is_err());
    }

    #[test]
    fn the_links_view_prints_as_it_always_has() {
        let rules = links::partition(&[1], &[2], false, "zkdev isolate", 5);
        let live = LiveLink {
            dialler: Endpoint::Node(1),
            target: Endpoint::Node(2),
            port: Port::Quorum,
            listen: 12882,
            proxy: "127.0.0.1:12882".into(),
            connections: 2,
        };
        let view = LinksView {
            links: Some(vec![live.clone()]),
            port_base: Some(12881),
            proxied: true,
            proxies_up: true,
            rules: rules.clone(),
            unbound: vec!["port 12181 is held".into()],
        };
        // What the untyped code printed: a JSON value made of the supervisor's answer.
        let before = serde_json::json!({
            "proxied": true,
            "proxies_up": true,
            "port_base": Some(12881),
            "rules": serde_json::to_value(&rules).unwrap(),
            "links": serde_json::to_value(vec![live]).unwrap(),
            "unbound": ["port 12181 is held"],
        });
        let now = serde_json::to_value(&view).unwrap();
        assert_eq!(
            serde_json::to_string_pretty(&now).unwrap(),
            serde_json::to_string_pretty(&before).unwrap()
        );
    }
}
