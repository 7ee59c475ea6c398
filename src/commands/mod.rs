//! One file per subcommand; each composes the modules below it. Nothing here but dispatch and the context
//! every command shares.

mod chaos;
mod cli_cmd;
mod dashboard;
pub mod disk;
mod dist;
mod down;
mod env;
mod events;
mod explain;
mod export;
mod kill_leader;
mod logs;
mod membership;
mod nemesis;
mod net;
mod node;
mod profiles;
mod render;
mod reset;
mod rolling;
mod scenario;
pub mod sessions;
mod slot;
mod smoke;
mod status;
mod up;
mod verify;
mod wait;
mod watch;
pub mod workload;

use std::time::Duration;

use crate::cli::{Cli, Cmd};
use crate::error::{Error, Result};
use crate::model::spec::{validate_cluster_name, ClusterSpec};
use crate::os::state::{ClusterPaths, Home};

/// What every command knows: where the cluster lives and how to report.
pub struct Ctx {
    pub home: Home,
    pub cluster: String,
    pub json: bool,
    pub quiet: bool,
    pub color: crate::cli::ColorArg,
}

impl Ctx {
    /// The cluster's supervisor, started (adopting whatever runs) when none answers.
    /// On a `--net` cluster (whose links all live in the supervisor) it is watched while the command runs: one
    /// that dies is replaced at once, and the command says so on stderr.
    pub async fn supervisor(&self) -> Result<crate::supervisor::control::Supervisor> {
        let mut sup = crate::supervisor::control::Supervisor::ensure(&self.home, &self.cluster).await?;
        if !self.quiet {
            sup.on_restart(|r| eprintln!("warning: {}", r.describe()));
        }
        if self.paths().load_spec().is_ok_and(|s| s.net.is_some()) {
            sup.watch();
        }
        Ok(sup)
    }

    /// The command line that asked, for the journal: `zkdev kill-leader --restart` (no --home/--cluster).
    pub fn cause(&self) -> String {
        let mut words = vec!["zkdev".to_string()];
        let mut args = std::env::args().skip(1);
        while let Some(a) = args.next() {
            match a.as_str() {
                "--home" | "--cluster" | "-c" => {
                    args.next();
                }
                s if s.starts_with("--home=") || s.starts_with("--cluster=") => {}
                _ => words.push(a),
            }
        }
        words.join(" ")
    }

    pub fn paths(&self) -> ClusterPaths {
        self.home.cluster(&self.cluster)
    }

    /// The existing cluster's spec, or an error that says how to create one.
    pub fn existing(&self) -> Result<(ClusterPaths, ClusterSpec)> {
        let paths = self.paths();
        if !paths.exists() {
            return Err(Error::failed(format!(
                "no cluster `{}` in {} (start one with `zkdev up`, or pick another with --cluster / --home)",
                self.cluster,
                self.home.root.display()
            )));
        }
        let spec = paths.load_spec()?;
        Ok((paths, spec))
    }
}

