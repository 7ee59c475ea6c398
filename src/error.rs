//! One error type for the whole tool. Every variant carries what it was about (file, flag, port, node, pid)
//! and its message says what to do. `exit_code` maps it onto the documented exit codes.

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

    #[error("{what} {}: {source}", .path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
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
            other => Error::failed(f(&other.to_string())),
        }
    }

    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage(_) | Error::Profile { .. } => EXIT_USAGE,
            Error::Env(_) => EXIT_ENV,
            Error::Inconclusive(_) => EXIT_INCONCLUSIVE,
            Error::Io { source, .. }
                if matches!(
                    source.kind(),
                    std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem
                ) =>
            {
                EXIT_ENV
            }
            Error::Failed { .. } | Error::Io { .. } => EXIT_FAILED,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
