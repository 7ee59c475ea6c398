//! `zkdev verify`: a writer creates sequential znodes through the connect string with a real client while
//! the leader is killed K times (each restarted), or, with `--nemesis`, while seeded random faults (kill,
//! pause, partition, stall, delay) are injected one at a time; afterwards every node is asked for every
//! write. An acknowledged write must be on every node, once, in order, with its data. Unacknowledged writes
//! (the client saw an error) may or may not have landed: that is allowed.

use std::time::Duration;

use super::Ctx;
use crate::cli::VerifyArgs;
use crate::engine::kill_leader;
use crate::engine::nemesis::Env;
use crate::engine::run;
use crate::engine::verify::{self, Nemesis, VerifyEvent, VerifyOptions, VerifyReport};
use crate::error::Result;
use crate::model::spec::ClusterSpec;
use crate::output;

/// One event of the run loop, on stderr as it happens (chaos's too: the same loop, the same lines).
pub(super) fn render(event: &run::Event<'_>) {
    match event {
        run::Event::FaultHealed { fault, injected: i } => eprintln!(
            "  fault {} at {:.2} s: {}; held {} ms, every node serving {} ms after the heal",
            fault.n,
            i.injected_at_ms as f64 / 1000.0,
            i.what,
            i.held_ms,
            i.recovered_ms.unwrap_or(0)
        ),
        run::Event::LeaderKilled { n, report: r } => eprintln!(
            "  kill {n}: leader {} (epoch {}) killed; {}; {}",
            r.old_leader,
            r.old_epoch,
            kill_leader::new_leader_phrase(r.new_leader, r.new_epoch, r.new_leader_ms),
            r.rejoined_as
                .map_or("not seen rejoining".to_string(), |m| format!("rejoined as {m}"))
        ),
    }
}

fn nemesis_plan(args: &VerifyArgs, spec: &ClusterSpec, duration: Duration) -> Result<Option<Nemesis>> {
    args.nemesis
        .as_deref()
        .map(|text| verify::plan_nemesis(text, args.faults, args.seed, spec, duration))
        .transpose()
}

/// The engine's options for these arguments (the nemesis planned on this cluster).
pub(super) fn options(args: &VerifyArgs, spec: &ClusterSpec) -> Result<VerifyOptions> {
    Ok(VerifyOptions {
        duration: args.duration,
        writes_per_sec: args.writes_per_sec,
        kills: args.kills,
        tls: args.tls,
        direct: args.direct,
        nemesis: nemesis_plan(args, spec, args.duration)?,
    })
}

pub async fn run(ctx: &Ctx, args: VerifyArgs) -> Result<()> {
    let (paths, spec) = ctx.existing()?;
    let options = options(&args, &spec)?;
    let sup = ctx.supervisor().await?;
    let cause = ctx.cause();
    let env = Env {
        sup: &sup,
        cause: &cause,
        spec: &spec,
        paths: &paths,
        force: false,
    };
    let talk = !ctx.quiet && !ctx.json;
    let report = verify::verify(&env, &options, |event| {
        if talk {
            match event {
                VerifyEvent::Started { base } => eprint!("{}", started_text(&options, base)),
                VerifyEvent::Run(e) => render(&e),
            }
        }
    })
    .await?;
    print_report(ctx, &report);
    report.verdict()
}

/// What verify is about to do, as it says on stderr.
pub(super) fn started_text(options: &VerifyOptions, base: &str) -> String {
    let tls = if options.tls { " over TLS" } else { "" };
    let secs = output::secs(options.duration);
    match &options.nemesis {
        None => format!(
            "writing {} znodes/s{tls} under {base} for at least {secs} while killing the leader {}...\n",
            options.writes_per_sec,
            crate::model::words::count(options.kills as usize, "time")
        ),
        Some(n) => {
            let mut s = format!(
                "nemesis: seed {}, {} from {} over {secs} (the same seed replays them: --seed {})\n",
                n.seed,
                crate::model::words::count(n.plan.len(), "fault"),
                n.kinds.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(","),
                n.seed
            );
            for f in &n.plan {
                s.push_str(&format!(
                    "  {}. at {:.1} s: {}\n",
                    f.n,
                    f.at_ms as f64 / 1000.0,
                    f.describe()
                ));
            }
            s.push_str(&format!(
                "writing {} znodes/s{tls} under {base} for at least {secs}...\n",
                options.writes_per_sec
            ));
            s
        }
    }
}

fn print_report(ctx: &Ctx, r: &VerifyReport) {
    if ctx.json {
        output::print_json(r);
    } else {
        crate::out!("{}", report_text(r));
    }
}