pub async fn run(cli: Cli) -> Result<()> {
    // Every coloured output asks anstream, which adds NO_COLOR, CLICOLOR_FORCE and terminal detection.
    anstream::ColorChoice::write_global(cli.global.color.into());
    let ctx = Ctx {
        home: Home::resolve(cli.global.home)?,
        cluster: cli.global.cluster,
        json: cli.command.json(),
        quiet: cli.global.quiet,
        color: cli.global.color,
    };
    validate_cluster_name(&ctx.cluster)?;
    match cli.command {
        Cmd::Up(a) => up::run(&ctx, a).await,
        Cmd::Status(a) => status::run(&ctx, a).await,
        Cmd::KillLeader(a) => kill_leader::run(&ctx, a).await,
        Cmd::Down(a) => down::run(&ctx, a).await,
        Cmd::Stop(a) => node::run(&ctx, node::Action::Stop, a).await,
        Cmd::Start(a) => node::run(&ctx, node::Action::Start, a).await,
        Cmd::Restart(a) => node::run(&ctx, node::Action::Restart, a).await,
        Cmd::Kill(a) => node::run(&ctx, node::Action::Kill, a).await,
        Cmd::Pause(a) => node::run(&ctx, node::Action::Pause, a).await,
        Cmd::Resume(a) => node::run(&ctx, node::Action::Resume, a).await,
        Cmd::Partition(a) => net::partition(&ctx, a).await,
        Cmd::Isolate(a) => net::isolate(&ctx, a).await,
        Cmd::Link(a) => net::link(&ctx, a).await,
        Cmd::Heal(a) => net::heal(&ctx, a).await,
        Cmd::Links(_) => net::show(&ctx).await,
        Cmd::Sessions(_) => sessions::run(&ctx).await,
        Cmd::ExpireSession(a) => sessions::run_expire(&ctx, a).await,
        Cmd::Disk(a) => disk::run(&ctx, a).await,
        Cmd::Reset(a) => reset::run(&ctx, a).await,
        Cmd::Add(a) => membership::add(&ctx, a).await,
        Cmd::Remove(a) => membership::change(&ctx, membership::Change::Remove, a).await,
        Cmd::Promote(a) => membership::change(&ctx, membership::Change::Promote, a).await,
        Cmd::Demote(a) => membership::change(&ctx, membership::Change::Demote, a).await,
        Cmd::Wait(a) => wait::run(&ctx, a).await,
        Cmd::Watch(a) => watch::run(&ctx, a).await,
        Cmd::Env(_) => env::run(&ctx),
        Cmd::Logs(a) => logs::run(&ctx, a).await,
        Cmd::Cli(a) => cli_cmd::run(&ctx, a).await,
        Cmd::Smoke(a) => smoke::run(&ctx, a).await,
        Cmd::Verify(a) => verify::run(&ctx, a).await,
        Cmd::Chaos(a) => chaos::run(&ctx, a).await,
        Cmd::Run(a) => scenario::run(&ctx, a).await,
        Cmd::RollingRestart(a) => rolling::run(&ctx, a).await,
        Cmd::Dist(a) => dist::run(&ctx, a.cmd),
        Cmd::Export(a) => export::run(&ctx, a),
        Cmd::Render(a) => render::run(&ctx, a),
        Cmd::Profiles(_) => profiles::run(&ctx),
        Cmd::Events(a) => events::run(&ctx, a).await,
        Cmd::Dashboard(a) => dashboard::run(&ctx, a).await,
        Cmd::Explain(e) => explain::run(&ctx, e).await,
        Cmd::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(shell, &mut Cli::command(), "zkdev", &mut std::io::stdout());
            Ok(())
        }
        Cmd::Supervise { .. } => crate::supervisor::run(ctx.home, ctx.cluster).await,
    }
}

/// What the flags say about a cluster that does not exist yet.
pub struct NewCluster<'a> {
    pub profile: Option<&'a str>,
    pub port_offset: Option<u16>,
    pub addresses: Option<crate::model::profile::AddressMode>,
    pub address_base: Option<std::net::Ipv4Addr>,
    pub zk_home: Option<&'a str>,
    pub dist: Option<&'a str>,
    pub voters: u32,
    pub observers: u32,
    /// `--tls`: TLS on whatever the profile says.
    pub tls: bool,
    /// `--net`: proxied links (the profile may ask for them too).
    pub net: bool,
    pub net_port_base: Option<u16>,
    /// `--reconfig`: dynamic reconfiguration (the profile may ask for it too).
    pub reconfig: bool,
}

