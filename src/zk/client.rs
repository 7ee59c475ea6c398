//! The real ZooKeeper client (the tokio-based `zookeeper-client` crate) as `smoke` and `verify` use it.

use std::time::Duration;

use zookeeper_client as zk;

use crate::error::{Error, Result};
use crate::os::tls::TlsFiles;

/// Connect to `connect` (one or more host:port) within `timeout`.
pub async fn connect(connect: &str, session: Duration, timeout: Duration) -> Result<zk::Client> {
    connect_with(connect, session, timeout, None).await
}

/// Connect over TLS to secure client ports, trusting the cluster's CA and showing its client certificate.
pub async fn connect_tls(connect: &str, session: Duration, timeout: Duration, tls: &TlsFiles) -> Result<zk::Client> {
    connect_with(connect, session, timeout, Some(tls)).await
}

fn tls_options(tls: &TlsFiles) -> Result<zk::TlsOptions> {
    // rustls is built with two crypto providers here (ring for ureq and this, aws-lc-rs for the client's
    // default features): name one for the process, or rustls refuses to pick.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let read = |p: std::path::PathBuf| std::fs::read_to_string(&p).map_err(|e| Error::io("cannot read", &p, e));
    let (ca, cert, key) = (read(tls.ca())?, read(tls.client_cert())?, read(tls.client_key())?);
    zk::TlsOptions::new()
        .with_pem_ca(&ca)
        .and_then(|o| o.with_pem_identity(&cert, &key))
        .map_err(|e| {
            Error::failed(format!(
                "the cluster's TLS files in {} are unusable: {e}",
                tls.dir.display()
            ))
        })
}

async fn connect_with(
    connect: &str,
    session: Duration,
    timeout: Duration,
    tls: Option<&TlsFiles>,
) -> Result<zk::Client> {
    let connector = zk::Client::connector()
        .with_session_timeout(session)
        .with_connection_timeout(timeout);
    let attempt = match tls {
        Some(files) => {
            let options = tls_options(files)?;
            futures::future::Either::Left(connector.with_tls(options).secure_connect(connect))
        }
        None => futures::future::Either::Right(connector.connect(connect)),
    };
    match tokio::time::timeout(timeout, attempt).await {
        Ok(Ok(c)) => Ok(c),
        Ok(Err(e)) => Err(Error::failed(format!("cannot connect to {connect}: {e}"))),
        Err(_) => Err(Error::timeout(format!(
            "cannot connect to {connect}: no session within {} ms",
            timeout.as_millis()
        ))),
    }
}

pub fn open_acl() -> zk::CreateOptions<'static> {
    zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all())
}

/// Create a persistent znode unless it exists.
pub async fn ensure(client: &zk::Client, path: &str) -> Result<()> {
    match client.create(path, b"", &open_acl()).await {
        Ok(_) | Err(zk::Error::NodeExists) => Ok(()),
        Err(e) => Err(Error::failed(format!("cannot create {path}: {e}"))),
    }
}

/// The client library's zxid (a signed long on the wire) as a `Zxid`.
pub fn zxid(z: i64) -> crate::model::server::Zxid {
    crate::model::server::Zxid(z as u64)
}