/// A verify report as `zkdev verify` prints it.
pub(super) fn report_text(r: &VerifyReport) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "writes: {} attempted, {} acknowledged, {} failed (not acknowledged: allowed)",
        r.attempted, r.acknowledged, r.failed
    );
    let _ = writeln!(
        out,
        "lost: {} (must be 0), duplicated: {}, out of order: {}",
        r.lost, r.duplicated, r.out_of_order
    );
    if let Some(l) = &r.latency_ms {
        let _ = writeln!(
            out,
            "acknowledged write latency: median {} ms, p90 {} ms, p99 {} ms, max {} ms",
            l.p50, l.p90, l.p99, l.max
        );
    }
    if let Some(n) = &r.nemesis {
        let _ = writeln!(
            out,
            "faults injected: {} of {} planned (seed {}; `--seed {}` replays them)",
            n.faults.len(),
            n.planned,
            n.seed,
            n.seed
        );
        out.push_str(&super::fault_table(&n.faults, true));
    }
    if !r.unavailability_ms.is_empty() {
        let w: Vec<String> = r.unavailability_ms.iter().map(|ms| format!("{ms} ms")).collect();
        let _ = writeln!(
            out,
            "unavailability windows (first failed write -> next acknowledged): {}",
            w.join(", ")
        );
    }
    let rows: Vec<Vec<String>> = r
        .nodes
        .iter()
        .map(|n| {
            vec![
                n.id.to_string(),
                n.present.to_string(),
                n.missing.to_string(),
                n.wrong_data.to_string(),
                n.error.clone().unwrap_or_default(),
            ]
        })
        .collect();
    out.push_str(&output::table(
        &["NODE", "PRESENT", "MISSING", "WRONG DATA", "ERROR"],
        &rows,
    ));
    if r.ok {
        let _ = writeln!(
            out,
            "OK: every acknowledged write is on every node, once, in order{}",
            if r.tls { " (written and read over TLS)" } else { "" }
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dist::Dist;
    use crate::engine::verify::survives_leader_kills;
    use crate::model::spec::tests::settings;

    #[test]
    fn verify_refuses_clusters_a_leader_kill_would_leave_without_quorum() {
        for voters in [1, 2] {
            let spec = ClusterSpec::build("one", "p", settings("fast"), Dist::fixture(), voters, 1).unwrap();
            let err = survives_leader_kills(&spec).unwrap_err().to_string();
            let has = crate::model::words::count(voters as usize, "voter");
            assert!(err.contains(&format!("has {has}:")), "{err}");
            assert!(err.contains("at least 3 voters"), "{err}");
            assert!(
                err.contains("`zkdev --cluster one down --purge && zkdev --cluster one up --nodes 3 --observers 1"),
                "{err}"
            );
            assert!(!err.contains("(s)"), "{err}");
            assert!(!err.contains("--force"), "{err}");
        }
        let spec = ClusterSpec::build("three", "p", settings("fast"), Dist::fixture(), 3, 0).unwrap();
        survives_leader_kills(&spec).unwrap();
    }

    #[test]
    fn nemesis_network_faults_need_proxied_links_and_a_seed_fixes_the_plan() {
        let args = |kinds: &str| VerifyArgs {
            out: crate::cli::JsonArg { json: false },
            kills: 3,
            writes_per_sec: 50,
            duration: Duration::from_secs(10),
            nemesis: Some(kinds.into()),
            seed: Some(7),
            faults: None,
            tls: false,
            direct: false,
        };
        let plain = ClusterSpec::build("plain", "p", settings("fast"), Dist::fixture(), 3, 0).unwrap();
        let ten = Duration::from_secs(10);
        let err = nemesis_plan(&args("kill,stall,delay"), &plain, ten)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("--nemesis stall,delay needs proxied links"), "{err}");
        assert!(
            err.contains("`zkdev --cluster plain down --purge && zkdev --cluster plain up --nodes 3 ")
                && err.contains(" --net`"),
            "{err}"
        );
        let n = nemesis_plan(&args("kill,pause"), &plain, ten).unwrap().unwrap();
        assert_eq!((n.seed, n.plan.len()), (7, 2));
        assert_eq!(
            n.plan,
            nemesis_plan(&args("kill,pause"), &plain, ten).unwrap().unwrap().plan
        );
        let one = ClusterSpec::build("one", "p", settings("fast"), Dist::fixture(), 1, 0).unwrap();
        let err = nemesis_plan(&args("pause"), &one, ten).err().unwrap().to_string();
        assert!(err.contains("at least 3 voters"), "{err}");
        // Disk faults need the library in the nodes: a cluster made without it is told how to get one.
        let err = nemesis_plan(&args("kill,disk"), &plain, ten).err().unwrap().to_string();
        assert!(err.contains("--nemesis disk needs the disk-fault library"), "{err}");
        assert!(
            err.contains("`zkdev --cluster plain down --purge && zkdev --cluster plain up --nodes 3 ")
                && err.contains(" --disk-faults`"),
            "{err}"
        );
        let n = nemesis_plan(&args("expire"), &plain, ten).unwrap().unwrap();
        assert_eq!(n.plan.len(), 2);
    }
}
