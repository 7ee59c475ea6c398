//! `zkdev env`: exports for a client shell, `eval "$(zkdev env)"`.

use super::Ctx;
use crate::error::Result;

pub fn run(ctx: &Ctx) -> Result<()> {
    let (_, spec) = ctx.existing()?;
    let q = |s: &str| format!("'{}'", s.replace('\'', r"'\''"));
    if ctx.json {
        crate::output::print_json(&serde_json::json!({
            "ZK_CONNECT_STRING": spec.client_connect_string(),
            "ZK_DIRECT_CONNECT_STRING": spec.connect_string(),
            "ZKDEV_HOME": ctx.home.root.display().to_string(),
            "ZKDEV_CLUSTER": spec.name,
        }));
        return Ok(());
    }
    if spec.net.is_some() {
        crate::outln!("# through the client proxies, so `zkdev link client ID` reaches these clients");
    }
    crate::outln!("export ZK_CONNECT_STRING={}", q(&spec.client_connect_string()));
    if spec.net.is_some() {
        crate::outln!("export ZK_DIRECT_CONNECT_STRING={}", q(&spec.connect_string()));
    }
    // So that later zkdev commands in this shell act on the same cluster.
    crate::outln!("export ZKDEV_HOME={}", q(&ctx.home.root.display().to_string()));
    crate::outln!("export ZKDEV_CLUSTER={}", q(&spec.name));
    crate::outln!("# first node's client port, for tools that take one host:port");
    crate::outln!(
        "export ZK_HOST={}",
        q(&format!(
            "127.0.0.1:{}",
            spec.client_proxy(1).unwrap_or(spec.nodes[0].ports.client)
        ))
    );
    Ok(())
}
