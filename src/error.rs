//! One error type for the whole tool. Every variant carries what it was about (file, flag, port, node, pid)
//! and its message says what to do. `kind` says which sort of failure it is, for a caller to match on
//! (the quorum guard refused, the supervisor is gone, ZooKeeper refused...); `exit_code` is derived from it.

use std::path::PathBuf;

/// Exit code: the operation failed (no quorum in time, a node died, a guard refused).
pub const EXIT_FAILED: i32 = 1;
/// Exit code: bad usage or bad input (flags, profiles, cluster names).
pub const EXIT_USAGE: i32 = 2;
/// Exit code: the environment is not fit (no java, no ZooKeeper, port in use, unwritable home).
pub const EXIT_ENV: i32 = 3;
/// Exit code: a check could not decide (the history is too large to check within its budget).
pub const EXIT_INCONCLUSIVE: i32 = 4;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad input from the user: a flag, a profile, a name.
    #[error("{0}")]
    Usage(String),

    /// A profile file that does not parse or holds a bad value.
    #[error("profile {path}: {message}")]
    Profile { path: String, message: String },

    /// The machine lacks something (java, ZooKeeper, a free port, a writable directory).
    #[error("{0}")]
    Env(String),

    /// The operation itself failed; `detail` is shown after the message (log tails and the like).
    #[error("{message}{}", detail_suffix(.detail))]
    Failed { message: String, detail: String },

    /// A check that could not decide within its budget: neither a pass nor a violation.
    #[error("{0}")]
    Inconclusive(String),

    /// A failure of a sort a caller may want to tell apart (see `ErrorKind`); `detail` as for `Failed`.
    #[error("{message}{}", detail_suffix(.detail))]
    Kind {
        kind: ErrorKind,
        message: String,
        detail: String,
    },

    #[error("{what} {}: {source}", .path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Which sort of failure an `Error` is. The exit code follows from it (`ErrorKind::exit_code`); on the
/// control socket it travels by its snake_case name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// Bad input: a flag, a profile, a name, a fault the cluster cannot take.
    Usage,
    /// The machine lacks something: java, ZooKeeper, a free port, a writable directory.
    Environment,
    /// The quorum guard refused: the change would leave too few voters to elect a leader.
    QuorumGuard,
    /// A network fault asked of a cluster made without proxied links (`--net`).
    NotProxied,
    /// The supervisor stopped answering (died, was stopped, or no new one would start).
    SupervisorGone,
    /// A ZooKeeper server answered with a refusal (a reconfig without quorum, a bad version...).
    ZookeeperRefused,
    /// Something did not happen within its time (a leader, an answer, a node serving).
    Timeout,
    /// A check ran and found something wrong (smoke's disagreement, a lost write, a violation).
    CheckFailed,
    /// A check could not decide within its budget.
    Inconclusive,
    /// Any other failure of the operation itself (a node died, a file could not be written).
    Failed,
}

impl ErrorKind {
    /// The documented exit code of this kind (docs: reference/exit-codes.md).
    pub fn exit_code(self) -> i32 {
        match self {
            ErrorKind::Usage | ErrorKind::NotProxied => EXIT_USAGE,
            ErrorKind::Environment => EXIT_ENV,
            ErrorKind::Inconclusive => EXIT_INCONCLUSIVE,
            ErrorKind::QuorumGuard
            | ErrorKind::SupervisorGone
            | ErrorKind::ZookeeperRefused
            | ErrorKind::Timeout
            | ErrorKind::CheckFailed
            | ErrorKind::Failed => EXIT_FAILED,
        }
    }

    /// Every kind, for tests and the reference.
    pub const ALL: [ErrorKind; 10] = [
        ErrorKind::Usage,
        ErrorKind::Environment,
        ErrorKind::QuorumGuard,
        ErrorKind::NotProxied,
        ErrorKind::SupervisorGone,
        ErrorKind::ZookeeperRefused,
        ErrorKind::Timeout,
        ErrorKind::CheckFailed,
        ErrorKind::Inconclusive,
        ErrorKind::Failed,
    ];
}

fn detail_suffix(detail: &str) -> String {
    if detail.is_empty() {
        String::new()
    } else {
        format!("\n{detail}")
    }
}