/// A new cluster's spec from a profile and flags (flags win), with java and ZooKeeper located.
pub fn new_spec(ctx: &Ctx, flags: NewCluster) -> Result<ClusterSpec> {
    let NewCluster {
        profile,
        port_offset,
        addresses,
        address_base,
        zk_home,
        dist: dist_version,
        voters,
        observers,
        tls,
        net,
        net_port_base,
        reconfig,
    } = flags;
    let (zkdev_home, cluster) = (&ctx.home.root, ctx.cluster.as_str());
    let (origin, profile) = crate::model::profile::load(profile.unwrap_or("default"))?;
    let mut settings = profile.settings(&origin)?;
    if let Some(k) = port_offset {
        settings.offset = k;
    }
    if let Some(mode) = addresses {
        settings.addresses = mode;
    }
    if let Some(base) = address_base {
        if settings.addresses != crate::model::profile::AddressMode::Loopback {
            return Err(Error::usage(format!(
                "--address-base {base} without --addresses loopback: only nodes on their own addresses have a base"
            )));
        }
        settings.address_base = base;
    }
    if tls {
        settings.tls = true;
    }
    if net {
        settings.proxied = true;
    }
    if let Some(b) = net_port_base {
        settings.net_port_base = Some(b);
    }
    if reconfig {
        settings.reconfig = true;
    }
    if settings.proxied && settings.addresses == crate::model::profile::AddressMode::Loopback {
        return Err(Error::usage(
            "--net with --addresses loopback: proxied links run on loopback addresses of their own (127.1.x.y) for \
             nodes on 127.0.0.1, so they do not combine with one address per node yet; choose one of the two",
        ));
    }
    let all_ips = (settings.extra.iter())
        .any(|(k, v)| k.eq_ignore_ascii_case("quorumListenOnAllIPs") && v.trim().eq_ignore_ascii_case("true"));
    if settings.proxied && all_ips {
        return Err(Error::usage(
            "--net with quorumListenOnAllIPs = true: the link proxies listen on the nodes' own quorum and election \
             port numbers at loopback addresses of their own (127.1.x.y), which a node listening on every address \
             would take from them; remove quorumListenOnAllIPs from the profile, or leave out --net",
        ));
    }
    // Check the shape before looking for java, so bad flags are reported as such on any machine.
    ClusterSpec::build(
        cluster,
        &origin,
        settings.clone(),
        crate::dist::Dist::placeholder(),
        voters,
        observers,
    )?;
    let dist = crate::dist::detect(
        zk_home.or(settings.zk_home.as_deref()),
        settings.java.as_deref(),
        dist_version.or(settings.version.as_deref()),
        zkdev_home,
    )?;
    if settings.metrics
        && !dist
            .classpath
            .iter()
            .any(|j| j.to_string_lossy().contains("prometheus"))
    {
        return Err(Error::env(format!(
            "the profile asks for metrics, but ZooKeeper {} at {} has no Prometheus metrics provider jar \
             (zookeeper-prometheus-metrics-*.jar in lib/); use an upstream -bin release (`zkdev dist install`)",
            dist.version,
            dist.zk_home.display()
        )));
    }
    if settings.tls && !crate::dist::has_netty(&dist) {
        return Err(Error::env(format!(
            "TLS needs ZooKeeper's Netty connection factory, and the Netty jars it needs are not installed next to \
             {}: {}",
            dist.zk_home.display(),
            crate::dist::INSTALL_NETTY
        )));
    }
    if settings.tls && dist.version_tuple() < (3, 6, 0) {
        return Err(Error::usage(format!(
            "TLS needs ZooKeeper 3.6 or newer (zkdev gives the nodes PEM key stores, which ZooKeeper reads from 3.6), \
             and this cluster would run {}; pick a newer one with --dist",
            dist.version
        )));
    }
    if settings.proxied {
        if let Some(major) = crate::dist::java_major(&dist.java).filter(|m| *m < 9) {
            return Err(Error::env(format!(
                "--net needs Java 9 or newer: each node resolves its peers' names from a hosts file of its own \
                 (-Djdk.net.hosts.file, from Java 9), and {} is Java {major}, which would ask the system's resolver \
                 instead; point the profile's `java` at a newer one, or leave out --net",
                dist.java.display()
            )));
        }
    }
    let mut spec = ClusterSpec::build(cluster, &origin, settings, dist, voters, observers)?;
    spec.uid = ClusterSpec::uid_from(crate::os::random::u64());
    Ok(spec)
}

/// What `up` and `render` say about a spec on stderr before using it: listeners beyond 127.0.0.1 that its
/// profile allows (every time, even with --quiet), and ports in the system's ephemeral range (for a cluster
/// being made, when its ports can still change).
pub fn warn_about(ctx: &Ctx, spec: &ClusterSpec, new_cluster: bool) {
    for what in spec.settings.non_loopback() {
        eprintln!("warning: the profile allows listening beyond 127.0.0.1 (allow_non_loopback = true): {what}");
    }
    if new_cluster && !ctx.quiet {
        let warning = crate::os::ports::ephemeral_range()
            .and_then(|range| crate::os::ports::ephemeral_warning(&spec.all_ports(), spec.settings.offset, range));
        if let Some(w) = warning {
            eprintln!("warning: {w}");
        }
    }
}

/// Wait until every node serves with one leader, with the spinner on stderr (unless quiet or JSON).
pub async fn wait_healthy(
    ctx: &Ctx,
    spec: &ClusterSpec,
    paths: &ClusterPaths,
    timeout: Duration,
    since: std::time::Instant,
) -> std::result::Result<
    crate::zk::observe::ClusterStatus,
    (crate::zk::observe::WaitFailure, crate::zk::observe::ClusterStatus),
> {
    let progress = crate::output::Progress::new(ctx.quiet || ctx.json);
    let r = crate::zk::observe::wait_until(
        spec,
        paths,
        timeout,
        |s| s.healthy(),
        |s| progress.show(s, since.elapsed()),
    )
    .await;
    progress.finish();
    r
}
