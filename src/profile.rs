//! Profiles: everything about an ensemble except its node count, as TOML.
//!
//! Every field is optional so that a profile can `extends` another and override only what it names; the
//! chain is resolved into a [`Settings`] with defaults filled in. Unknown keys and bad values are errors
//! that name the file, line and key (the `toml` crate reports the span; we add the file).

use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Built-in profiles, embedded in the binary: (name, TOML source).
pub const BUILTIN: &[(&str, &str)] = &[
    ("default", include_str!("../profiles/default.toml")),
    ("fast", include_str!("../profiles/fast.toml")),
];

/// A profile as written in a file: every field optional.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// One line shown by `zkdev profiles`.
    pub description: Option<String>,
    /// Name of a built-in profile this one starts from.
    pub extends: Option<String>,
    #[serde(default)]
    pub zookeeper: ZkSection,
    #[serde(default)]
    pub jvm: JvmSection,
    #[serde(default)]
    pub ports: PortsSection,
    #[serde(default)]
    pub dist: DistSection,
    #[serde(default)]
    pub supervisor: SupervisorSection,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SupervisorSection {
    /// How often the supervisor asks every node what it is doing, milliseconds (default 100): the
    /// resolution of the journal's times (elections, leaderless windows).
    pub probe_interval_ms: Option<NonZeroU32>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ZkSection {
    /// zoo.cfg `tickTime`, milliseconds.
    pub tick_time: Option<NonZeroU32>,
    /// zoo.cfg `initLimit`, ticks.
    pub init_limit: Option<NonZeroU32>,
    /// zoo.cfg `syncLimit`, ticks.
    pub sync_limit: Option<NonZeroU32>,
    /// zoo.cfg `minSessionTimeout`, milliseconds (ZooKeeper's default: 2 x tickTime).
    pub min_session_timeout: Option<NonZeroU32>,
    /// zoo.cfg `maxSessionTimeout`, milliseconds (ZooKeeper's default: 20 x tickTime).
    pub max_session_timeout: Option<NonZeroU32>,
    /// zoo.cfg `preAllocSize`, kilobytes.
    pub pre_alloc_size: Option<NonZeroU32>,
    /// zoo.cfg `snapCount`.
    pub snap_count: Option<NonZeroU32>,
    /// zoo.cfg `forceSync`; `false` trades durability for speed.
    pub force_sync: Option<bool>,
    /// Start the AdminServer (HTTP, loopback only) on each node's admin port.
    pub admin_server: Option<bool>,
    /// Serve Prometheus metrics (3.8+: on loopback) on each node's metrics port; needs the provider jar.
    pub metrics: Option<bool>,
    /// Any other zoo.cfg key, written verbatim (e.g. `reconfigEnabled = "true"`).
    #[serde(default)]
    pub extra: BTreeMap<String, toml::Value>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct JvmSection {
    /// `-Xmx`, megabytes.
    pub heap_max_mb: Option<NonZeroU32>,
    /// `-Xms`, megabytes.
    pub heap_min_mb: Option<NonZeroU32>,
    /// Further JVM flags, passed as given.
    pub flags: Option<Vec<String>>,
    /// Extra system properties (`-Dkey=value`), merged key by key.
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
    /// Keep an application class-data-sharing archive per installation and JVM flags, recorded the first
    /// time a node stops gracefully and used by every later start (faster JVM start-up, less memory).
    pub class_data_sharing: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PortsSection {
    /// Node i's client port is client_base + i + offset.
    pub client_base: Option<u16>,
    pub quorum_base: Option<u16>,
    pub election_base: Option<u16>,
    pub admin_base: Option<u16>,
    pub metrics_base: Option<u16>,
    /// Added to every port; lets two clusters run side by side.
    pub offset: Option<u16>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DistSection {
    /// A ZooKeeper installation directory (an unpacked tarball, or `/usr/share/zookeeper`).
    pub zk_home: Option<String>,
    /// The ZooKeeper version this profile needs; `up` refuses another.
    pub version: Option<String>,
    /// The java binary; default `$JAVA_HOME/bin/java`, then `java` on PATH.
    pub java: Option<String>,
    /// Where `zkdev dist install` downloads from (a mirror of the Apache archive's zookeeper/ directory).
    pub mirror: Option<String>,
}

impl Profile {
    /// Parse one profile's TOML; `origin` names it in errors (a path or `built-in profile NAME`).
    pub fn parse(source: &str, origin: &str) -> Result<Profile> {
        toml::from_str(source).map_err(|e| Error::Profile {
            path: origin.to_string(),
            message: describe_toml_error(source, &e),
        })
    }

    /// `self` over `base`: every field self sets wins; maps merge key by key.
    pub fn over(self, base: Profile) -> Profile {
        let mut extra = base.zookeeper.extra;
        extra.extend(self.zookeeper.extra);
        let mut properties = base.jvm.properties;
        properties.extend(self.jvm.properties);
        Profile {
            description: self.description.or(base.description),
            // Keep climbing: `base` may itself extend another profile (fast extends default).
            extends: base.extends,
            supervisor: SupervisorSection {
                probe_interval_ms: self.supervisor.probe_interval_ms.or(base.supervisor.probe_interval_ms),
            },
            zookeeper: ZkSection {
                tick_time: self.zookeeper.tick_time.or(base.zookeeper.tick_time),
                init_limit: self.zookeeper.init_limit.or(base.zookeeper.init_limit),
                sync_limit: self.zookeeper.sync_limit.or(base.zookeeper.sync_limit),
                min_session_timeout: self
                    .zookeeper
                    .min_session_timeout
                    .or(base.zookeeper.min_session_timeout),
                max_session_timeout: self
                    .zookeeper
                    .max_session_timeout
                    .or(base.zookeeper.max_session_timeout),
                pre_alloc_size: self.zookeeper.pre_alloc_size.or(base.zookeeper.pre_alloc_size),
                snap_count: self.zookeeper.snap_count.or(base.zookeeper.snap_count),
                force_sync: self.zookeeper.force_sync.or(base.zookeeper.force_sync),
                admin_server: self.zookeeper.admin_server.or(base.zookeeper.admin_server),
                metrics: self.zookeeper.metrics.or(base.zookeeper.metrics),
                extra,
            },
            jvm: JvmSection {
                heap_max_mb: self.jvm.heap_max_mb.or(base.jvm.heap_max_mb),
                heap_min_mb: self.jvm.heap_min_mb.or(base.jvm.heap_min_mb),
                flags: self.jvm.flags.or(base.jvm.flags),
                properties,
                class_data_sharing: self.jvm.class_data_sharing.or(base.jvm.class_data_sharing),
            },
            ports: PortsSection {
                client_base: self.ports.client_base.or(base.ports.client_base),
                quorum_base: self.ports.quorum_base.or(base.ports.quorum_base),
                election_base: self.ports.election_base.or(base.ports.election_base),
                admin_base: self.ports.admin_base.or(base.ports.admin_base),
                metrics_base: self.ports.metrics_base.or(base.ports.metrics_base),
                offset: self.ports.offset.or(base.ports.offset),
            },
            dist: DistSection {
                zk_home: self.dist.zk_home.or(base.dist.zk_home),
                version: self.dist.version.or(base.dist.version),
                java: self.dist.java.or(base.dist.java),
                mirror: self.dist.mirror.or(base.dist.mirror),
            },
        }
    }
}

/// Turn a toml error into `line L, column C: message` (the file name is added by the caller).
fn describe_toml_error(source: &str, e: &toml::de::Error) -> String {
    let message = e.message().trim().to_string();
    match e.span() {
        Some(span) => {
            let (line, col) = line_col(source, span.start);
            let text = source.lines().nth(line - 1).unwrap_or("").trim_end();
            format!("line {line}, column {col}: {message}\n  {line} | {text}")
        }
        None => message,
    }
}

fn line_col(source: &str, offset: usize) -> (usize, usize) {
    let before = &source[..offset.min(source.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

/// Where a profile comes from: a built-in name or a file.
pub fn load(name_or_path: &str) -> Result<(String, Profile)> {
    let (origin, profile) = load_one(name_or_path)?;
    let mut chain = vec![origin.clone()];
    let mut resolved = profile;
    while let Some(parent) = resolved.extends.clone() {
        let (parent_origin, parent_profile) = builtin(&parent).ok_or_else(|| Error::Profile {
            path: chain.last().cloned().unwrap_or_default(),
            message: format!(
                "`extends = \"{parent}\"` names no built-in profile; built-in profiles are: {}",
                builtin_names().join(", ")
            ),
        })?;
        if chain.contains(&parent_origin) {
            return Err(Error::Profile {
                path: origin,
                message: format!("`extends` loops: {} -> {parent_origin}", chain.join(" -> ")),
            });
        }
        chain.push(parent_origin);
        resolved = resolved.over(parent_profile);
    }
    Ok((origin, resolved))
}

fn load_one(name_or_path: &str) -> Result<(String, Profile)> {
    if let Some(found) = builtin(name_or_path) {
        return Ok(found);
    }
    let path = Path::new(name_or_path);
    if name_or_path.contains('/') || name_or_path.ends_with(".toml") || path.exists() {
        let source = std::fs::read_to_string(path).map_err(|e| {
            Error::usage(format!(
                "cannot read profile file `{}`: {e}; pass a readable TOML file or one of: {}",
                path.display(),
                builtin_names().join(", ")
            ))
        })?;
        let origin = path.display().to_string();
        let profile = Profile::parse(&source, &origin)?;
        return Ok((origin, profile));
    }
    Err(Error::usage(format!(
        "no profile named `{name_or_path}`; built-in profiles are: {} (or pass a path to a TOML file)",
        builtin_names().join(", ")
    )))
}

fn builtin(name: &str) -> Option<(String, Profile)> {
    BUILTIN.iter().find(|(n, _)| *n == name).map(|(n, src)| {
        let origin = format!("built-in profile `{n}`");
        let profile = Profile::parse(src, &origin).expect("built-in profiles parse (tested)");
        (origin, profile)
    })
}

pub fn builtin_names() -> Vec<&'static str> {
    BUILTIN.iter().map(|(n, _)| *n).collect()
}

/// A profile with every default filled in: what a cluster is built from.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub tick_time: u32,
    pub init_limit: u32,
    pub sync_limit: u32,
    pub min_session_timeout: Option<u32>,
    pub max_session_timeout: Option<u32>,
    pub pre_alloc_size: Option<u32>,
    pub snap_count: Option<u32>,
    pub force_sync: Option<bool>,
    pub admin_server: bool,
    #[serde(default)]
    pub metrics: bool,
    pub extra: BTreeMap<String, String>,
    pub heap_max_mb: Option<u32>,
    pub heap_min_mb: Option<u32>,
    pub jvm_flags: Vec<String>,
    pub jvm_properties: BTreeMap<String, String>,
    #[serde(default)]
    pub class_data_sharing: bool,
    pub client_base: u16,
    pub quorum_base: u16,
    pub election_base: u16,
    pub admin_base: u16,
    #[serde(default = "default_metrics_base")]
    pub metrics_base: u16,
    pub offset: u16,
    pub zk_home: Option<String>,
    pub version: Option<String>,
    pub java: Option<String>,
    #[serde(default = "default_probe_interval")]
    pub probe_interval_ms: u32,
}

/// The supervisor's default probe interval, milliseconds.
pub const DEFAULT_PROBE_INTERVAL_MS: u32 = 100;

fn default_probe_interval() -> u32 {
    DEFAULT_PROBE_INTERVAL_MS
}

fn default_metrics_base() -> u16 {
    7000
}

/// zoo.cfg keys zkdev writes itself; `extra` may not set them (it would silently fight zkdev's own).
pub const RESERVED_KEYS: &[&str] = &[
    "dataDir",
    "dataLogDir",
    "clientPort",
    "clientPortAddress",
    "admin.serverPort",
    "admin.serverAddress",
    "admin.enableServer",
    "4lw.commands.whitelist",
    "peerType",
    "metricsProvider.className",
    "metricsProvider.httpPort",
    "metricsProvider.httpHost",
    "tickTime",
    "initLimit",
    "syncLimit",
];

impl Profile {
    pub fn settings(&self, origin: &str) -> Result<Settings> {
        let z = &self.zookeeper;
        let mut extra = BTreeMap::new();
        for (key, value) in &z.extra {
            if RESERVED_KEYS.contains(&key.as_str()) || key.starts_with("server.") {
                return Err(Error::Profile {
                    path: origin.to_string(),
                    message: format!(
                        "[zookeeper.extra] key `{key}` is written by zkdev itself; set it through the profile's own fields \
                         (tick_time, init_limit, sync_limit, ports) instead"
                    ),
                });
            }
            let text = match value {
                toml::Value::String(s) => s.clone(),
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Float(f) => f.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                other => {
                    return Err(Error::Profile {
                        path: origin.to_string(),
                        message: format!(
                            "[zookeeper.extra] key `{key}` must be a string, number or boolean, not {}",
                            other.type_str()
                        ),
                    })
                }
            };
            if text.contains('\n') {
                return Err(Error::Profile {
                    path: origin.to_string(),
                    message: format!("[zookeeper.extra] key `{key}`: a value may not contain a newline"),
                });
            }
            extra.insert(key.clone(), text);
        }
        let get = |v: Option<NonZeroU32>| v.map(NonZeroU32::get);
        Ok(Settings {
            tick_time: get(z.tick_time).unwrap_or(2000),
            init_limit: get(z.init_limit).unwrap_or(10),
            sync_limit: get(z.sync_limit).unwrap_or(5),
            min_session_timeout: get(z.min_session_timeout),
            max_session_timeout: get(z.max_session_timeout),
            pre_alloc_size: get(z.pre_alloc_size),
            snap_count: get(z.snap_count),
            force_sync: z.force_sync,
            admin_server: z.admin_server.unwrap_or(true),
            metrics: z.metrics.unwrap_or(false),
            extra,
            heap_max_mb: get(self.jvm.heap_max_mb),
            heap_min_mb: get(self.jvm.heap_min_mb),
            jvm_flags: self.jvm.flags.clone().unwrap_or_default(),
            jvm_properties: self.jvm.properties.clone(),
            class_data_sharing: self.jvm.class_data_sharing.unwrap_or(false),
            client_base: self.ports.client_base.unwrap_or(2180),
            quorum_base: self.ports.quorum_base.unwrap_or(2880),
            election_base: self.ports.election_base.unwrap_or(3880),
            admin_base: self.ports.admin_base.unwrap_or(8080),
            metrics_base: self.ports.metrics_base.unwrap_or(7000),
            offset: self.ports.offset.unwrap_or(0),
            zk_home: self.dist.zk_home.clone(),
            version: self.dist.version.clone(),
            java: self.dist.java.clone(),
            probe_interval_ms: get(self.supervisor.probe_interval_ms).unwrap_or(DEFAULT_PROBE_INTERVAL_MS),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_parse_and_resolve() {
        for name in builtin_names() {
            let (origin, p) = load(name).unwrap();
            p.settings(&origin).unwrap();
        }
    }

    #[test]
    fn default_profile_has_the_tutorial_values() {
        let (o, p) = load("default").unwrap();
        let s = p.settings(&o).unwrap();
        assert_eq!((s.tick_time, s.init_limit, s.sync_limit), (2000, 10, 5));
        assert_eq!(s.offset, 0);
    }

    #[test]
    fn fast_profile_sets_session_timeout_explicitly() {
        let (o, p) = load("fast").unwrap();
        let s = p.settings(&o).unwrap();
        assert!(s.tick_time < 2000);
        assert!(s.max_session_timeout.is_some());
        assert!(s.pre_alloc_size.is_some());
    }

    #[test]
    fn unknown_key_names_line_and_key() {
        let src = "[zookeeper]\ntick_time = 200\ntickk = 3\n";
        let err = Profile::parse(src, "my.toml").unwrap_err().to_string();
        assert!(err.starts_with("profile my.toml: line 3, column 1:"), "{err}");
        assert!(err.contains("unknown field `tickk`"), "{err}");
    }

    #[test]
    fn zero_tick_is_rejected_with_its_line() {
        let src = "description = \"x\"\n[zookeeper]\ntick_time = 0\n";
        let err = Profile::parse(src, "p.toml").unwrap_err().to_string();
        assert!(err.contains("line 3"), "{err}");
        assert!(err.contains("nonzero"), "{err}");
    }

    #[test]
    fn wrong_type_is_rejected() {
        let src = "[zookeeper]\ntick_time = \"fast\"\n";
        let err = Profile::parse(src, "p.toml").unwrap_err().to_string();
        assert!(err.contains("line 2"), "{err}");
    }

    #[test]
    fn syntax_error_names_line_and_column() {
        let src = "[zookeeper\ntick_time = 1\n";
        let err = Profile::parse(src, "p.toml").unwrap_err().to_string();
        assert!(err.contains("line 1, column"), "{err}");
    }

    #[test]
    fn extends_overrides_field_by_field_and_merges_maps() {
        let base = Profile::parse(
            "[zookeeper]\ntick_time = 200\nsync_limit = 2\n[zookeeper.extra]\na = \"1\"\n",
            "b",
        )
        .unwrap();
        let child = Profile::parse("[zookeeper]\ntick_time = 300\n[zookeeper.extra]\nb = 2\n", "c").unwrap();
        let s = child.over(base).settings("c").unwrap();
        assert_eq!(s.tick_time, 300);
        assert_eq!(s.sync_limit, 2);
        assert_eq!(s.extra.get("a").map(String::as_str), Some("1"));
        assert_eq!(s.extra.get("b").map(String::as_str), Some("2"));
    }

    #[test]
    fn extra_may_not_override_reserved_keys() {
        let p = Profile::parse("[zookeeper.extra]\nclientPort = 1\n", "p").unwrap();
        let err = p.settings("p").unwrap_err().to_string();
        assert!(err.contains("`clientPort`"), "{err}");
    }

    #[test]
    fn user_file_extends_a_builtin() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mine.toml");
        std::fs::write(&path, "extends = \"fast\"\n[zookeeper]\nsync_limit = 7\n").unwrap();
        let (o, p) = load(path.to_str().unwrap()).unwrap();
        let s = p.settings(&o).unwrap();
        let (fo, fast) = load("fast").unwrap();
        let fast = fast.settings(&fo).unwrap();
        assert_eq!(s.sync_limit, 7);
        assert_eq!(s.tick_time, fast.tick_time);
        // Through fast, down to default: the whole chain applies.
        assert_eq!(s.jvm_properties, fast.jvm_properties);
        assert!(s
            .jvm_properties
            .contains_key("zookeeper.fastleader.maxNotificationInterval"));
        assert_eq!(s.client_base, 2180);
    }

    #[test]
    fn unknown_extends_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mine.toml");
        std::fs::write(&path, "extends = \"quick\"\n").unwrap();
        let err = load(path.to_str().unwrap()).unwrap_err().to_string();
        assert!(err.contains("`extends = \"quick\"`"), "{err}");
        assert!(err.contains("default, fast"), "{err}");
    }
}
