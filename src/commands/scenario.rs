//! `zkdev run SCENARIO.toml`: a fault scenario a team wrote down (often one they saw fail), replayed step
//! by step against the cluster, with a JSON report and JUnit XML for CI. A step is one of:
//! - a zkdev command line without `zkdev` (`kill-leader`, `isolate leader`, `pause 2`, `heal`, `start all`):
//!   parsed as that very command and run in this process through the engine call the command itself
//!   makes (no `zkdev` child process);
//! - `workload register|sequential|queue|zk [--clients C] [--rate R]`: start `chaos`'s workload in the background;
//! - `wait 5s`;
//! - `expect leader_changed|leader|healthy [within 10s]`, `expect no_lost_writes` (stops the workload and
//!   checks its history as `chaos` does).
//!
//! The file is checked whole before anything runs: a bad step is named with its line.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::{chaos, Ctx};
use crate::cli::RunArgs;
use crate::engine::run;
use crate::engine::workload::{self, Kind as Workload, Running};
use crate::error::{Error, Result};
use crate::model::spec::ClusterSpec;
use crate::model::words;
use crate::os::state::ClusterPaths;
use crate::output;
use crate::zk::observe;

/// The zkdev commands a step may run.
const COMMANDS: [&str; 17] = [
    "kill-leader",
    "kill",
    "stop",
    "start",
    "restart",
    "pause",
    "resume",
    "partition",
    "isolate",
    "link",
    "heal",
    "wait",
    "smoke",
    "status",
    "verify",
    "disk",
    "expire-session",
];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    needs: Needs,
    steps: Vec<toml::Spanned<String>>,
}

/// What the cluster must have for the scenario to make sense: a table (`needs = { net = true, disk = true,
/// voters = 3 }`) or a list of words (`needs = ["disk", "net"]`).
#[derive(Debug, Default)]
struct Needs {
    /// Proxied links (`zkdev up --net`).
    net: bool,
    /// The disk-fault library in the nodes (`zkdev up --disk-faults`).
    disk: bool,
    /// At least this many voters.
    voters: usize,
}

