//! `zkdev smoke`: write a znode through one node, then on every node sync and read it with a real client;
//! show what each returned and fail if any node disagrees or cannot answer (the engine's
//! [`crate::engine::smoke`]).

use super::Ctx;
use crate::cli::SmokeArgs;
use crate::engine::smoke::{self, SmokeOptions, SmokeReport};
use crate::error::Result;
use crate::model::words;
use crate::output;

pub async fn run(ctx: &Ctx, args: SmokeArgs) -> Result<()> {
    let (paths, spec) = ctx.existing()?;
    let options = SmokeOptions {
        via: args.via,
        tls: args.tls,
        timeout: args.timeout,
    };
    let report = smoke::smoke(&spec, &paths, &options).await?;
    if ctx.json {
        output::print_json(&report);
    } else {
        crate::out!("{}", text(&report));
    }
    report.verdict()
}

/// The report as `zkdev smoke` prints it: what was written, a row per node, and the agreement line.
pub(super) fn text(report: &SmokeReport) -> String {
    let mut s = format!(
        "wrote {} = \"{}\" through node {}{} (mzxid {})\n",
        report.path,
        report.data,
        report.written_via,
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
    s.push_str(&output::table(
        &["NODE", "MODE", "RESULT", "DATA", "MZXID", "ERROR"],
        &rows,
    ));
    if report.agree {
        let skipped: Vec<u32> = report.nodes.iter().filter(|n| n.skipped).map(|n| n.id).collect();
        let asked = report.nodes.len() - skipped.len();
        let tls = if report.tls {
            ", each over TLS on its secure client port"
        } else {
            ""
        };
        if skipped.is_empty() {
            s.push_str(&format!(
                "{} returned the same data and mzxid{tls}\n",
                if asked == 1 {
                    "the one node".to_string()
                } else {
                    format!("all {asked} nodes")
                }
            ));
        } else {
            s.push_str(&format!(
                "all {} asked returned the same data and mzxid{tls}; {} skipped (stopped)\n",
                words::count(asked, "node"),
                words::nodes(&skipped)
            ));
        }
    }
    s
}
