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
    ("default", include_str!("../../profiles/default.toml")),
    ("fast", include_str!("../../profiles/fast.toml")),
    ("chaos", include_str!("../../profiles/chaos.toml")),
];

/// A profile as written in a file: every field optional.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// One line shown by `zkdev profiles`.
    pub description: Option<String>,
    /// Name of a built-in profile this one starts from.
    pub extends: Option<String>,
    /// Let a setting open a listener beyond 127.0.0.1 (JMX, a debugger, `quorumListenOnAllIPs`...); zkdev
    /// refuses such settings without it, and warns at every `up` with it.
    pub allow_non_loopback: Option<bool>,
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
    #[serde(default)]
    pub addresses: AddressesSection,
    #[serde(default)]
    pub tls: TlsSection,
    #[serde(default)]
    pub network: NetworkSection,
    #[serde(default)]
    pub faults: FaultsSection,
}

/// Where the nodes listen: all on 127.0.0.1 with ports per node, or each on its own loopback address.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AddressMode {
    /// Every node on 127.0.0.1, ports per node (client 2180+id, quorum 2880+id, ...).
    #[default]
    Shared,
    /// Node i on its own address, base + i (127.0.0.11, 127.0.0.12, ... by default), every node on the
    /// standard ports 2181, 2888, 3888, 8080 (and 7000 for metrics), the way ccm runs Cassandra nodes.
    Loopback,
}

/// The address base `--addresses loopback` uses unless told otherwise: node i is 127.0.0.(10+i).
pub const DEFAULT_ADDRESS_BASE: std::net::Ipv4Addr = std::net::Ipv4Addr::new(127, 0, 0, 10);

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AddressesSection {
    /// `shared` (default: every node on 127.0.0.1) or `loopback` (node i on base + i, standard ports).
    pub mode: Option<AddressMode>,
    /// With `loopback`: node i listens on this address + i (default 127.0.0.10, so 127.0.0.11 for node 1).
    /// Two such clusters side by side need different bases.
    pub base: Option<std::net::Ipv4Addr>,
}

