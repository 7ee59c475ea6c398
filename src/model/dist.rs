//! What a ZooKeeper installation is (java, version, layout, classpath) and what a node's command line adds
//! for class-data sharing. Descriptions only: `dist` finds, fetches and checks installations on disk.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The command that installs what is missing on Debian-like machines.
pub const INSTALL_ZOOKEEPER: &str = "sudo apt-get install -y zookeeper libservlet-api-java";
pub const INSTALL_NETTY: &str = "sudo apt-get install -y libnetty-java";
pub const INSTALL_JAVA: &str = "sudo apt-get install -y default-jre-headless";

/// Netty jars (package libnetty-java) that Debian's zookeeper.jar manifest leaves out.
pub const NETTY_EXTRA_JARS: &[&str] = &[
    "netty-codec.jar",
    "netty-resolver.jar",
    "netty-transport-native-unix-common.jar",
];

/// Whether an installation can run NettyServerCnxnFactory (and so TLS): Debian's package needs libnetty-java's
/// codec jar besides the ones its manifest names.
pub fn has_netty(dist: &Dist) -> bool {
    dist.layout != Layout::Debian || dist.classpath.iter().any(|j| j.ends_with("netty-codec.jar"))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    Debian,
    /// Upstream 3.5.5+ `apache-zookeeper-X-bin` tarball.
    Tarball,
    /// Upstream 3.4 / 3.5.0-3.5.4 tarball, main jar at the top.
    LegacyTarball,
}

impl Layout {
    /// In words, for messages and tables (`--json` keeps the serde names).
    pub fn words(self) -> &'static str {
        match self {
            Layout::Debian => "Debian",
            Layout::Tarball => "tarball",
            Layout::LegacyTarball => "legacy tarball",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogConfig {
    Log4j,
    Logback,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dist {
    pub java: PathBuf,
    pub zk_home: PathBuf,
    pub version: String,
    pub layout: Layout,
    pub log_config: LogConfig,
    pub classpath: Vec<PathBuf>,
    /// Debian's package lacks the servlet API unless libservlet-api-java is installed; without it the
    /// AdminServer cannot start.
    pub admin_server_available: bool,
}

impl Dist {
    /// (major, minor, patch), missing parts as 0.
    pub fn version_tuple(&self) -> (u32, u32, u32) {
        parse_version(&self.version)
    }

    pub fn classpath_string(&self) -> String {
        self.classpath
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(":")
    }

    /// A stand-in for validating a spec's shape before java and ZooKeeper are looked for; never started.
    pub fn placeholder() -> Dist {
        Dist {
            admin_server_available: true,
            ..Dist::fixture()
        }
    }

    /// A fixed Debian 3.8.0 installation for pure tests (rendering, specs); never started.
    pub fn fixture() -> Dist {
        Dist {
            java: "/usr/bin/java".into(),
            zk_home: "/usr/share/zookeeper".into(),
            version: "3.8.0".into(),
            layout: Layout::Debian,
            log_config: LogConfig::Log4j,
            classpath: vec!["/usr/share/java/zookeeper.jar".into()],
            admin_server_available: true,
        }
    }
}

pub fn parse_version(v: &str) -> (u32, u32, u32) {
    let mut it = v
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<u32>().unwrap_or(0));
    (it.next().unwrap_or(0), it.next().unwrap_or(0), it.next().unwrap_or(0))
}

/// What `render` adds to the nodes' command lines.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    /// Map this archive.
    pub use_archive: Option<PathBuf>,
    /// This node records an archive at exit, at this path.
    pub record: Option<(u32, PathBuf)>,
}
