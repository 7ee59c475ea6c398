//! `zkdev env`: exports for a client shell, `eval "$(zkdev env)"`.

use super::Ctx;
use crate::error::Result;
use crate::os::tls::TlsFiles;

pub fn run(ctx: &Ctx) -> Result<()> {
    let (paths, spec) = ctx.existing()?;
    let q = |s: &str| format!("'{}'", s.replace('\'', r"'\''"));
    // With proxied links (--net) clients go through the client proxies, so `zkdev link client ID` reaches them.
    let host = match spec.client_proxy(1) {
        Some(port) => format!("127.0.0.1:{port}"),
        None => spec.nodes[0].client_addr().to_string(),
    };
    let mut vars = vec![
        ("ZK_CONNECT_STRING", spec.client_connect_string()),
        ("ZKDEV_HOME", ctx.home.root.display().to_string()),
        ("ZKDEV_CLUSTER", spec.name.clone()),
        ("ZK_HOST", host),
    ];
    if let Some(slot) = spec.slot {
        vars.push(("ZKDEV_SLOT", slot.index.to_string()));
        vars.push(("ZKDEV_PORT_OFFSET", slot.port_offset.to_string()));
    }
    if spec.net.is_some() {
        vars.push(("ZK_DIRECT_CONNECT_STRING", spec.connect_string()));
    }
    let secure = spec.secure_connect_string();
    if let Some(secure) = &secure {
        let tls = TlsFiles::of(&paths);
        vars.push(("ZK_SECURE_CONNECT_STRING", secure.clone()));
        vars.push(("ZK_TLS_CA", tls.ca().display().to_string()));
        vars.push(("ZK_TLS_CERT", tls.client_cert().display().to_string()));
        vars.push(("ZK_TLS_KEY", tls.client_key().display().to_string()));
        vars.push(("ZK_TLS_KEYSTORE", tls.client().display().to_string()));
        vars.push(("ZK_TLS_JAVA_OPTS", java_client_opts(&tls)));
    }
    if ctx.json {
        let map: serde_json::Map<String, serde_json::Value> =
            vars.into_iter().map(|(k, v)| (k.to_string(), v.into())).collect();
        crate::output::print_json(&map);
        return Ok(());
    }
    for (k, v) in vars {
        match k {
            // So that later zkdev commands in this shell act on the same cluster.
            "ZKDEV_HOME" => {}
            "ZK_CONNECT_STRING" if spec.net.is_some() => {
                crate::outln!("# through the client proxies, so `zkdev link client ID` reaches these clients")
            }
            "ZK_HOST" => crate::outln!("# first node's client port, for tools that take one host:port"),
            "ZKDEV_SLOT" => crate::outln!("# the port slot `up --slot` picked, and its port offset"),
            "ZK_SECURE_CONNECT_STRING" => crate::outln!(
                "# TLS: every node's secure client port; the cluster's CA, the client certificate and key (PEM, no password)"
            ),
            "ZK_TLS_JAVA_OPTS" => crate::outln!("# a Java client (zkCli, Curator) over TLS: add to its JVM options"),
            _ => {}
        }
        crate::outln!("export {k}={}", q(&v));
    }
    Ok(())
}

/// The system properties a Java ZooKeeper client (3.6+) needs to connect over TLS with these files.
pub fn java_client_opts(tls: &TlsFiles) -> String {
    [
        "-Dzookeeper.client.secure=true".to_string(),
        "-Dzookeeper.clientCnxnSocket=org.apache.zookeeper.ClientCnxnSocketNetty".to_string(),
        format!("-Dzookeeper.ssl.trustStore.location={}", tls.ca().display()),
        "-Dzookeeper.ssl.trustStore.type=PEM".to_string(),
        format!("-Dzookeeper.ssl.keyStore.location={}", tls.client().display()),
        "-Dzookeeper.ssl.keyStore.type=PEM".to_string(),
    ]
    .join(" ")
}