/// TLS for clients (and optionally between the nodes), with a throw-away CA zkdev makes per cluster.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TlsSection {
    /// Every node also serves TLS on its own secure client port (`secure_client_base` + id + offset), with
    /// Netty and a certificate for 127.0.0.1 / localhost from the cluster's own CA (`up --tls` sets it).
    pub enabled: Option<bool>,
    /// The quorum and election links between the nodes use TLS too (`sslQuorum`); needs `enabled`.
    pub quorum: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NetworkSection {
    /// Route every peer link (each direction, quorum and election port apart) and every client port through
    /// a proxy in the supervisor, so `partition`, `isolate` and `link` can break them (`up --net`).
    pub proxied: Option<bool>,
    /// First port of the cluster's block of proxy ports [default: 20000 + port offset].
    pub port_base: Option<u16>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FaultsSection {
    /// Start every node's JVM with zkdev's disk-fault library preloaded (`LD_PRELOAD`), so `zkdev disk` can
    /// slow its fsyncs or fail its writes under the node's data directory (`up --disk-faults`). Off, the
    /// JVMs run exactly as ZooKeeper ships them.
    pub disk: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SupervisorSection {
    /// How often the supervisor asks every node what it is doing while anything happens, milliseconds
    /// (default 100): the resolution of the journal's times (elections, leaderless windows).
    pub probe_interval_ms: Option<NonZeroU32>,
    /// How often once the ensemble has been quiet for 5 s (default 300): idle cost. Any request, event or
    /// reaped exit goes back to `probe_interval_ms` at once.
    pub idle_probe_interval_ms: Option<NonZeroU32>,
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
    /// Dynamic reconfiguration (`up --reconfig`): `reconfigEnabled`, a super-user digest for zkdev's own
    /// client, and `zkdev add`, `remove`, `promote`, `demote` change the membership while it runs.
    pub reconfig: Option<bool>,
    /// Four-letter words to allow besides the ones zkdev asks itself (`4lw.commands.whitelist`), e.g.
    /// `["wchs", "dump"]`, or `["*"]` for all of them.
    pub four_letter_words: Option<Vec<FourLetterWord>>,
    /// Any other zoo.cfg key, written verbatim (e.g. `reconfigEnabled = "true"`). A value may name per-node
    /// values: `{id}` becomes the node's id and `{port:BASE}` the port BASE + id + offset (a port zkdev then
    /// checks before start and shows in `status`), e.g. `"myPlugin.port" = "{port:9100}"`.
    #[serde(default)]
    pub extra: BTreeMap<CfgKey, CfgValue>,
}

/// One four-letter word (`wchs`) or `*`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct FourLetterWord(String);

impl FourLetterWord {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for FourLetterWord {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let w = String::deserialize(d)?;
        if w == "*" || (w.len() == 4 && w.chars().all(|c| c.is_ascii_lowercase())) {
            Ok(FourLetterWord(w))
        } else {
            Err(serde::de::Error::custom(format!(
                "four_letter_words: `{}` is not a four-letter word (four lower-case letters such as `wchs`, or `*`)",
                w.escape_debug()
            )))
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct JvmSection {
    /// `-Xmx`, megabytes.
    pub heap_max_mb: Option<NonZeroU32>,
    /// `-Xms`, megabytes.
    pub heap_min_mb: Option<NonZeroU32>,
    /// Further JVM flags, passed as given.
    pub flags: Option<Vec<JvmArg>>,
    /// Extra system properties (`-Dkey=value`), merged key by key.
    #[serde(default)]
    pub properties: BTreeMap<PropKey, JvmArg>,
    /// Keep an application class-data-sharing archive per installation and JVM flags, recorded the first
    /// time a node stops gracefully and used by every later start (faster JVM start-up, less memory).
    pub class_data_sharing: Option<bool>,
    /// Jars (or directories) added to the end of the installation's classpath, e.g. an auth provider.
    pub classpath_extra: Option<Vec<JvmArg>>,
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
    /// Node i's TLS client port (`[tls] enabled`) is secure_client_base + i + offset.
    pub secure_client_base: Option<u16>,
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
            allow_non_loopback: self.allow_non_loopback.or(base.allow_non_loopback),
            // Keep climbing: `base` may itself extend another profile (fast extends default).
            extends: base.extends,
            supervisor: SupervisorSection {
                probe_interval_ms: self.supervisor.probe_interval_ms.or(base.supervisor.probe_interval_ms),
                idle_probe_interval_ms: self
                    .supervisor
                    .idle_probe_interval_ms
                    .or(base.supervisor.idle_probe_interval_ms),
            },
            addresses: AddressesSection {
                mode: self.addresses.mode.or(base.addresses.mode),
                base: self.addresses.base.or(base.addresses.base),
            },
            network: NetworkSection {
                proxied: self.network.proxied.or(base.network.proxied),
                port_base: self.network.port_base.or(base.network.port_base),
            },
            faults: FaultsSection {
                disk: self.faults.disk.or(base.faults.disk),
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
                reconfig: self.zookeeper.reconfig.or(base.zookeeper.reconfig),
                four_letter_words: self.zookeeper.four_letter_words.or(base.zookeeper.four_letter_words),
                extra,
            },
            jvm: JvmSection {
                heap_max_mb: self.jvm.heap_max_mb.or(base.jvm.heap_max_mb),
                heap_min_mb: self.jvm.heap_min_mb.or(base.jvm.heap_min_mb),
                flags: self.jvm.flags.or(base.jvm.flags),
                properties,
                class_data_sharing: self.jvm.class_data_sharing.or(base.jvm.class_data_sharing),
                classpath_extra: self.jvm.classpath_extra.or(base.jvm.classpath_extra),
            },
            ports: PortsSection {
                client_base: self.ports.client_base.or(base.ports.client_base),
                quorum_base: self.ports.quorum_base.or(base.ports.quorum_base),
                election_base: self.ports.election_base.or(base.ports.election_base),
                admin_base: self.ports.admin_base.or(base.ports.admin_base),
                metrics_base: self.ports.metrics_base.or(base.ports.metrics_base),
                secure_client_base: self.ports.secure_client_base.or(base.ports.secure_client_base),
                offset: self.ports.offset.or(base.ports.offset),
            },
            dist: DistSection {
                zk_home: self.dist.zk_home.or(base.dist.zk_home),
                version: self.dist.version.or(base.dist.version),
                java: self.dist.java.or(base.dist.java),
                mirror: self.dist.mirror.or(base.dist.mirror),
            },
            tls: TlsSection {
                enabled: self.tls.enabled.or(base.tls.enabled),
                quorum: self.tls.quorum.or(base.tls.quorum),
            },
        }
    }
}

// ---- Text that ends up in zoo.cfg or on the JVM's command line, checked as the profile is read, so that a
// bad key or value is reported with its line (the `toml` crate adds the span of what failed to deserialize).

/// A `[zookeeper.extra]` key. zoo.cfg is a Java properties file: a key is letters, digits, `.`, `_` and `-`
/// (a newline, a space, `=`, `:` or `\` would make ZooKeeper read another key than the one written), and not
/// one zkdev writes itself.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct CfgKey(String);

/// A `[zookeeper.extra]` value: a string without control characters, a number or a boolean.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(transparent)]
pub struct CfgValue(toml::Value);

/// A `[jvm.properties]` key: no control characters, whitespace or `=` (it becomes `-Dkey=value`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct PropKey(String);

/// One JVM argument (a `[jvm] flags` entry or a `[jvm.properties]` value): no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct JvmArg(String);

impl CfgKey {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl CfgValue {
    /// As zoo.cfg gets it.
    pub fn text(&self) -> String {
        match &self.0 {
            toml::Value::String(s) => s.clone(),
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Float(f) => f.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            other => other.to_string(),
        }
    }
}

impl PropKey {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl JvmArg {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for CfgKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let key = String::deserialize(d)?;
        check_cfg_key(&key).map_err(serde::de::Error::custom)?;
        Ok(CfgKey(key))
    }
}

impl<'de> Deserialize<'de> for CfgValue {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = toml::Value::deserialize(d)?;
        match &value {
            toml::Value::String(s) => check_cfg_value(s).map_err(serde::de::Error::custom)?,
            toml::Value::Integer(_) | toml::Value::Float(_) | toml::Value::Boolean(_) => {}
            other => {
                return Err(serde::de::Error::custom(format!(
                    "a [zookeeper.extra] value must be a string, number or boolean, not {}",
                    other.type_str()
                )))
            }
        }
        Ok(CfgValue(value))
    }
}

impl<'de> Deserialize<'de> for PropKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let key = String::deserialize(d)?;
        check_prop_key(&key).map_err(serde::de::Error::custom)?;
        Ok(PropKey(key))
    }
}

impl<'de> Deserialize<'de> for JvmArg {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let arg = String::deserialize(d)?;
        if let Some(c) = arg.chars().find(|c| c.is_control()) {
            return Err(serde::de::Error::custom(format!(
                "JVM argument `{}` contains the control character {}; a JVM flag or property value is one line of text",
                arg.escape_debug(),
                char_name(c)
            )));
        }
        Ok(JvmArg(arg))
    }
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
    // The server lines (and their client addresses) come from zkdev: a dynamic file would replace them.
    "dynamicConfigFile",
];

