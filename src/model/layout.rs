//! Where a cluster's files are: path arithmetic only, nothing here looks at the disk (`os::state` reads
//! and writes them).
//!
//! ```text
//! $ZKDEV_HOME/clusters/<name>/cluster.toml     the resolved spec
//! $ZKDEV_HOME/clusters/<name>/state.json       per node process state
//! $ZKDEV_HOME/clusters/<name>/node<i>/conf/    zoo.cfg + log configuration
//! $ZKDEV_HOME/clusters/<name>/node<i>/data/    myid, version-2/
//! $ZKDEV_HOME/clusters/<name>/node<i>/logs/    zookeeper.log
//! $ZKDEV_HOME/clusters/<name>/quorum.lock      held from a quorum guard's decision until its take-down is done
//! $ZKDEV_HOME/clusters/<name>/tls/             the cluster's CA, node and client certificates (`--tls`)
//! $ZKDEV_HOME/locks/<name>.lock                held by every command that changes the cluster
//! $ZKDEV_HOME/cds/<key>.jsa                     class-data-sharing archives (profiles that ask for them)
//! ```

use std::path::PathBuf;

/// Written into every cluster directory zkdev creates; purge refuses a directory without it.
pub const MARKER_FILE: &str = ".zkdev-cluster";

#[derive(Debug, Clone)]
pub struct Home {
    pub root: PathBuf,
}

impl Home {
    pub fn cluster(&self, name: &str) -> ClusterPaths {
        ClusterPaths {
            root: self.root.join("clusters").join(name),
            lock: self.root.join("locks").join(format!("{name}.lock")),
            cds_dir: self.root.join("cds"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ClusterPaths {
    pub root: PathBuf,
    pub lock: PathBuf,
    /// The class-data-sharing archive cache, shared by every cluster of this home.
    pub cds_dir: PathBuf,
}

impl ClusterPaths {
    pub fn spec_file(&self) -> PathBuf {
        self.root.join("cluster.toml")
    }
    pub fn state_file(&self) -> PathBuf {
        self.root.join("state.json")
    }
    pub fn marker(&self) -> PathBuf {
        self.root.join(MARKER_FILE)
    }
    pub fn node_dir(&self, id: u32) -> PathBuf {
        self.root.join(format!("node{id}"))
    }
    pub fn conf_dir(&self, id: u32) -> PathBuf {
        self.node_dir(id).join("conf")
    }
    pub fn zoo_cfg(&self, id: u32) -> PathBuf {
        self.conf_dir(id).join("zoo.cfg")
    }
    pub fn data_dir(&self, id: u32) -> PathBuf {
        self.node_dir(id).join("data")
    }
    pub fn logs_dir(&self, id: u32) -> PathBuf {
        self.node_dir(id).join("logs")
    }
    pub fn log_file(&self, id: u32) -> PathBuf {
        self.logs_dir(id).join("zookeeper.log")
    }
    /// Where a node records a class-data-sharing archive at exit, before zkdev adopts it into the cache.
    pub fn cds_partial(&self, id: u32) -> PathBuf {
        self.node_dir(id).join("cds-recording.jsa")
    }

    /// The journal, and its previous rotation.
    pub fn journal(&self) -> PathBuf {
        self.root.join("events.ndjson")
    }
    pub fn journal_old(&self) -> PathBuf {
        self.root.join("events.1.ndjson")
    }
    /// The supervisor's control socket (owner-only), log, single-instance lock and record (pid, start time).
    pub fn socket(&self) -> PathBuf {
        self.root.join("supervisor.sock")
    }
    pub fn supervisor_log(&self) -> PathBuf {
        self.root.join("supervisor.log")
    }
    pub fn supervisor_lock(&self) -> PathBuf {
        self.root.join("supervisor.lock")
    }
    /// The quorum guard's lock: every take-down of a node (stop, kill, pause, restart, kill-leader, from the
    /// command line or the dashboard) decides and acts under it, so concurrent ones count each other.
    pub fn quorum_lock_file(&self) -> PathBuf {
        self.root.join("quorum.lock")
    }
    pub fn supervisor_record(&self) -> PathBuf {
        self.root.join("supervisor.json")
    }
}

/// Where a cluster's TLS files are.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TlsFiles {
    pub dir: PathBuf,
}

impl TlsFiles {
    pub fn of(paths: &ClusterPaths) -> TlsFiles {
        TlsFiles {
            dir: paths.root.join("tls"),
        }
    }

    /// The CA certificate: every node's and the client's trust store.
    pub fn ca(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// The CA's private key, to sign the certificate of a node added later.
    pub fn ca_key(&self) -> PathBuf {
        self.dir.join("ca-key.pem")
    }

    /// Node `id`'s key store: its certificate and private key in one PEM file.
    pub fn node(&self, id: u32) -> PathBuf {
        self.dir.join(format!("node{id}.pem"))
    }

    /// The client's key store (certificate and key in one file), for Java clients (`PEM` store type).
    pub fn client(&self) -> PathBuf {
        self.dir.join("client.pem")
    }

    /// The client's certificate alone, for clients that take certificate and key apart.
    pub fn client_cert(&self) -> PathBuf {
        self.dir.join("client-cert.pem")
    }

    /// The client's private key alone (PKCS#8).
    pub fn client_key(&self) -> PathBuf {
        self.dir.join("client-key.pem")
    }
}