impl<'de> Deserialize<'de> for Needs {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Table {
            #[serde(default)]
            net: bool,
            #[serde(default)]
            disk: bool,
            #[serde(default)]
            voters: usize,
        }
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Form {
            Table(Table),
            Words(Vec<String>),
        }
        let form = Form::deserialize(d).map_err(|_| {
            serde::de::Error::custom(
                "`needs` is a list of what the cluster must have, `[\"disk\", \"net\"]`, or a table, \
                 `{ net = true, disk = true, voters = 3 }`",
            )
        })?;
        match form {
            Form::Table(t) => Ok(Needs {
                net: t.net,
                disk: t.disk,
                voters: t.voters,
            }),
            Form::Words(words) => {
                let mut n = Needs::default();
                for w in words {
                    match w.as_str() {
                        "net" => n.net = true,
                        "disk" => n.disk = true,
                        other => {
                            return Err(serde::de::Error::custom(format!(
                                "`needs` names `{other}`, which zkdev does not know: the words are `net` (proxied \
                                 links) and `disk` (disk faults); voters are a number in the table form, \
                                 `{{ voters = 3 }}`"
                            )))
                        }
                    }
                }
                Ok(n)
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
enum Expectation {
    LeaderChanged,
    Leader,
    Healthy,
    NoLostWrites,
}

#[derive(Debug, Clone, PartialEq)]
enum Step {
    Command(Vec<String>),
    Workload { kind: Workload, clients: u32, rate: u32 },
    Wait(Duration),
    Expect(Expectation, Duration),
}

/// One step as written, with where it was written.
#[derive(Debug, Clone)]
struct Written {
    line: usize,
    text: String,
    step: Step,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum Status {
    Passed,
    Failed,
    Skipped,
}

#[derive(Debug, Serialize)]
struct StepReport {
    line: usize,
    step: String,
    status: Status,
    ms: u64,
    /// What the step printed (a command) or found (an expectation).
    #[serde(skip_serializing_if = "String::is_empty")]
    output: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

#[derive(Debug, Serialize)]
struct ScenarioReport {
    name: String,
    file: PathBuf,
    ok: bool,
    ms: u64,
    steps: Vec<StepReport>,
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

fn duration(word: &str, what: &str) -> std::result::Result<Duration, String> {
    crate::model::span::parse(word, crate::model::span::Bare::Refused).map_err(|e| format!("`{what} {word}`: {e}"))
}

/// One step's text -> the step, or what is wrong with it.
fn parse_step(text: &str) -> std::result::Result<Step, String> {
    let words: Vec<&str> = text.split_whitespace().collect();
    match words.as_slice() {
        [] => Err("an empty step".into()),
        ["wait", d] if d.chars().next().is_some_and(|c| c.is_ascii_digit()) => Ok(Step::Wait(duration(d, "wait")?)),
        ["expect", what, rest @ ..] => {
            let e = match *what {
                "leader_changed" => Expectation::LeaderChanged,
                "leader" => Expectation::Leader,
                "healthy" => Expectation::Healthy,
                "no_lost_writes" => Expectation::NoLostWrites,
                other => {
                    return Err(format!(
                        "`expect {other}`: expect leader_changed, leader, healthy or no_lost_writes"
                    ))
                }
            };
            let within = match rest {
                [] => Duration::from_secs(30),
                ["within", d] if e != Expectation::NoLostWrites => duration(d, "within")?,
                _ => return Err(format!("`{text}`: write `expect {what}` or `expect {what} within 10s`")),
            };
            Ok(Step::Expect(e, within))
        }
        ["workload", kind, rest @ ..] => {
            let kind = Workload::parse(kind)?;
            let (mut clients, mut rate) = (3, 50);
            let mut it = rest.iter();
            while let Some(flag) = it.next() {
                let value = it.next().and_then(|v| v.parse::<u32>().ok());
                match (*flag, value) {
                    ("--clients", Some(v)) if (1..=64).contains(&v) => clients = v,
                    ("--rate", Some(v)) => rate = v,
                    _ => return Err(format!("`{text}`: give `workload KIND [--clients 1..64] [--rate R]`")),
                }
            }
            Ok(Step::Workload { kind, clients, rate })
        }
        [cmd, ..] if COMMANDS.contains(cmd) => {
            let argv = std::iter::once("zkdev").chain(words.iter().copied());
            if let Some(first) = crate::cli::usage_error(argv) {
                return Err(format!("`{}`: {first}", words.join(" ")));
            }
            Ok(Step::Command(words.iter().map(|w| w.to_string()).collect()))
        }
        [cmd, ..] => Err(format!(
            "`{cmd}` is not a step: use a zkdev command ({}), `workload KIND`, `wait 5s` or `expect ...`",
            COMMANDS.join(", ")
        )),
    }
}

/// The scenario file, every step checked, or an error naming file:line.
fn load(path: &Path) -> Result<(File, Vec<Written>)> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io("cannot read the scenario", path, e))?;
    let file: File = toml::from_str(&text).map_err(|e| {
        let line = e
            .span()
            .map_or(String::new(), |s| format!(":{}", line_of(&text, s.start)));
        Error::usage(format!("{}{line}: {}", path.display(), e.message()))
    })?;
    let mut steps = Vec::new();
    for s in &file.steps {
        let line = line_of(&text, s.span().start);
        let step = parse_step(s.get_ref()).map_err(|why| Error::usage(format!("{}:{line}: {why}", path.display())))?;
        steps.push(Written {
            line,
            text: s.get_ref().trim().to_string(),
            step,
        });
    }
    if steps.is_empty() {
        return Err(Error::usage(format!(
            "{}: `steps` is empty: nothing to run",
            path.display()
        )));
    }
    Ok((file, steps))
}

fn check_needs(file: &File, spec: &ClusterSpec, path: &Path) -> Result<()> {
    let mut lacks = Vec::new();
    let mut add = Vec::new();
    if file.needs.net && spec.net.is_none() {
        lacks.push("proxied links".to_string());
        add.push("--net");
    }
    if file.needs.disk && !spec.settings.disk_faults {
        lacks.push("disk faults (the disk-fault library in the nodes)".to_string());
        add.push("--disk-faults");
    }
    let mut voters = None;
    if spec.voter_count() < file.needs.voters {
        lacks.push(format!(
            "at least {} (it has {})",
            words::count(file.needs.voters, "voter"),
            spec.voter_count()
        ));
        voters = Some(file.needs.voters);
    }
    if lacks.is_empty() {
        return Ok(());
    }
    if add.contains(&"--net") && spec.settings.addresses == crate::model::profile::AddressMode::Loopback {
        return Err(Error::usage(format!(
            "{}: scenario `{}` needs {}, which cluster `{}` lacks; nothing was run. Proxied links do not combine \
             with --addresses loopback, so this scenario needs another cluster: `zkdev --cluster NAME up {}` \
             without --addresses loopback",
            path.display(),
            file.name,
            words::and_list(&lacks),
            spec.name,
            add.join(" ")
        )));
    }
    let cmd = spec.remake_command_with(voters.unwrap_or(spec.voter_count()), &add);
    Err(Error::usage(format!(
        "{}: scenario `{}` needs {}, which cluster `{}` lacks; nothing was run. Make it again with them (this \
         removes its data): `{cmd}`",
        path.display(),
        file.name,
        words::and_list(&lacks),
        spec.name,
    )))
}

pub async fn run(ctx: &Ctx, args: RunArgs) -> Result<()> {
    let (file, steps) = load(&args.scenario)?;
    let (paths, spec) = ctx.existing()?;
    check_needs(&file, &spec, &args.scenario)?;
    let sup = ctx.supervisor().await?;
    run::ready(&spec, &paths, "chaos").await?;
    let talk = !ctx.quiet && !ctx.json;
    if talk {
        eprintln!(
            "scenario `{}` ({}): {}",
            file.name,
            words::count(steps.len(), "step"),
            file.description.trim()
        );
    }
    let t0 = Instant::now();
    let mut state = Runner {
        sup: &sup,
        spec: &spec,
        paths: &paths,
        workload: None,
        leader_before: None,
        direct: args.direct,
    };
    state.leader_before = state.status().await?.leader;
    let mut reports = Vec::new();
    let mut failed = false;
    for w in &steps {
        if failed {
            reports.push(StepReport {
                line: w.line,
                step: w.text.clone(),
                status: Status::Skipped,
                ms: 0,
                output: String::new(),
                error: None,
            });
            continue;
        }
        if talk {
            eprintln!("line {}: {}", w.line, w.text);
        }
        let start = Instant::now();
        let result = state.step(&w.step).await;
        let ms = start.elapsed().as_millis() as u64;
        let (status, output, error) = match result {
            Ok(out) => (Status::Passed, out, None),
            Err(e) => {
                failed = true;
                (Status::Failed, String::new(), Some(e.to_string()))
            }
        };
        if talk {
            for l in output.lines().chain(error.iter().map(|e| e.as_str())) {
                eprintln!("  {l}");
            }
        }
        reports.push(StepReport {
            line: w.line,
            step: w.text.clone(),
            status,
            ms,
            output,
            error,
        });
    }
    // A workload nobody checked is stopped; its znodes are removed.
    if let Some(w) = state.workload.take() {
        let h = w.stop().await;
        let _ = workload::clean_up(&spec, &h.base).await; // best effort: the report says the check passed
    }
    if failed {
        // Leave the cluster as a person would want it: links healed, nodes running.
        let restored = run::restore(&ctx.cause(), &sup, &spec, &paths).await;
        if let Some(w) = &restored.warning {
            eprintln!("warning: {w}");
        }
        let restarted = restored.started;
        if talk && !restarted.is_empty() {
            eprintln!("restarted {} the scenario had left down", words::nodes(&restarted));
        }
    }
    let report = ScenarioReport {
        name: file.name.clone(),
        file: args.scenario.clone(),
        ok: !failed,
        ms: t0.elapsed().as_millis() as u64,
        steps: reports,
    };
    if let Some(junit) = &args.junit {
        std::fs::write(junit, junit_xml(&report)).map_err(|e| Error::io("cannot write the JUnit report", junit, e))?;
    }
    if ctx.json {
        output::print_json(&report);
    } else {
        let rows: Vec<Vec<String>> = report
            .steps
            .iter()
            .map(|s| {
                vec![
                    s.line.to_string(),
                    format!("{:?}", s.status).to_uppercase(),
                    format!("{} ms", s.ms),
                    s.step.clone(),
                ]
            })
            .collect();
        crate::out!("{}", output::table(&["LINE", "RESULT", "TOOK", "STEP"], &rows));
    }
    match report.steps.iter().find(|s| s.status == Status::Failed) {
        None => {
            if !ctx.json {
                crate::outln!("OK: scenario `{}` passed in {} ms", report.name, report.ms);
            }
            Ok(())
        }
        Some(s) => Err(Error::failed(format!(
            "scenario `{}` failed at {}:{} (`{}`): {}",
            report.name,
            args.scenario.display(),
            s.line,
            s.step,
            s.error.as_deref().unwrap_or("")
        ))),
    }
}

struct Runner<'a> {
    sup: &'a crate::supervisor::control::Supervisor,
    spec: &'a ClusterSpec,
    paths: &'a ClusterPaths,
    workload: Option<Running>,
    /// The leader before the last command step (at first: at the start), for `expect leader_changed`.
    leader_before: Option<u32>,
    /// The workload goes to the nodes' own client ports, around a `--net` cluster's client proxies.
    direct: bool,
}

impl Runner<'_> {
    async fn status(&self) -> Result<observe::ClusterStatus> {
        Ok(observe::gather(self.spec, self.paths, &self.paths.load_state()?).await)
    }

    async fn step(&mut self, step: &Step) -> Result<String> {
        match step {
            Step::Command(words) => {
                self.leader_before = self.status().await?.leader;
                self.command(words).await
            }
            Step::Workload { kind, clients, rate } => {
                if self.workload.is_some() {
                    return Err(Error::usage(
                        "a workload already runs: `expect no_lost_writes` checks and stops it before another starts",
                    ));
                }
                let load = workload::Load {
                    kind: *kind,
                    clients: *clients,
                    rate: *rate,
                    direct: self.direct,
                    history: None,
                };
                let w = workload::start(self.spec, &load)
                    .await
                    .map_err(|e| chaos::unreachable_through_proxies(e, self.spec, self.direct))?;
                let said = format!(
                    "{} {} the {} workload under {}",
                    words::count(*clients as usize, "client"),
                    if *clients == 1 { "runs" } else { "run" },
                    kind.as_str(),
                    w.base
                );
                self.workload = Some(w);
                Ok(said)
            }
            Step::Wait(d) => {
                tokio::time::sleep(*d).await;
                Ok(String::new())
            }
            Step::Expect(Expectation::NoLostWrites, _) => {
                let w = self.workload.take().ok_or_else(|| {
                    Error::usage("`expect no_lost_writes` needs a workload started earlier (`workload register`)")
                })?;
                let h = w.stop().await;
                // The check asks every node.
                let _ =
                    observe::wait_until(self.spec, self.paths, Duration::from_secs(30), |s| s.healthy(), |_| {}).await;
                let v = workload::check(self.spec, &h).await?;
                if v.ok {
                    let _ = workload::clean_up(self.spec, &h.base).await;
                    Ok(v.summary)
                } else {
                    let excerpt: Vec<String> = v
                        .excerpt
                        .iter()
                        .filter_map(|id| h.record(*id))
                        .map(chaos::describe)
                        .collect();
                    Err(Error::failed(format!(
                        "{}; {}; excerpt:\n{}",
                        v.summary,
                        v.problems.join("; "),
                        excerpt.join("\n")
                    )))
                }
            }
            Step::Expect(e, within) => self.expect(*e, *within).await,
        }
    }

    /// Run `zkdev WORDS` on this cluster, as a person would, in this process: each command step is the
    /// engine call its command makes, rendered as the command renders it.
    async fn command(&self, words: &[String]) -> Result<String> {
        use crate::cli::Cmd;
        use crate::engine::faults::{self, NodeAction, NodeOptions};
        use crate::engine::kill_leader::{self, KillLeader};
        use crate::engine::net::{self, Cut, HealOptions, SplitOptions};
        let argv = std::iter::once("zkdev".to_string()).chain(words.iter().cloned());
        let Some(cli) = crate::cli::parse(argv) else {
            return Err(Error::usage(format!(
                "`{}` is not a command zkdev can run here",
                words.join(" ")
            )));
        };
        // Journalled as the command a person would have typed.
        let cause = format!("zkdev {}", words.join(" "));
        let env = crate::engine::nemesis::Env {
            sup: self.sup,
            cause: &cause,
            spec: self.spec,
            paths: self.paths,
            force: false,
        };
        let node = |action: NodeAction, a: crate::cli::NodeArgs| {
            let options = NodeOptions {
                force: a.force,
                wait: !a.no_wait,
                timeout: a.timeout,
            };
            let env = &env;
            async move {
                faults::node(env, action, a.target, &options)
                    .await
                    .map(|r| super::node::text(&r))
            }
        };
        let failed = |e: crate::error::Error| e.reword(|m| format!("`zkdev {}` failed: {m}", words.join(" ")));
        let done = match cli.command {
            Cmd::KillLeader(a) => {
                let options = KillLeader {
                    signal: a.signal.into(),
                    force: a.force,
                    restart: a.restart,
                    timeout: a.timeout,
                };
                kill_leader::kill_leader(self.sup, &cause, self.spec, self.paths, &options)
                    .await
                    .map(|(r, _)| {
                        format!(
                            "killed leader {} (pid {}, epoch {}) with {}; {}",
                            r.old_leader,
                            r.old_pid,
                            r.old_epoch,
                            r.signal,
                            kill_leader::new_leader_phrase(r.new_leader, r.new_epoch, r.new_leader_ms)
                        )
                    })
            }
            Cmd::Stop(a) => node(NodeAction::Stop, a).await,
            Cmd::Start(a) => node(NodeAction::Start, a).await,
            Cmd::Restart(a) => node(NodeAction::Restart, a).await,
            Cmd::Kill(a) => node(NodeAction::Kill, a).await,
            Cmd::Pause(a) => node(NodeAction::Pause, a).await,
            Cmd::Resume(a) => node(NodeAction::Resume, a).await,
            Cmd::Isolate(a) => {
                let options = SplitOptions {
                    cut: Cut::Isolate,
                    side: vec![a.node],
                    from: Vec::new(),
                    one_way: a.one_way,
                    wait: (!a.no_wait).then_some(a.timeout),
                };
                net::split(&env, &options).await.map(|r| super::net::split_text(&r))
            }
            Cmd::Partition(a) => {
                let options = SplitOptions {
                    cut: Cut::Partition,
                    side: a.nodes,
                    from: a.from,
                    one_way: a.one_way,
                    wait: (!a.no_wait).then_some(a.timeout),
                };
                net::split(&env, &options).await.map(|r| super::net::split_text(&r))
            }
            Cmd::Link(a) => match super::net::link_options(a) {
                Ok(options) => net::link(&env, &options).await.map(|r| r.message),
                Err(e) => Err(e),
            },
            Cmd::Heal(a) => {
                let options = HealOptions {
                    ends: a.ends,
                    all: a.all,
                    wait: (!a.no_wait).then_some(a.timeout),
                };
                net::heal(&env, &options).await.map(|r| super::net::heal_text(&r))
            }
            Cmd::Wait(a) => {
                let t0 = Instant::now();
                crate::engine::wait::serving(self.spec, self.paths, a.timeout, |_| {})
                    .await
                    .map(|s| crate::engine::wait::serving_line(&s, t0.elapsed()))
            }
            Cmd::Smoke(a) => {
                let options = crate::engine::smoke::SmokeOptions {
                    via: a.via,
                    tls: a.tls,
                    timeout: a.timeout,
                };
                match crate::engine::smoke::smoke(self.spec, self.paths, &options).await {
                    Ok(r) => r.verdict().map(|()| super::smoke::text(&r)),
                    Err(e) => Err(e),
                }
            }
            Cmd::Status(_) => super::status::text(self.paths, self.spec).await,
            Cmd::Verify(a) => match super::verify::options(&a, self.spec) {
                Ok(options) => match crate::engine::verify::verify(&env, &options, |_| {}).await {
                    Ok(r) => r.verdict().map(|()| super::verify::report_text(&r)),
                    Err(e) => Err(e),
                },
                Err(e) => Err(e),
            },
            Cmd::ExpireSession(a) => match super::sessions::which(&a) {
                Ok(which) => crate::engine::sessions::expire(&env, &which, Duration::from_secs(15))
                    .await
                    .map(|r| super::sessions::expire_text(&r)),
                Err(e) => Err(e),
            },
            Cmd::Disk(a) => {
                use crate::model::disk::DiskFault;
                let fault = match (&a.slow_fsync, a.full, a.eio) {
                    (Some(d), _, _) => DiskFault::SlowFsync {
                        ms: super::net::fault_ms(*d, "--slow-fsync")?,
                    },
                    (None, true, _) => DiskFault::Full,
                    (None, false, true) => DiskFault::Eio,
                    _ => DiskFault::Healthy,
                };
                faults::disk(&env, a.target, fault)
                    .await
                    .map(|ids| format!("{} on {}", fault.describe(), words::nodes(&ids)))
            }
            _ => Err(Error::usage(format!(
                "`{}` is not a command a scenario step runs: use one of {}",
                words.join(" "),
                COMMANDS.join(", ")
            ))),
        };
        done.map_err(failed)
    }

    async fn expect(&self, e: Expectation, within: Duration) -> Result<String> {
        let before = self.leader_before;
        let start = Instant::now();
        let ok = |s: &observe::ClusterStatus| match e {
            Expectation::LeaderChanged => s.leader.is_some_and(|l| Some(l) != before),
            Expectation::Leader => s.leader.is_some(),
            _ => s.healthy(),
        };
        match observe::wait_until(self.spec, self.paths, within, ok, |_| {}).await {
            Ok(s) => Ok(match e {
                Expectation::LeaderChanged => format!(
                    "leader {} -> {} after {} ms",
                    before.map_or("none".into(), |l| l.to_string()),
                    s.leader.map_or("none".into(), |l| l.to_string()),
                    start.elapsed().as_millis()
                ),
                _ => format!("{} after {} ms", output::summary_line(&s), start.elapsed().as_millis()),
            }),
            Err((_, s)) => Err(Error::failed(format!(
                "not within {}: {}{}",
                output::secs(within),
                output::summary_line(&s),
                match (e, before) {
                    (Expectation::LeaderChanged, Some(l)) => format!(" (the leader before was node {l})"),
                    _ => String::new(),
                }
            ))),
        }
    }
}

/// One test case per `expect` step, plus any other step that failed (as an error); the skipped ones say an
/// earlier step failed.
fn junit_xml(r: &ScenarioReport) -> String {
    use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
    let stem = r
        .file
        .file_stem()
        .map_or("scenario".into(), |s| s.to_string_lossy().into_owned());
    let mut suite = TestSuite::new(r.name.as_str());
    suite.set_time(Duration::from_millis(r.ms));
    let expectation = |s: &StepReport| s.step.starts_with("expect ");
    for s in r.steps.iter().filter(|s| expectation(s) || s.status == Status::Failed) {
        let status = match s.status {
            Status::Passed => TestCaseStatus::success(),
            Status::Skipped => {
                let mut st = TestCaseStatus::skipped();
                st.set_message("an earlier step failed");
                st
            }
            Status::Failed => {
                let kind = if expectation(s) {
                    NonSuccessKind::Failure
                } else {
                    NonSuccessKind::Error
                };
                let message = s.error.as_deref().unwrap_or("");
                let mut st = TestCaseStatus::non_success(kind);
                st.set_message(message.lines().next().unwrap_or(""));
                st.set_description(message);
                st
            }
        };
        let mut case = TestCase::new(format!("line {}: {}", s.line, s.step), status);
        case.set_classname(format!("zkdev.scenario.{stem}"));
        case.set_time(Duration::from_millis(s.ms));
        suite.add_test_case(case);
    }
    let mut report = Report::new(format!("zkdev run {}", r.file.display()));
    report.add_test_suite(suite);
    report.to_string().expect("a report of strings serialises")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_parse_and_bad_ones_say_what_to_write() {
        assert_eq!(parse_step("wait 5s").unwrap(), Step::Wait(Duration::from_secs(5)));
        assert_eq!(
            parse_step("expect leader_changed within 10s").unwrap(),
            Step::Expect(Expectation::LeaderChanged, Duration::from_secs(10))
        );
        assert_eq!(
            parse_step("workload queue --clients 4").unwrap(),
            Step::Workload {
                kind: Workload::Queue,
                clients: 4,
                rate: 50
            }
        );
        assert_eq!(
            parse_step("isolate leader").unwrap(),
            Step::Command(vec!["isolate".into(), "leader".into()])
        );
        // `wait` without a duration is zkdev's own wait (for a leader).
        assert_eq!(parse_step("wait").unwrap(), Step::Command(vec!["wait".into()]));
        assert!(parse_step("expect lunch").unwrap_err().contains("leader_changed"));
        assert!(parse_step("kil-leader").unwrap_err().contains("is not a step"));
        assert!(parse_step("isolate").unwrap_err().contains("`isolate`"));
        assert!(parse_step("down --purge").unwrap_err().contains("is not a step"));
        assert_eq!(
            parse_step("disk leader --slow-fsync 200ms").unwrap(),
            Step::Command(vec![
                "disk".into(),
                "leader".into(),
                "--slow-fsync".into(),
                "200ms".into()
            ])
        );
        assert!(parse_step("expire-session --all").is_ok());
        assert!(parse_step("expect no_lost_writes within 3s").is_err());
    }

    #[test]
    fn a_bad_step_is_named_with_its_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.toml");
        std::fs::write(
            &path,
            "name = \"x\"\nsteps = [\n  \"kill-leader\",\n  \"wait 2s\",\n  \"expect leadr\",\n]\n",
        )
        .unwrap();
        let err = load(&path).unwrap_err().to_string();
        assert!(err.contains("s.toml:5: `expect leadr`"), "{err}");
        std::fs::write(&path, "name = \"x\"\nsteps = [\"heal\"]\nsurprise = 1\n").unwrap();
        let err = load(&path).unwrap_err().to_string();
        assert!(err.contains("s.toml:3") && err.contains("surprise"), "{err}");
    }

    #[test]
    fn a_bare_number_of_milliseconds_is_refused_with_the_fix() {
        // `wait 5` once waited 5 ms and `within 10` allowed 10 ms: a unit is required now, never guessed.
        let e = parse_step("wait 5").unwrap_err();
        assert!(
            e.contains("`wait 5`") && e.contains("`5ms`") && e.contains("`5s`"),
            "{e}"
        );
        let e = parse_step("expect healthy within 10").unwrap_err();
        assert!(e.contains("`within 10`") && e.contains("`10s`"), "{e}");
        assert_eq!(parse_step("wait 5s").unwrap(), Step::Wait(Duration::from_secs(5)));
        assert_eq!(parse_step("wait 1m30s").unwrap(), Step::Wait(Duration::from_secs(90)));
        // The same flags inside a command step follow the command line's rule.
        let e = parse_step("link 1 2 --delay 200").unwrap_err();
        assert!(e.contains("--delay") && e.contains("`200ms`"), "{e}");
        assert!(
            parse_step("kill-leader --timeout 20").is_ok(),
            "a bare --timeout is seconds, as before"
        );
    }

    #[test]
    fn the_shipped_scenarios_load() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
        let mut n = 0;
        for e in std::fs::read_dir(dir).unwrap() {
            let path = e.unwrap().path();
            let (f, steps) = load(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert!(!f.name.is_empty() && !steps.is_empty());
            n += 1;
        }
        assert!(n >= 3);
    }

    #[test]
    fn junit_has_a_case_per_expectation_and_escapes() {
        let step = |line, step: &str, status, error: Option<&str>| StepReport {
            line,
            step: step.into(),
            status,
            ms: 1500,
            output: String::new(),
            error: error.map(str::to_string),
        };
        let r = ScenarioReport {
            name: "a <b>".into(),
            file: "scenarios/x.toml".into(),
            ok: false,
            ms: 4000,
            steps: vec![
                step(3, "kill-leader", Status::Passed, None),
                step(4, "expect leader_changed within 10s", Status::Passed, None),
                step(5, "heal", Status::Failed, Some("`zkdev heal` failed: no links")),
                step(6, "expect healthy", Status::Skipped, None),
            ],
        };
        let x = junit_xml(&r);
        assert!(
            x.contains(r#"<testsuite name="a &lt;b&gt;" tests="3" skipped="1" errors="1" failures="0""#),
            "{x}"
        );
        assert!(
            x.contains(
                r#"name="line 4: expect leader_changed within 10s" classname="zkdev.scenario.x" time="1.500"/>"#
            ),
            "{x}"
        );
        assert!(x.contains("<error message=\"`zkdev heal` failed: no links\">"), "{x}");
        assert!(x.contains("<skipped"), "{x}");
    }
}
