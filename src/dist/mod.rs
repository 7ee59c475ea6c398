//! Finding java and a ZooKeeper installation, its version, layout and the classpath it needs.
//!
//! Order: `--zk-home` flag, the profile's `dist.zk_home`, `ZOOKEEPER_HOME`, then Debian's package layout.
//! Layouts understood: Debian (`/usr/share/java/zookeeper.jar`, whose manifest names no logging binding),
//! an upstream 3.5.5+ `-bin` tarball (`lib/*.jar`), and a 3.4-style tarball (`zookeeper-X.jar` at the top).
//! `fetch` downloads, verifies and unpacks releases; `cds` keeps class-data-sharing archives per
//! installation.

pub mod cds;
pub mod fetch;

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{Error, Result};
pub use crate::model::dist::{
    has_netty, parse_version, Dist, Layout, LogConfig, INSTALL_JAVA, INSTALL_NETTY, INSTALL_ZOOKEEPER, NETTY_EXTRA_JARS,
};

const DEBIAN_JAVA_DIR: &str = "/usr/share/java";

/// The major version of the Java installation `java` belongs to, from its `release` file
/// (`JAVA_VERSION="17.0.15"`, `"1.8.0_392"` for 8); None when it cannot be told.
pub fn java_major(java: &std::path::Path) -> Option<u32> {
    let real = std::fs::canonicalize(java).ok()?;
    // bin/java (JDK 9+, and a JRE 8) or jre/bin/java (a JDK 8): the release file is at the top.
    let text =
        (real.ancestors().skip(2).take(2)).find_map(|home| std::fs::read_to_string(home.join("release")).ok())?;
    java_major_of(&text)
}

fn java_major_of(release: &str) -> Option<u32> {
    let line = release.lines().find_map(|l| l.strip_prefix("JAVA_VERSION="))?;
    let v = line.trim().trim_matches('"');
    let mut parts = v.split(['.', '_', '-', '+']);
    match parts.next()?.parse::<u32>().ok()? {
        1 => parts.next()?.parse().ok(),
        major => Some(major),
    }
}

/// Find java and ZooKeeper. `zk_home` is the flag's or profile's value, `java` the profile's, `want_version`
/// the flag's or profile's pin; `zkdev_home` holds the cache of downloaded and added installations.
pub fn detect(
    zk_home: Option<&str>,
    java: Option<&str>,
    want_version: Option<&str>,
    zkdev_home: &Path,
) -> Result<Dist> {
    let java = find_java(java)?;
    let env_home = std::env::var("ZOOKEEPER_HOME").ok().filter(|s| !s.is_empty());
    let (home, source) = match (zk_home, env_home.as_deref()) {
        (Some(h), _) => (Some(PathBuf::from(h)), "--zk-home / profile dist.zk_home"),
        (None, Some(h)) if want_version.is_none() => (Some(PathBuf::from(h)), "ZOOKEEPER_HOME"),
        _ => (None, ""),
    };
    if let Some(home) = home {
        let dist = from_home(&home, java).ok_or_else(|| {
            Error::env(format!(
                "{} (from {source}) is not a ZooKeeper installation: expected lib/zookeeper-*.jar (3.5+ tarball), \
                 zookeeper-*.jar at the top (3.4 tarball) or /usr/share/java/zookeeper.jar (Debian package); \
                 point it at an unpacked apache-zookeeper-X-bin directory, or install Debian's package: {INSTALL_ZOOKEEPER}",
                home.display()
            ))
        })?;
        if let Some(want) = want_version.filter(|w| *w != dist.version) {
            return Err(Error::env(format!(
                "ZooKeeper {want} was asked for, but {} holds {}; drop --zk-home to pick {want} among the known \
                 installations (`zkdev dist list`)",
                dist.zk_home.display(),
                dist.version
            )));
        }
        return Ok(dist);
    }
    let mut all = known(zkdev_home, &java);
    if let Some(want) = want_version {
        let listed = describe_known(&all);
        return all
            .into_iter()
            .find(|k| k.dist.version == want)
            .map(|k| k.dist)
            .ok_or_else(|| {
                Error::env(format!(
                "ZooKeeper {want} is not installed here (known: {listed}); `zkdev dist install {want}` downloads it, \
                 `zkdev dist add DIR` registers an unpacked one"
            ))
            });
    }
    // Debian's package when there is one, else the newest cached or added installation.
    if let Some(i) = all.iter().position(|k| k.source == Source::Debian) {
        return Ok(all.swap_remove(i).dist);
    }
    all.sort_by_key(|k| k.dist.version_tuple());
    all.pop().map(|k| k.dist).ok_or_else(|| {
        Error::env(format!(
            "no ZooKeeper installation found (looked at --zk-home, the profile, ZOOKEEPER_HOME, \
             {DEBIAN_JAVA_DIR}/zookeeper.jar and zkdev's cache); install it with: {INSTALL_ZOOKEEPER}  \
             (or `zkdev dist install VERSION`, or pass --zk-home DIR of an unpacked apache-zookeeper-X-bin tarball)"
        ))
    })
}