/// The reserved key `key` stands for, compared after trimming and ignoring case (` dataDir` and `DATADIR`
/// are refused along with `dataDir`).
fn reserved(key: &str) -> Option<String> {
    let k = key.trim();
    if let Some(r) = RESERVED_KEYS.iter().find(|r| r.eq_ignore_ascii_case(k)) {
        return Some((*r).to_string());
    }
    let lower = k.to_ascii_lowercase();
    lower
        .starts_with("server.")
        .then(|| format!("server.{}", &k["server.".len()..]))
}

/// Where the profile sets what a reserved key would.
fn reserved_hint(canonical: &str) -> String {
    let field = match canonical {
        "tickTime" => "set `tick_time` under [zookeeper] instead",
        "initLimit" => "set `init_limit` under [zookeeper] instead",
        "syncLimit" => "set `sync_limit` under [zookeeper] instead",
        "4lw.commands.whitelist" => {
            "add words with `four_letter_words = [\"wchs\", \"dump\"]` under [zookeeper] instead (merged with the \
             ones zkdev asks itself)"
        }
        "clientPort" | "clientPortAddress" => {
            "each node's client port is `client_base` + id + offset under [ports], always on 127.0.0.1"
        }
        "admin.serverPort" | "admin.serverAddress" | "admin.enableServer" => {
            "set `admin_server` under [zookeeper] and `admin_base` under [ports] instead"
        }
        "metricsProvider.className" | "metricsProvider.httpPort" | "metricsProvider.httpHost" => {
            "set `metrics = true` under [zookeeper] and `metrics_base` under [ports] instead"
        }
        "dataDir" | "dataLogDir" => "each node keeps its data in its own directory of the cluster",
        "peerType" => "observers come from `zkdev up --observers M`",
        _ => "the server lines come from `zkdev up --nodes N --observers M` and [ports]",
    };
    field.to_string()
}

fn check_cfg_key(key: &str) -> std::result::Result<(), String> {
    let shown = key.escape_debug().to_string();
    if let Some(canonical) = reserved(key) {
        let spelled = if canonical == key {
            String::new()
        } else {
            format!(" (it is `{canonical}` spelled another way)")
        };
        return Err(format!(
            "[zookeeper.extra] key `{shown}`{spelled} is written by zkdev itself; {}",
            reserved_hint(&canonical)
        ));
    }
    if key.is_empty() {
        return Err("[zookeeper.extra] has an empty key".to_string());
    }
    if let Some(c) = key.chars().find(|c| c.is_control()) {
        return Err(format!(
            "[zookeeper.extra] key `{shown}` contains the control character {}: zoo.cfg would get a line break or \
             other control character there, and ZooKeeper would read another key than this one",
            char_name(c)
        ));
    }
    if key.chars().any(char::is_whitespace) {
        return Err(format!(
            "[zookeeper.extra] key `{shown}` contains whitespace: ZooKeeper would read another key than this one \
             (a zoo.cfg key is letters, digits, `.`, `_` and `-`)"
        ));
    }
    if let Some(c) = key
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "[zookeeper.extra] key `{shown}` contains `{c}`: a zoo.cfg key is letters, digits, `.`, `_` and `-` \
             (zoo.cfg is a Java properties file, where `=`, `:`, `\\`, `#` and `!` mean something)"
        ));
    }
    Ok(())
}

fn check_cfg_value(value: &str) -> std::result::Result<(), String> {
    if let Some(c) = value.chars().find(|c| c.is_control()) {
        return Err(format!(
            "[zookeeper.extra] value `{}` contains the control character {}: a zoo.cfg value is one line, and \
             what follows a line break would be read as another key",
            value.escape_debug(),
            char_name(c)
        ));
    }
    // Java properties join a line that ends in an odd number of backslashes to the next one.
    if (value.len() - value.trim_end_matches('\\').len()) % 2 == 1 {
        return Err(format!(
            "[zookeeper.extra] value `{}` ends with `\\`: Java properties would join the next zoo.cfg line to it",
            value.escape_debug()
        ));
    }
    Ok(())
}

fn check_prop_key(key: &str) -> std::result::Result<(), String> {
    let shown = key.escape_debug();
    if key.is_empty() {
        return Err("[jvm.properties] has an empty key".to_string());
    }
    if let Some(c) = key.chars().find(|c| c.is_control()) {
        return Err(format!(
            "[jvm.properties] key `{shown}` contains the control character {}",
            char_name(c)
        ));
    }
    if key.chars().any(char::is_whitespace) || key.contains('=') {
        return Err(format!(
            "[jvm.properties] key `{shown}` contains whitespace or `=`: it becomes `-D{shown}=...`, which the JVM \
             would read as another property"
        ));
    }
    Ok(())
}