impl Error {
    pub fn usage(msg: impl Into<String>) -> Self {
        Error::Usage(msg.into())
    }
    pub fn env(msg: impl Into<String>) -> Self {
        Error::Env(msg.into())
    }
    pub fn failed(msg: impl Into<String>) -> Self {
        Error::Failed {
            message: msg.into(),
            detail: String::new(),
        }
    }
    pub fn failed_with(msg: impl Into<String>, detail: impl Into<String>) -> Self {
        Error::Failed {
            message: msg.into(),
            detail: detail.into(),
        }
    }
    /// An error of `kind` with its message (and no detail).
    pub fn of(kind: ErrorKind, msg: impl Into<String>) -> Self {
        Error::Kind {
            kind,
            message: msg.into(),
            detail: String::new(),
        }
    }
    /// The quorum guard refused (`--force` overrides it).
    pub fn quorum_guard(msg: impl Into<String>) -> Self {
        Error::of(ErrorKind::QuorumGuard, msg)
    }
    /// A network fault asked of a cluster without proxied links.
    pub fn not_proxied(msg: impl Into<String>) -> Self {
        Error::of(ErrorKind::NotProxied, msg)
    }
    /// The supervisor no longer answers.
    pub fn supervisor_gone(msg: impl Into<String>) -> Self {
        Error::of(ErrorKind::SupervisorGone, msg)
    }
    /// A ZooKeeper server refused what was asked.
    pub fn zookeeper_refused(msg: impl Into<String>) -> Self {
        Error::of(ErrorKind::ZookeeperRefused, msg)
    }
    /// Something did not happen in time.
    pub fn timeout(msg: impl Into<String>) -> Self {
        Error::of(ErrorKind::Timeout, msg)
    }
    /// Like `timeout`, with a detail shown after the message (a log tail).
    pub fn timeout_with(msg: impl Into<String>, detail: impl Into<String>) -> Self {
        Error::Kind {
            kind: ErrorKind::Timeout,
            message: msg.into(),
            detail: detail.into(),
        }
    }
    /// A check found something wrong.
    pub fn check_failed(msg: impl Into<String>) -> Self {
        Error::of(ErrorKind::CheckFailed, msg)
    }
    /// A check could not decide.
    pub fn inconclusive(msg: impl Into<String>) -> Self {
        Error::Inconclusive(msg.into())
    }
    pub fn io(what: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            what,
            path: path.into(),
            source,
        }
    }

    /// The same failure said in other words (`f` gets the message), its detail (a log tail) still last.
    pub fn reword(self, f: impl FnOnce(&str) -> String) -> Error {
        match self {
            Error::Failed { message, detail } => Error::Failed {
                message: f(&message),
                detail,
            },
            Error::Kind { kind, message, detail } => Error::Kind {
                kind,
                message: f(&message),
                detail,
            },
            other => Error::failed(f(&other.to_string())),
        }
    }

    /// Which sort of failure this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Usage(_) | Error::Profile { .. } => ErrorKind::Usage,
            Error::Env(_) => ErrorKind::Environment,
            Error::Inconclusive(_) => ErrorKind::Inconclusive,
            Error::Kind { kind, .. } => *kind,
            Error::Io { source, .. }
                if matches!(
                    source.kind(),
                    std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem
                ) =>
            {
                ErrorKind::Environment
            }
            Error::Failed { .. } | Error::Io { .. } => ErrorKind::Failed,
        }
    }

    /// The message without its detail, and the detail (a log tail; empty when none).
    pub fn parts(&self) -> (String, String) {
        match self {
            Error::Failed { message, detail } | Error::Kind { message, detail, .. } => {
                (message.clone(), detail.clone())
            }
            other => (other.to_string(), String::new()),
        }
    }

    /// An error of `kind` with this message and detail (the other end of the control socket).
    pub fn from_parts(kind: ErrorKind, message: String, detail: String) -> Self {
        match kind {
            ErrorKind::Usage => Error::Usage(message),
            ErrorKind::Environment => Error::Env(message),
            ErrorKind::Inconclusive => Error::Inconclusive(message),
            ErrorKind::Failed => Error::Failed { message, detail },
            kind => Error::Kind { kind, message, detail },
        }
    }

    pub fn exit_code(&self) -> i32 {
        self.kind().exit_code()
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_maps_to_its_documented_exit_code() {
        let expected = |k: ErrorKind| match k {
            ErrorKind::Usage | ErrorKind::NotProxied => 2,
            ErrorKind::Environment => 3,
            ErrorKind::Inconclusive => 4,
            ErrorKind::QuorumGuard
            | ErrorKind::SupervisorGone
            | ErrorKind::ZookeeperRefused
            | ErrorKind::Timeout
            | ErrorKind::CheckFailed
            | ErrorKind::Failed => 1,
        };
        for k in ErrorKind::ALL {
            let e = Error::from_parts(k, "m".into(), "d".into());
            assert_eq!(e.kind(), k, "{k:?} survives being rebuilt from its parts");
            assert_eq!(e.exit_code(), expected(k), "{k:?}");
            assert_eq!(k.exit_code(), expected(k), "{k:?}");
        }
        assert_eq!(Error::usage("x").kind(), ErrorKind::Usage);
        assert_eq!(Error::env("x").kind(), ErrorKind::Environment);
        assert_eq!(Error::failed("x").kind(), ErrorKind::Failed);
        assert_eq!(Error::quorum_guard("x").exit_code(), EXIT_FAILED);
        assert_eq!(Error::not_proxied("x").exit_code(), EXIT_USAGE);
        let denied = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        assert_eq!(Error::io("cannot write", "/x", denied).kind(), ErrorKind::Environment);
        let missing = std::io::Error::from(std::io::ErrorKind::NotFound);
        assert_eq!(Error::io("cannot read", "/x", missing).kind(), ErrorKind::Failed);
    }

    #[test]
    fn a_reworded_error_keeps_its_kind_and_detail() {
        let e = Error::timeout_with("no leader within 30 s", "log tail").reword(|m| format!("up: {m}"));
        assert_eq!(e.kind(), ErrorKind::Timeout);
        assert_eq!(e.parts(), ("up: no leader within 30 s".into(), "log tail".into()));
        assert_eq!(e.to_string(), "up: no leader within 30 s\nlog tail");
    }
}