/// Where a known installation comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// Debian's zookeeper package.
    Debian,
    /// Downloaded by `zkdev dist install` into `$ZKDEV_HOME/dists/<version>`.
    Cache,
    /// Registered with `zkdev dist add DIR`.
    Added,
}

#[derive(Debug, Clone)]
pub struct Known {
    pub source: Source,
    pub dist: Dist,
}

pub fn dists_dir(zkdev_home: &Path) -> PathBuf {
    zkdev_home.join("dists")
}

pub fn added_file(zkdev_home: &Path) -> PathBuf {
    dists_dir(zkdev_home).join("added.json")
}

pub fn added_paths(zkdev_home: &Path) -> Vec<PathBuf> {
    std::fs::read_to_string(added_file(zkdev_home))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default()
}

/// Every installation zkdev knows: the cache first, then added ones, then Debian's.
pub fn known(zkdev_home: &Path, java: &Path) -> Vec<Known> {
    let mut out = Vec::new();
    let mut cached: Vec<PathBuf> = std::fs::read_dir(dists_dir(zkdev_home))
        .map(|rd| rd.flatten().map(|e| e.path()).filter(|p| p.is_dir()).collect())
        .unwrap_or_default();
    cached.retain(|p| !file_name(p).starts_with('.'));
    cached.sort();
    for dir in cached {
        if let Some(dist) = from_home(&dir, java.to_path_buf()) {
            out.push(Known {
                source: Source::Cache,
                dist,
            });
        }
    }
    for dir in added_paths(zkdev_home) {
        if let Some(dist) = from_home(&dir, java.to_path_buf()) {
            out.push(Known {
                source: Source::Added,
                dist,
            });
        }
    }
    if let Some(dist) = debian(Path::new(DEBIAN_JAVA_DIR), java.to_path_buf()) {
        out.push(Known {
            source: Source::Debian,
            dist,
        });
    }
    out
}

