//! One file per subcommand; each composes the modules below it. Nothing here but dispatch and the context
//! every command shares.

mod chaos;
mod check;
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
mod trace;
mod up;
mod verify;
mod wait;
mod watch;

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
    // Checking a file needs no cluster and no home.
    match &cli.command {
        Cmd::Check(a) => return check::run(a),
        Cmd::GenHistory(a) => return check::generate(a),
        _ => {}
    }
    // The layers below print nothing; their warnings come here (in the supervisor, stderr is its log file).
    crate::os::warn::set_sink(|line| eprintln!("{line}"));
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
        Cmd::Trace(a) => trace::run(&ctx, a).await,
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
        Cmd::Check(_) | Cmd::GenHistory(_) => Ok(()), // answered above
        Cmd::Completions { shell } => {
            crate::cli::completions(shell, &mut std::io::stdout());
            Ok(())
        }
        Cmd::Supervise { .. } => crate::supervisor::run(ctx.home, ctx.cluster).await,
    }
}

/// What the flags say about a cluster that does not exist yet (the engine's [`crate::engine::spec::NewCluster`]).
pub use crate::engine::spec::NewCluster;

/// A new cluster's spec from a profile and flags (flags win), with java and ZooKeeper located.
pub fn new_spec(ctx: &Ctx, flags: NewCluster) -> Result<ClusterSpec> {
    crate::engine::spec::new_spec(&ctx.home.root, &ctx.cluster, flags)
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

/// The faults as a table (`#  AT  KIND  [TARGET]  HELD  RECOVERED  WHAT`), as verify and chaos print them.
pub fn fault_table(faults: &[crate::engine::nemesis::Injected], with_target: bool) -> String {
    let rows: Vec<Vec<String>> = (faults.iter())
        .map(|f| {
            let mut row = vec![
                f.planned.n.to_string(),
                format!("{:.2} s", f.injected_at_ms as f64 / 1000.0),
                f.planned.kind.to_string(),
            ];
            if with_target {
                row.push(f.planned.target.to_string());
            }
            row.extend([
                format!("{} ms", f.held_ms),
                f.recovered_ms.map_or("-".into(), |m| format!("{m} ms")),
                f.what.clone(),
            ]);
            row
        })
        .collect();
    let head: &[&str] = if with_target {
        &["#", "AT", "KIND", "TARGET", "HELD", "RECOVERED", "WHAT"]
    } else {
        &["#", "AT", "KIND", "HELD", "RECOVERED", "WHAT"]
    };
    crate::output::table(head, &rows)
}
