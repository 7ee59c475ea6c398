//! `zkdev dashboard [--port P] [--open]`: ask the cluster's supervisor to serve the live page on
//! 127.0.0.1:P (no extra process: the page lives as long as the supervisor) and print its address.

use std::time::Duration;

use serde_json::json;

use super::Ctx;
use crate::cli::DashboardArgs;
use crate::error::{Error, Result};
use crate::output;
use crate::supervisor::control::Request;
use crate::supervisor::replies::DashboardReply;

pub async fn run(ctx: &Ctx, args: DashboardArgs) -> Result<()> {
    let (_paths, spec) = ctx.existing()?;
    if args.port == 0 {
        return Err(Error::usage("--port 0: give a port number from 1 to 65535"));
    }
    let sup = ctx.supervisor().await?;
    let reply = sup
        .ask_for::<DashboardReply>(Request::Dashboard { port: args.port }, Duration::from_secs(10))
        .await
        .map_err(|e| {
            // A supervisor started by an older zkdev does not know the request.
            if e.to_string().contains("unknown variant") {
                Error::failed(format!(
                    "the supervisor of cluster `{}` was started by an older zkdev that cannot serve a dashboard; \
                     `zkdev down` and `zkdev up` start a new one (the data is kept)",
                    spec.name
                ))
            } else {
                e
            }
        })?;
    let url = reply.url;
    let mut opened = None;
    if args.open {
        opened = Some(
            std::process::Command::new("xdg-open")
                .arg(&url)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .is_ok(),
        );
    }
    if ctx.json {
        output::print_json(&json!({
            "cluster": spec.name,
            "url": url,
            "port": reply.port,
            "already_running": reply.already,
            "opened": opened,
        }));
        return Ok(());
    }
    let how = if reply.already { "already served" } else { "now served" };
    println!("dashboard of cluster `{}`: {url}", spec.name);
    println!("  {how} by the cluster's supervisor on 127.0.0.1 only; it stops with `zkdev down`");
    if opened == Some(false) {
        println!("  could not run xdg-open; open the address above in a browser");
    }
    Ok(())
}