fn describe_known(k: &[Known]) -> String {
    if k.is_empty() {
        return "none".into();
    }
    k.iter()
        .map(|k| format!("{} ({:?})", k.dist.version, k.source).to_lowercase())
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn find_java(configured: Option<&str>) -> Result<PathBuf> {
    if let Some(j) = configured {
        let p = PathBuf::from(j);
        return if p.is_file() {
            Ok(p)
        } else {
            which::which(j).map_err(|_| {
                Error::env(format!(
                    "java `{j}` (profile dist.java) not found; fix the path or install java: {INSTALL_JAVA}"
                ))
            })
        };
    }
    if let Some(home) = std::env::var_os("JAVA_HOME").filter(|s| !s.is_empty()) {
        let p = PathBuf::from(home).join("bin/java");
        if p.is_file() {
            return Ok(p);
        }
    }
    which::which("java").map_err(|_| {
        Error::env(format!(
            "java not found (looked at $JAVA_HOME/bin/java and PATH); ZooKeeper needs Java 8 or newer: {INSTALL_JAVA}"
        ))
    })
}

fn from_home(home: &Path, java: PathBuf) -> Option<Dist> {
    // Debian's package: /usr/share/zookeeper has bin/ only; the jars live in /usr/share/java.
    if home.join("bin/zkServer.sh").is_file() && !home.join("lib").is_dir() && !has_top_jar(home) {
        return debian(Path::new(DEBIAN_JAVA_DIR), java);
    }
    let lib = home.join("lib");
    if let Some((jar, version)) = find_zk_jar(&lib) {
        let mut classpath = vec![jar];
        classpath.extend(jars_in(&lib).into_iter().filter(|j| !is_zk_main_jar(j)));
        let log_config = log_config_for(&classpath, &version);
        let admin = classpath.iter().any(|j| file_name(j).contains("servlet"));
        return Some(Dist {
            java,
            zk_home: home.to_path_buf(),
            version,
            layout: Layout::Tarball,
            log_config,
            classpath,
            admin_server_available: admin,
        });
    }
    if let Some((jar, version)) = find_zk_jar(home) {
        let mut classpath = vec![jar];
        classpath.extend(jars_in(&lib));
        let admin = classpath.iter().any(|j| file_name(j).contains("servlet"));
        return Some(Dist {
            java,
            zk_home: home.to_path_buf(),
            version,
            layout: Layout::LegacyTarball,
            log_config: LogConfig::Log4j,
            classpath,
            admin_server_available: admin,
        });
    }
    None
}

/// Which logging configuration the jars on the classpath read: the SLF4J binding decides (upstream 3.8+ ships
/// logback, earlier releases log4j 1.2); without a binding, what the version ships.
fn log_config_for(classpath: &[PathBuf], version: &str) -> LogConfig {
    let has = |prefix: &str| classpath.iter().any(|j| file_name(j).starts_with(prefix));
    if has("logback-classic") {
        LogConfig::Logback
    } else if has("slf4j-log4j12") || has("slf4j-reload4j") || has("log4j-1") || has("reload4j") {
        LogConfig::Log4j
    } else if parse_version(version) >= (3, 8, 0) {
        LogConfig::Logback
    } else {
        LogConfig::Log4j
    }
}

fn debian(java_dir: &Path, java: PathBuf) -> Option<Dist> {
    let main = java_dir.join("zookeeper.jar");
    if !main.is_file() {
        return None;
    }
    // The versioned file next to zookeeper.jar names the version (zookeeper-3.8.0.jar).
    let version = find_zk_jar(java_dir)
        .map(|(_, v)| v)
        .unwrap_or_else(|| "unknown".into());
    let mut classpath = vec![main, java_dir.join("zookeeper-jute.jar")];
    // The manifest's Class-Path names no slf4j binding: add log4j 1.2's, which Debian's 3.8.0 uses.
    for extra in ["slf4j-log4j12.jar", "log4j-1.2.jar"] {
        let p = java_dir.join(extra);
        if p.is_file() {
            classpath.push(p);
        }
    }
    // Nor the Netty jars that NettyServerCnxnFactory (and so TLS) needs beyond the four it names; without them
    // every connection fails with ClassNotFoundException: io.netty.handler.codec.ByteToMessageDecoder.
    for extra in NETTY_EXTRA_JARS {
        let p = java_dir.join(extra);
        if p.is_file() {
            classpath.push(p);
        }
    }
    let servlet = java_dir.join("servlet-api.jar");
    let admin = servlet.is_file();
    if admin {
        classpath.push(servlet);
    }
    Some(Dist {
        java,
        zk_home: PathBuf::from("/usr/share/zookeeper"),
        version,
        layout: Layout::Debian,
        log_config: LogConfig::Log4j,
        classpath,
        admin_server_available: admin,
    })
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn is_zk_main_jar(p: &Path) -> bool {
    zk_jar_version(&file_name(p)).is_some()
}

/// `zookeeper-3.8.0.jar` -> `3.8.0`; not the jute, recipes, contrib, tests or sources jars.
fn zk_jar_version(name: &str) -> Option<String> {
    let v = name.strip_prefix("zookeeper-")?.strip_suffix(".jar")?;
    let mut parts = v.split('.');
    let ok = v.split('.').count() == 3 && parts.all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()));
    ok.then(|| v.to_string())
}