/// `U+000A (line feed)` and the like, for messages.
fn char_name(c: char) -> String {
    let name = match c {
        '\n' => " (line feed)",
        '\r' => " (carriage return)",
        '\t' => " (tab)",
        '\0' => " (NUL)",
        _ => "",
    };
    format!("U+{:04X}{name}", u32::from(c))
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

/// Where a profile comes from: a built-in name or a file, which `read` reads (`os::profile::load` passes
/// the file system's; model reads no file).
pub fn resolve(name_or_path: &str, read: &dyn Fn(&Path) -> std::io::Result<String>) -> Result<(String, Profile)> {
    let (origin, profile) = load_one(name_or_path, read)?;
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

fn load_one(name_or_path: &str, read: &dyn Fn(&Path) -> std::io::Result<String>) -> Result<(String, Profile)> {
    if let Some(found) = builtin(name_or_path) {
        return Ok(found);
    }
    let path = Path::new(name_or_path);
    let looks_like_file = name_or_path.contains('/') || name_or_path.ends_with(".toml");
    let source = match read(path) {
        Ok(source) => source,
        // A bare name that is no file here: an unknown profile name.
        Err(e) if !looks_like_file && e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::usage(format!(
                "no profile named `{name_or_path}`; built-in profiles are: {} (or pass a path to a TOML file)",
                builtin_names().join(", ")
            )))
        }
        Err(e) => {
            return Err(Error::usage(format!(
                "cannot read profile file `{}`: {e}; pass a readable TOML file or one of: {}",
                path.display(),
                builtin_names().join(", ")
            )))
        }
    };
    let origin = path.display().to_string();
    let profile = Profile::parse(&source, &origin)?;
    Ok((origin, profile))
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
    /// The profile lets settings listen beyond 127.0.0.1 (`up` warns).
    #[serde(default)]
    pub allow_non_loopback: bool,
    #[serde(default = "default_probe_interval")]
    pub probe_interval_ms: u32,
    #[serde(default = "default_idle_probe_interval")]
    pub idle_probe_interval_ms: u32,
    #[serde(default)]
    pub addresses: AddressMode,
    #[serde(default = "default_address_base")]
    pub address_base: std::net::Ipv4Addr,
    /// Four-letter words the profile allows besides zkdev's own.
    #[serde(default)]
    pub four_letter_words: Vec<String>,
    #[serde(default)]
    pub classpath_extra: Vec<String>,
    /// TLS client ports (and certificates) on every node.
    #[serde(default)]
    pub tls: bool,
    /// TLS between the nodes too (`sslQuorum`).
    #[serde(default)]
    pub tls_quorum: bool,
    #[serde(default = "default_secure_client_base")]
    pub secure_client_base: u16,
    /// Proxied links (`[network] proxied`, `up --net`).
    #[serde(default)]
    pub proxied: bool,
    #[serde(default)]
    pub net_port_base: Option<u16>,
    /// The disk-fault library is preloaded into every node (`[faults] disk`, `up --disk-faults`).
    #[serde(default)]
    pub disk_faults: bool,
    /// Dynamic reconfiguration (`[zookeeper] reconfig`, `up --reconfig`).
    #[serde(default)]
    pub reconfig: bool,
}

fn default_address_base() -> std::net::Ipv4Addr {
    DEFAULT_ADDRESS_BASE
}

/// Node i's TLS client port is 5180 + i (+ offset): 700 or more from every other base, so that test clusters
/// whose offsets differ by less than 700 never share a port.
pub const DEFAULT_SECURE_CLIENT_BASE: u16 = 5180;

fn default_secure_client_base() -> u16 {
    DEFAULT_SECURE_CLIENT_BASE
}

/// The supervisor's default probe interval, milliseconds.
pub const DEFAULT_PROBE_INTERVAL_MS: u32 = 100;

fn default_probe_interval() -> u32 {
    DEFAULT_PROBE_INTERVAL_MS
}

/// The supervisor's probe interval once the ensemble has been quiet, milliseconds.
pub const DEFAULT_IDLE_PROBE_INTERVAL_MS: u32 = 300;

fn default_idle_probe_interval() -> u32 {
    DEFAULT_IDLE_PROBE_INTERVAL_MS
}

fn default_metrics_base() -> u16 {
    7000
}

impl Profile {
    /// Defaults filled in and the profile checked as a whole: values that contradict each other, and
    /// settings that would listen beyond 127.0.0.1 (unless `allow_non_loopback`). `origin` names the profile.
    pub fn settings(&self, origin: &str) -> Result<Settings> {
        let z = &self.zookeeper;
        let get = |v: Option<NonZeroU32>| v.map(NonZeroU32::get);
        let settings = Settings {
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
            extra: z
                .extra
                .iter()
                .map(|(k, v)| (k.as_str().to_string(), v.text()))
                .collect(),
            heap_max_mb: get(self.jvm.heap_max_mb),
            heap_min_mb: get(self.jvm.heap_min_mb),
            jvm_flags: (self.jvm.flags.iter().flatten())
                .map(|f| f.as_str().to_string())
                .collect(),
            jvm_properties: (self.jvm.properties.iter())
                .map(|(k, v)| (k.as_str().to_string(), v.as_str().to_string()))
                .collect(),
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
            idle_probe_interval_ms: get(self.supervisor.idle_probe_interval_ms)
                .unwrap_or(DEFAULT_IDLE_PROBE_INTERVAL_MS)
                .max(get(self.supervisor.probe_interval_ms).unwrap_or(DEFAULT_PROBE_INTERVAL_MS)),
            allow_non_loopback: self.allow_non_loopback.unwrap_or(false),
            addresses: self.addresses.mode.unwrap_or_default(),
            address_base: self.addresses.base.unwrap_or(DEFAULT_ADDRESS_BASE),
            four_letter_words: (z.four_letter_words.iter().flatten())
                .map(|w| w.as_str().to_string())
                .collect(),
            classpath_extra: (self.jvm.classpath_extra.iter().flatten())
                .map(|j| j.as_str().to_string())
                .collect(),
            tls: self.tls.enabled.unwrap_or(false),
            tls_quorum: self.tls.quorum.unwrap_or(false),
            secure_client_base: self.ports.secure_client_base.unwrap_or(DEFAULT_SECURE_CLIENT_BASE),
            proxied: self.network.proxied.unwrap_or(false),
            net_port_base: self.network.port_base,
            disk_faults: self.faults.disk.unwrap_or(false),
            reconfig: z.reconfig.unwrap_or(false),
        };
        let refuse = |message: String| Error::Profile {
            path: origin.to_string(),
            message,
        };
        settings.check_consistent().map_err(refuse)?;
        let open = settings.non_loopback();
        if !open.is_empty() && !settings.allow_non_loopback {
            return Err(refuse(format!(
                "zkdev keeps every listening port of a node on 127.0.0.1, and this profile would open one beyond it: \
                 {}. Remove that setting, or put `allow_non_loopback = true` at the top of the profile to allow it \
                 (zkdev then warns at every `up`)",
                open.join("; ")
            )));
        }
        Ok(settings)
    }
}

