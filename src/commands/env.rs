//! `zkdev env`: exports for a client shell, `eval "$(zkdev env)"`.

use super::Ctx;
use crate::error::Result;

pub fn run(ctx: &Ctx) -> Result<()> {
    let (_, spec) = ctx.existing()?;
    let q = |s: &str| format!("'{}'", s.replace('\'', r"'\''"));
    if ctx.json {
        crate::output::print_json(&serde_json::json!({
            "ZK_CONNECT_STRING": spec.connect_string(),
            "ZKDEV_HOME": ctx.home.root.display().to_string(),
            "ZKDEV_CLUSTER": spec.name,
        }));
        return Ok(());
    }
    crate::outln!("export ZK_CONNECT_STRING={}", q(&spec.connect_string()));
    // So that later zkdev commands in this shell act on the same cluster.
    crate::outln!("export ZKDEV_HOME={}", q(&ctx.home.root.display().to_string()));
    crate::outln!("export ZKDEV_CLUSTER={}", q(&spec.name));
    crate::outln!("# first node's client port, for tools that take one host:port");
    crate::outln!("export ZK_HOST={}", q(&spec.nodes[0].client_addr().to_string()));
    Ok(())
}