fn find_zk_jar(dir: &Path) -> Option<(PathBuf, String)> {
    jars_in(dir)
        .into_iter()
        .find_map(|j| zk_jar_version(&file_name(&j)).map(|v| (j, v)))
}

fn has_top_jar(dir: &Path) -> bool {
    find_zk_jar(dir).is_some()
}

fn jars_in(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "jar"))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_java_major_version_comes_from_the_release_file() {
        assert_eq!(java_major_of("IMPLEMENTOR=\"x\"\nJAVA_VERSION=\"17.0.15\"\n"), Some(17));
        assert_eq!(java_major_of("JAVA_VERSION=\"1.8.0_392\"\n"), Some(8));
        assert_eq!(java_major_of("JAVA_VERSION=\"21\"\n"), Some(21));
        assert_eq!(java_major_of("nothing here\n"), None);
        // This machine's java, where there is one: a version, and 9 or newer for --net.
        if let Ok(java) = which::which("java") {
            assert!(java_major(&java).is_none_or(|m| m >= 8));
        }
    }

    #[test]
    fn versions_parse() {
        assert_eq!(parse_version("3.8.0"), (3, 8, 0));
        assert_eq!(parse_version("3.4.14"), (3, 4, 14));
        assert_eq!(parse_version("3.9"), (3, 9, 0));
    }

    #[test]
    fn only_the_main_jar_names_a_version() {
        assert_eq!(zk_jar_version("zookeeper-3.8.0.jar").as_deref(), Some("3.8.0"));
        assert_eq!(zk_jar_version("zookeeper-jute-3.8.0.jar"), None);
        assert_eq!(zk_jar_version("zookeeper-3.8.0-tests.jar"), None);
        assert_eq!(zk_jar_version("zookeeper.jar"), None);
    }

    fn touch(p: &Path) {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, b"").unwrap();
    }

    #[test]
    fn tarball_layouts_are_recognised() {
        let d = tempfile::tempdir().unwrap();
        let bin = d.path().join("apache-zookeeper-3.9.5-bin");
        touch(&bin.join("lib/zookeeper-3.9.5.jar"));
        touch(&bin.join("lib/zookeeper-jute-3.9.5.jar"));
        touch(&bin.join("lib/logback-classic-1.2.13.jar"));
        let dist = from_home(&bin, "/usr/bin/java".into()).unwrap();
        assert_eq!(dist.layout, Layout::Tarball);
        assert_eq!(dist.version, "3.9.5");
        assert_eq!(dist.log_config, LogConfig::Logback);
        assert!(dist.classpath[0].ends_with("lib/zookeeper-3.9.5.jar"));
        assert_eq!(dist.classpath.len(), 3);

        let old = d.path().join("zookeeper-3.4.14");
        touch(&old.join("zookeeper-3.4.14.jar"));
        touch(&old.join("lib/log4j-1.2.17.jar"));
        let dist = from_home(&old, "/usr/bin/java".into()).unwrap();
        assert_eq!(dist.layout, Layout::LegacyTarball);
        assert_eq!(dist.version, "3.4.14");
        assert_eq!(dist.log_config, LogConfig::Log4j);
        assert!(!dist.admin_server_available);

        assert!(from_home(d.path(), "/usr/bin/java".into()).is_none());
    }
}