impl Settings {
    /// Values that ZooKeeper or the JVM would refuse only after the JVMs start.
    fn check_consistent(&self) -> std::result::Result<(), String> {
        // ZooKeeper's defaults when unset: 2 x tickTime and 20 x tickTime (QuorumPeerConfig).
        let (min, max) = (
            self.min_session_timeout.unwrap_or(2 * self.tick_time),
            self.max_session_timeout.unwrap_or(20 * self.tick_time),
        );
        if min > max {
            let named = |v: Option<u32>, key: &str, factor: u32| match v {
                Some(ms) => format!("{key} = {ms}"),
                None => format!(
                    "{key} unset ({factor} x tick_time {} = {} ms)",
                    self.tick_time,
                    factor * self.tick_time
                ),
            };
            return Err(format!(
                "[zookeeper] {} is larger than {}: ZooKeeper refuses to start with minSessionTimeout above \
                 maxSessionTimeout; lower min_session_timeout or raise max_session_timeout",
                named(self.min_session_timeout, "min_session_timeout", 2),
                named(self.max_session_timeout, "max_session_timeout", 20)
            ));
        }
        if self.tls_quorum && !self.tls {
            return Err("[tls] quorum = true needs enabled = true too (the nodes' certificates come with it)".into());
        }
        if self.tls {
            if let Some(k) = self.extra.keys().find(|k| {
                ["secureClientPort", "secureClientPortAddress", "serverCnxnFactory"]
                    .iter()
                    .any(|r| r.eq_ignore_ascii_case(k))
                    || k.to_ascii_lowercase().starts_with("ssl.")
                    || k.eq_ignore_ascii_case("sslQuorum")
            }) {
                return Err(format!(
                    "[zookeeper.extra] `{k}` contradicts [tls] enabled = true, which writes the TLS settings itself \
                     (each node's secure client port comes from [ports] secure_client_base); remove it"
                ));
            }
        }
        for (k, v) in &self.extra {
            placeholders(v).map_err(|e| format!("[zookeeper.extra] `{k} = \"{v}\"`: {e}"))?;
        }
        if let Some(j) = self.classpath_extra.iter().find(|j| !j.starts_with('/')) {
            return Err(format!(
                "[jvm] classpath_extra `{j}` is not an absolute path; name the jar by its full path (the nodes run \
                 from their own directories)"
            ));
        }
        if let (Some(min), Some(max)) = (self.heap_min_mb, self.heap_max_mb) {
            if min > max {
                return Err(format!(
                    "[jvm] heap_min_mb = {min} is larger than heap_max_mb = {max}: the JVM refuses an initial heap \
                     above its maximum (-Xms{min}m -Xmx{max}m); lower heap_min_mb or raise heap_max_mb"
                ));
            }
        }
        Ok(())
    }

    /// zoo.cfg's extra keys for node `id`, per-node placeholders replaced (`{id}`, `{port:BASE}`).
    pub fn extra_for(&self, id: u32) -> BTreeMap<String, String> {
        self.extra
            .iter()
            .map(|(k, v)| (k.clone(), expand(v, id, self.offset)))
            .collect()
    }

    /// The ports node `id` opens because of `[zookeeper.extra]`: every `{port:BASE}` (BASE + id + offset), and
    /// a key ending in `Port` whose value is a number. As (key, port); a port beyond 65535 is an error.
    pub fn extra_ports(&self, id: u32) -> std::result::Result<Vec<(String, u16)>, String> {
        let mut out = Vec::new();
        for (k, v) in &self.extra {
            let pieces = placeholders(v)?;
            let mut named = false;
            for p in pieces {
                if let Piece::Port(base) = p {
                    named = true;
                    let port = u32::from(base) + id + u32::from(self.offset);
                    let port = u16::try_from(port).ok().filter(|p| *p >= 1024).ok_or_else(|| {
                        format!(
                            "node {id}'s `{k}` port would be {port} ({{port:{base}}} + id {id} + offset {}): ports \
                             must be 1024 to 65535",
                            self.offset
                        )
                    })?;
                    out.push((k.clone(), port));
                }
            }
            if !named && k.to_ascii_lowercase().ends_with("port") {
                if let Ok(port) = expand(v, id, self.offset).trim().parse::<u16>() {
                    out.push((k.clone(), port));
                }
            }
        }
        Ok(out)
    }

