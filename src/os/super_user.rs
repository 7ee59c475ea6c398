//! The super user of a cluster made with dynamic reconfiguration. `reconfig` needs the super user (or
//! `skipACL`, which would open every znode to everyone): every node's JVM is given the digest
//! (`-Dzookeeper.DigestAuthenticationProvider.superDigest=super:<base64 sha1>`) and zkdev's own client
//! authenticates with the password, kept in the cluster directory readable by its owner only.

use std::path::PathBuf;

use base64::Engine;
use sha1::{Digest, Sha1};

use crate::error::{Error, Result};
use crate::os::state::ClusterPaths;

/// The user name ZooKeeper's digest provider treats as the super user.
pub const USER: &str = "super";

pub fn password_file(paths: &ClusterPaths) -> PathBuf {
    paths.root.join("super.password")
}

/// ZooKeeper's digest of `user:password`: `user:` then base64(sha1("user:password")).
pub fn digest(user: &str, password: &str) -> String {
    let hash = Sha1::digest(format!("{user}:{password}").as_bytes());
    format!("{user}:{}", base64::engine::general_purpose::STANDARD.encode(hash))
}

/// Make a new password, write it (0600, atomically), and return the digest the nodes are given.
pub fn create(paths: &ClusterPaths) -> Result<String> {
    let password = format!(
        "{}{}",
        crate::model::spec::ClusterSpec::uid_from(crate::os::random::u64()),
        crate::model::spec::ClusterSpec::uid_from(crate::os::random::u64())
    );
    // write_atomic's temporary file is created owner-only, and keeps that mode when it is renamed.
    crate::os::state::write_atomic(&password_file(paths), format!("{password}\n").as_bytes())?;
    Ok(digest(USER, &password))
}

/// `super:<password>`, what zkdev's client sends as its digest auth.
pub fn credentials(paths: &ClusterPaths) -> Result<String> {
    let file = password_file(paths);
    let password = std::fs::read_to_string(&file).map_err(|e| {
        Error::env(format!(
            "cannot read the super user's password in {}: {e}; it is made by `zkdev up --reconfig` and removed \
             only with the cluster (`zkdev down --purge`)",
            file.display()
        ))
    })?;
    Ok(format!("{USER}:{}", password.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_is_zookeepers() {
        // As `org.apache.zookeeper.server.auth.DigestAuthenticationProvider super:test` prints it.
        assert_eq!(digest("super", "test"), "super:D/InIHSb7yEEbrWz8b9l71RjZJU=");
    }
}
