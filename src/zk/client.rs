//! The real ZooKeeper client (the tokio-based `zookeeper-client` crate) as `smoke` and `verify` use it.

use std::time::Duration;

use zookeeper_client as zk;

use crate::error::{Error, Result};

/// Connect to `connect` (one or more host:port) within `timeout`.
pub async fn connect(connect: &str, session: Duration, timeout: Duration) -> Result<zk::Client> {
    let attempt = zk::Client::connector()
        .with_session_timeout(session)
        .with_connection_timeout(timeout)
        .connect(connect);
    match tokio::time::timeout(timeout, attempt).await {
        Ok(Ok(c)) => Ok(c),
        Ok(Err(e)) => Err(Error::failed(format!("cannot connect to {connect}: {e}"))),
        Err(_) => Err(Error::failed(format!(
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