    /// Settings that would make a node listen beyond 127.0.0.1, each named as the profile writes it. zkdev's
    /// own ports are bound to 127.0.0.1 by the zoo.cfg it writes; these are the ways around that.
    pub fn non_loopback(&self) -> Vec<String> {
        let mut found = Vec::new();
        let extra = |name: &str| {
            self.extra
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(k, v)| (k.as_str(), v.trim()))
        };
        if let Some((k, v)) = extra("quorumListenOnAllIPs").filter(|(_, v)| v.eq_ignore_ascii_case("true")) {
            found.push(format!(
                "[zookeeper.extra] `{k} = {v}` makes the quorum and election ports listen on every interface"
            ));
        }
        if let Some((k, _)) = extra("secureClientPort") {
            let bound = extra("secureClientPortAddress").is_some_and(|(_, a)| is_loopback_host(a));
            if !bound {
                found.push(format!(
                    "[zookeeper.extra] `{k}` listens on every interface unless `secureClientPortAddress = \"127.0.0.1\"`"
                ));
            }
        }
        let props = (self.jvm_properties.keys())
            .map(|k| ("[jvm.properties]", k.as_str()))
            .chain(self.jvm_flags.iter().filter_map(|f| {
                let def = f.strip_prefix("-D")?;
                Some(("[jvm] flags", def.split_once('=').map_or(def, |(k, _)| k)))
            }));
        for (section, key) in props {
            if key.starts_with("com.sun.management.jmxremote") || key == "com.sun.management.config.file" {
                found.push(format!(
                    "{section} `{key}` turns on the JVM's JMX agent, whose RMI ports listen on every interface \
                     (even with com.sun.management.jmxremote.host = 127.0.0.1, one of them does)"
                ));
            }
        }
        for flag in &self.jvm_flags {
            if let Some(opts) = flag
                .strip_prefix("-agentlib:jdwp=")
                .or_else(|| flag.strip_prefix("-Xrunjdwp:"))
            {
                if let Some(address) = jdwp_listens_beyond_loopback(opts) {
                    found.push(format!(
                        "[jvm] flags `{flag}`: the debugger listens on {address}, beyond 127.0.0.1 (`address=PORT` \
                         alone keeps it on loopback)"
                    ));
                }
            } else if flag.starts_with("-javaagent:") {
                found.push(format!(
                    "[jvm] flags `{flag}`: a Java agent can open listeners (JMX exporters do, on every interface), \
                     which zkdev cannot check"
                ));
            } else if flag.starts_with('@') || flag.starts_with("-XX:VMOptionsFile=") {
                found.push(format!(
                    "[jvm] flags `{flag}` reads JVM options from a file zkdev cannot check"
                ));
            } else if flag.contains("ManagementServer") {
                found.push(format!(
                    "[jvm] flags `{flag}` starts the JVM's management server, which listens on every interface"
                ));
            }
        }
        found
    }
}

/// A piece of a `[zookeeper.extra]` value.
#[derive(Debug, Clone, PartialEq)]
enum Piece {
    Text(String),
    Id,
    Port(u16),
}

/// Split a value into text and placeholders; `{` not followed by a placeholder stays text, but `{name}` or
/// `{name:...}` with a name zkdev does not know is refused (a typo would otherwise reach zoo.cfg).
fn placeholders(value: &str) -> std::result::Result<Vec<Piece>, String> {
    let mut out = Vec::new();
    let mut rest = value;
    while let Some(at) = rest.find('{') {
        let (before, from) = rest.split_at(at);
        let Some(end) = from.find('}') else { break };
        let inner = &from[1..end];
        let name = inner.split(':').next().unwrap_or("");
        let piece = match (name, inner.split_once(':')) {
            ("id", None) => Piece::Id,
            ("port", Some((_, base))) => Piece::Port(base.trim().parse::<u16>().map_err(|_| {
                format!("`{{{inner}}}`: the port base must be a number up to 65535, as in `{{port:9100}}`")
            })?),
            (n, _) if !n.is_empty() && n.chars().all(|c| c.is_ascii_alphabetic()) => {
                return Err(format!(
                    "`{{{inner}}}` is not a placeholder zkdev knows: use `{{id}}` (the node's id) or `{{port:BASE}}` \
                     (BASE + id + port offset)"
                ))
            }
            _ => Piece::Text(from[..=end].to_string()),
        };
        out.push(Piece::Text(before.to_string()));
        out.push(piece);
        rest = &from[end + 1..];
    }
    out.push(Piece::Text(rest.to_string()));
    Ok(out)
}

/// `value` for node `id` (placeholders checked when the profile was read).
fn expand(value: &str, id: u32, offset: u16) -> String {
    let Ok(pieces) = placeholders(value) else {
        return value.to_string();
    };
    pieces
        .into_iter()
        .map(|p| match p {
            Piece::Text(t) => t,
            Piece::Id => id.to_string(),
            Piece::Port(base) => (u32::from(base) + id + u32::from(offset)).to_string(),
        })
        .collect()
}

fn is_loopback_host(host: &str) -> bool {
    let h = host.trim().trim_start_matches('[').trim_end_matches(']');
    h == "localhost" || h == "::1" || h.parse::<std::net::Ipv4Addr>().is_ok_and(|a| a.is_loopback())
}

