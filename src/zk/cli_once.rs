//! The one-shot zkCli (`zkdev cli ID -- CMD`): ZooKeeper's ZooKeeperMain runs the command and then exits the
//! JVM without closing its session, so an ephemeral znode the command made outlives it until the session times
//! out. A small subclass of ZooKeeperMain (templates/ZkdevCliOnce.java) runs the command the same way and
//! closes the session. It is compiled once per cluster with the `javac` of the cluster's Java and kept in the
//! cluster's directory.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::model::dist::Dist;

/// The helper's source, compiled at first use.
pub const SOURCE: &str = include_str!("../../templates/ZkdevCliOnce.java");
/// Its main class.
pub const MAIN_CLASS: &str = "ZkdevCliOnce";

/// Do zkCli's arguments name a command (as ZooKeeperMain's `parseOptions` reads them: `-server`, `-timeout`
/// and `-client-configuration` take a value, other `-` words are flags, the first other word is the command)?
/// Without one zkCli is the interactive shell, which keeps ZooKeeper's own behaviour.
pub fn names_a_command(args: &[String]) -> bool {
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "-server" | "-timeout" | "-client-configuration" => {
                it.next();
            }
            flag if flag.starts_with('-') => {}
            _ => return true,
        }
    }
    false
}

/// The directory holding the compiled helper under `dir` (compiled now if it is missing or its source changed),
/// to put in front of the classpath; Err says why the helper cannot be used (no javac beside the cluster's
/// java, or the installation's ZooKeeperMain is too different, as in 3.4), and the caller falls back to
/// ZooKeeperMain itself.
pub fn prepare(dist: &Dist, dir: &Path) -> Result<PathBuf, String> {
    let classes = dir.join("classes");
    let source = dir.join(format!("{MAIN_CLASS}.java"));
    let class = classes.join(format!("{MAIN_CLASS}.class"));
    if class.is_file() && fs::read_to_string(&source).is_ok_and(|s| s == SOURCE) {
        return Ok(classes);
    }
    let java = fs::canonicalize(&dist.java).unwrap_or_else(|_| dist.java.clone());
    let javac = java.with_file_name("javac");
    if !javac.is_file() {
        return Err(format!("no javac beside {} (a JRE without a compiler)", java.display()));
    }
    fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    // Compile into a fresh directory, then move it into place: two `zkdev cli` at once never see half a class.
    let work = tempfile::Builder::new()
        .prefix(".cli-build")
        .tempdir_in(dir)
        .map_err(|e| format!("cannot write in {}: {e}", dir.display()))?;
    let src = work.path().join(format!("{MAIN_CLASS}.java"));
    fs::write(&src, SOURCE).map_err(|e| format!("cannot write {}: {e}", src.display()))?;
    let out_dir = work.path().join("classes");
    let out = Command::new(&javac)
        .arg("-nowarn")
        .arg("-cp")
        .arg(dist.classpath_string())
        .arg("-d")
        .arg(&out_dir)
        .arg(&src)
        .output()
        .map_err(|e| format!("cannot run {}: {e}", javac.display()))?;
    if !out.status.success() {
        let why = String::from_utf8_lossy(&out.stderr);
        let first = why.lines().next().unwrap_or("no message");
        return Err(format!("{} could not compile the helper: {first}", javac.display()));
    }
    let _ = fs::remove_dir_all(&classes);
    if let Err(e) = fs::rename(&out_dir, &classes) {
        // Another `zkdev cli` may have put its own (identical) build there first.
        if !class.is_file() {
            return Err(format!("cannot move the helper into {}: {e}", classes.display()));
        }
    }
    fs::rename(&src, &source).map_err(|e| format!("cannot write {}: {e}", source.display()))?;
    Ok(classes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_command_is_the_first_word_that_is_no_option_or_its_value() {
        assert!(names_a_command(&args(&["create", "-e", "/x"])));
        assert!(names_a_command(&args(&["-timeout", "5000", "ls", "/"])));
        assert!(names_a_command(&args(&["-r", "get", "/x"])));
        assert!(!names_a_command(&args(&[])));
        assert!(!names_a_command(&args(&["-timeout", "5000"])));
        assert!(!names_a_command(&args(&[
            "-waitforconnection",
            "-client-configuration",
            "zk.conf"
        ])));
    }
}