/// The address a JDWP agent (`-agentlib:jdwp=OPTIONS`) would listen on when that is beyond loopback. With
/// `server=n` it dials out instead; `address=PORT` binds to localhost (JDK 9 and later), `*:PORT` or a host
/// that is not loopback binds beyond it.
fn jdwp_listens_beyond_loopback(options: &str) -> Option<String> {
    let opt = |name: &str| options.split(',').find_map(|o| o.strip_prefix(name)?.strip_prefix('='));
    if opt("server") != Some("y") {
        return None;
    }
    let address = opt("address")?;
    let (host, _) = address.rsplit_once(':')?;
    (!is_loopback_host(host)).then(|| {
        if host == "*" || host == "0.0.0.0" {
            format!("every interface (address={address})")
        } else {
            format!("address={address}")
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(name_or_path: &str) -> Result<(String, Profile)> {
        resolve(name_or_path, &|p| std::fs::read_to_string(p))
    }

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
        let err = Profile::parse("[zookeeper.extra]\nclientPort = 1\n", "p")
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 2"), "{err}");
        assert!(err.contains("`clientPort` is written by zkdev itself"), "{err}");
    }

    fn parse_err(src: &str) -> String {
        Profile::parse(src, "p.toml").unwrap_err().to_string()
    }

    #[test]
    fn reserved_keys_are_compared_trimmed_and_ignoring_case() {
        for (key, canonical) in [
            ("\" dataDir\"", "dataDir"),
            ("\"dataDir \"", "dataDir"),
            ("CLIENTPORTADDRESS", "clientPortAddress"),
            ("\"Server.7\"", "server.7"),
            ("dynamicConfigFile", "dynamicConfigFile"),
        ] {
            let err = parse_err(&format!("[zookeeper.extra]\n{key} = \"x\"\n"));
            assert!(err.starts_with("profile p.toml: line 2, column 1:"), "{key}: {err}");
            assert!(err.contains("is written by zkdev itself"), "{key}: {err}");
            assert!(err.contains(canonical), "{key}: {err}");
        }
    }

    #[test]
    fn a_newline_in_an_extra_key_or_value_is_refused_with_its_line() {
        let err = parse_err("description = \"x\"\n[zookeeper.extra]\n\"a\\nclientPortAddress\" = \"0.0.0.0\"\n");
        assert!(err.contains("line 3"), "{err}");
        assert!(
            err.contains("key `a\\nclientPortAddress` contains the control character U+000A (line feed)"),
            "{err}"
        );
        let err = parse_err("[zookeeper.extra]\nfoo = \"1\\nclientPortAddress=0.0.0.0\"\n");
        assert!(err.contains("line 2"), "{err}");
        assert!(err.contains("contains the control character U+000A"), "{err}");
        let err = parse_err("[zookeeper.extra]\nfoo = \"x\\u0000\"\n");
        assert!(err.contains("U+0000 (NUL)"), "{err}");
    }

    #[test]
    fn extra_keys_are_plain_properties_keys() {
        for key in [
            "\"a b\"",
            "\"a\\tb\"",
            "\"a=b\"",
            "\"a:b\"",
            "\"a\\\\u0041\"",
            "\"#x\"",
            "\"\"",
        ] {
            let err = parse_err(&format!("[zookeeper.extra]\n{key} = 1\n"));
            assert!(err.contains("line 2"), "{key}: {err}");
            assert!(err.contains("[zookeeper.extra]"), "{key}: {err}");
        }
        let p = Profile::parse(
            "[zookeeper.extra]\n\"4lw.x_y-z\" = 1\nreconfigEnabled = true\nf = 1.5\n",
            "p",
        )
        .unwrap();
        let s = p.settings("p").unwrap();
        assert_eq!(s.extra["4lw.x_y-z"], "1");
        assert_eq!(s.extra["reconfigEnabled"], "true");
        assert_eq!(s.extra["f"], "1.5");
    }

    #[test]
    fn a_value_ending_in_a_backslash_is_refused() {
        let err = parse_err("[zookeeper.extra]\nfoo = 'x\\'\n");
        assert!(err.contains("ends with `\\`"), "{err}");
        Profile::parse("[zookeeper.extra]\nfoo = 'x\\\\'\n", "p").unwrap();
    }

    #[test]
    fn jvm_properties_and_flags_get_the_same_character_checks() {
        let err = parse_err("[jvm.properties]\n\"a b\" = \"1\"\n");
        assert!(
            err.contains("line 2") && err.contains("[jvm.properties] key `a b`"),
            "{err}"
        );
        let err = parse_err("[jvm.properties]\n\"a\\n\" = \"1\"\n");
        assert!(err.contains("control character U+000A"), "{err}");
        let err = parse_err("[jvm.properties]\na = \"1\\r\"\n");
        assert!(
            err.contains("line 2") && err.contains("U+000D (carriage return)"),
            "{err}"
        );
        let err = parse_err("[jvm]\nflags = [\n  \"-Xss1m\",\n  \"-Dx=1\\n-Dy=2\",\n]\n");
        // An array element's error carries the array's span.
        assert!(err.contains("line 2"), "{err}");
        assert!(
            err.contains("JVM argument `-Dx=1\\n-Dy=2` contains the control character"),
            "{err}"
        );
    }

    fn settings_err(src: &str) -> String {
        Profile::parse(src, "p.toml")
            .unwrap()
            .settings("p.toml")
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn min_session_timeout_above_max_is_refused() {
        let err = settings_err("[zookeeper]\nmin_session_timeout = 9000\nmax_session_timeout = 4000\n");
        assert!(err.starts_with("profile p.toml: "), "{err}");
        assert!(
            err.contains("min_session_timeout = 9000 is larger than max_session_timeout = 4000"),
            "{err}"
        );
        // Against ZooKeeper's default maximum, 20 x tickTime.
        let err = settings_err("[zookeeper]\ntick_time = 200\nmin_session_timeout = 5000\n");
        assert!(
            err.contains(
                "min_session_timeout = 5000 is larger than max_session_timeout unset (20 x tick_time 200 = 4000 ms)"
            ),
            "{err}"
        );
        let (o, fast) = load("fast").unwrap();
        fast.settings(&o).unwrap();
    }

    #[test]
    fn heap_min_above_max_is_refused() {
        let err = settings_err("[jvm]\nheap_min_mb = 64\nheap_max_mb = 32\n");
        assert!(
            err.contains("heap_min_mb = 64 is larger than heap_max_mb = 32"),
            "{err}"
        );
        assert!(err.starts_with("profile p.toml: "), "{err}");
        // Through a chain: fast's heap_max_mb = 32 against the file's heap_min_mb.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mine.toml");
        std::fs::write(&path, "extends = \"fast\"\n[jvm]\nheap_min_mb = 64\n").unwrap();
        let (o, p) = load(path.to_str().unwrap()).unwrap();
        let err = p.settings(&o).unwrap_err().to_string();
        assert!(
            err.contains("mine.toml: [jvm] heap_min_mb = 64 is larger than heap_max_mb = 32"),
            "{err}"
        );
    }

    #[test]
    fn settings_that_listen_beyond_loopback_are_refused_unless_allowed() {
        for (src, needle) in [
            (
                "[zookeeper.extra]\nquorumListenOnAllIPs = \"true\"\n",
                "`quorumListenOnAllIPs = true`",
            ),
            (
                "[zookeeper.extra]\nquorumlistenonallips = true\n",
                "`quorumlistenonallips = true`",
            ),
            ("[zookeeper.extra]\nsecureClientPort = 2281\n", "`secureClientPort`"),
            (
                "[zookeeper.extra]\nsecureClientPort = 2281\nsecureClientPortAddress = \"0.0.0.0\"\n",
                "`secureClientPort`",
            ),
            (
                "[jvm.properties]\n\"com.sun.management.jmxremote.port\" = \"9999\"\n",
                "[jvm.properties] `com.sun.management.jmxremote.port`",
            ),
            (
                "[jvm]\nflags = [\"-Dcom.sun.management.jmxremote\"]\n",
                "[jvm] flags `com.sun.management.jmxremote`",
            ),
            (
                "[jvm]\nflags = [\"-Dcom.sun.management.jmxremote.rmi.port=1\"]\n",
                "jmxremote.rmi.port",
            ),
            (
                "[jvm]\nflags = [\"-agentlib:jdwp=transport=dt_socket,server=y,suspend=n,address=*:5005\"]\n",
                "the debugger listens on every interface (address=*:5005)",
            ),
            (
                "[jvm]\nflags = [\"-Xrunjdwp:transport=dt_socket,server=y,address=10.0.0.1:5005\"]\n",
                "address=10.0.0.1:5005",
            ),
            (
                "[jvm]\nflags = [\"-javaagent:/opt/jmx_exporter.jar=9404:c.yml\"]\n",
                "a Java agent",
            ),
            ("[jvm]\nflags = [\"@/tmp/opts\"]\n", "from a file"),
        ] {
            let err = settings_err(src);
            assert!(err.contains("beyond it"), "{src}: {err}");
            assert!(err.contains(needle), "{src}: expected {needle:?} in {err}");
            assert!(err.contains("allow_non_loopback = true"), "{err}");
            let allowed = Profile::parse(&format!("allow_non_loopback = true\n{src}"), "p").unwrap();
            let s = allowed.settings("p").unwrap();
            assert!(s.allow_non_loopback);
            assert!(!s.non_loopback().is_empty());
        }
        for fine in [
            "[zookeeper.extra]\nquorumListenOnAllIPs = false\n",
            "[zookeeper.extra]\nsecureClientPort = 2281\nsecureClientPortAddress = \"127.0.0.1\"\n",
            "[jvm]\nflags = [\"-agentlib:jdwp=transport=dt_socket,server=y,suspend=n,address=5005\"]\n",
            "[jvm]\nflags = [\"-agentlib:jdwp=transport=dt_socket,server=y,address=127.0.0.1:5005\"]\n",
            "[jvm]\nflags = [\"-agentlib:jdwp=transport=dt_socket,server=n,address=10.0.0.1:5005\"]\n",
        ] {
            let s = Profile::parse(fine, "p").unwrap().settings("p").unwrap();
            assert!(s.non_loopback().is_empty(), "{fine}");
        }
        // The chain: a child inherits the permission, and can take it back.
        let base = Profile::parse("allow_non_loopback = true\n", "b").unwrap();
        let child = Profile::parse("[jvm.properties]\n\"com.sun.management.jmxremote\" = \"\"\n", "c").unwrap();
        child.clone().over(base).settings("c").unwrap();
        let base = Profile::parse("allow_non_loopback = true\n", "b").unwrap();
        let denied = Profile::parse("allow_non_loopback = false\n", "d")
            .unwrap()
            .over(child.over(base));
        assert!(denied.settings("d").is_err());
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
