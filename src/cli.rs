//! The command line. Doc comments here are the `--help` text.

use std::path::PathBuf;
use std::time::Duration;

use clap::builder::{EnumValueParser, MapValueParser, TypedValueParser};
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::model::profile::AddressMode;
use crate::model::workload::Kind as WorkloadKind;

const EXIT_CODES: &str = "\
Exit codes:
  0  ok
  1  the operation failed (no quorum in time, a node died while starting, a guard refused)
  2  bad usage or bad input (flags, profile files, cluster names)
  3  environment problem (no java, no ZooKeeper, a port in use, an unwritable home)
  4  a check could not decide (chaos: the history is too large to check within the checker's budget)";

/// Run a real Apache ZooKeeper ensemble on this machine: one command to start it, see it, break it, remove it.
#[derive(Debug, Parser)]
#[command(name = "zkdev", version, after_help = EXIT_CODES, max_term_width = 110)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Cmd,
}

#[derive(Debug, Args)]
pub struct Global {
    /// Where zkdev keeps its clusters [default: $XDG_DATA_HOME/zkdev, i.e. ~/.local/share/zkdev]
    #[arg(long, global = true, env = "ZKDEV_HOME", value_name = "DIR")]
    pub home: Option<PathBuf>,
    /// Which cluster to act on; several can live side by side with different --port-offset
    #[arg(
        short,
        long,
        global = true,
        env = "ZKDEV_CLUSTER",
        default_value = "default",
        value_name = "NAME"
    )]
    pub cluster: String,
    /// Say less: no progress display
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Colour in output meant for people (auto: only on a terminal, never with NO_COLOR set, always with
    /// CLICOLOR_FORCE set)
    #[arg(long, global = true, value_enum, default_value_t = ColorArg::Auto, value_name = "WHEN")]
    pub color: ColorArg,
}

/// `--json`, on the commands that report something (and only there: elsewhere it is refused).
#[derive(Debug, Clone, Copy, Default, Args)]
pub struct JsonArg {
    /// Print machine-readable JSON on stdout instead of text
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct DistArgs {
    #[command(subcommand)]
    pub cmd: DistCmd,
    #[command(flatten)]
    pub out: DistJson,
}

/// `--json` for every `dist` subcommand.
#[derive(Debug, Clone, Copy, Default, Args)]
pub struct DistJson {
    /// Print machine-readable JSON on stdout instead of text
    #[arg(long, global = true)]
    pub json: bool,
}

impl Cmd {
    /// Did the user ask for JSON (only commands that report can be asked)?
    pub fn json(&self) -> bool {
        match self {
            Cmd::Up(a) => a.out.json,
            Cmd::Status(a) => a.out.json,
            Cmd::KillLeader(a) => a.out.json,
            Cmd::Down(a) => a.out.json,
            Cmd::Stop(a) | Cmd::Start(a) | Cmd::Restart(a) | Cmd::Kill(a) | Cmd::Pause(a) | Cmd::Resume(a) => {
                a.out.json
            }
            Cmd::Add(a) => a.out.json,
            Cmd::Remove(a) | Cmd::Promote(a) | Cmd::Demote(a) => a.out.json,
            Cmd::Wait(a) => a.out.json,
            Cmd::Watch(a) => a.out.json,
            Cmd::Env(a) | Cmd::Profiles(a) => a.json,
            Cmd::Smoke(a) => a.out.json,
            Cmd::Verify(a) => a.out.json,
            Cmd::Chaos(a) => a.out.json,
            Cmd::Run(a) => a.out.json,
            Cmd::RollingRestart(a) => a.out.json,
            Cmd::Dist(a) => a.out.json,
            Cmd::Events(a) => a.out.json,
            Cmd::Partition(a) => a.out.json,
            Cmd::Isolate(a) => a.out.json,
            Cmd::Link(a) => a.out.json,
            Cmd::Heal(a) => a.out.json,
            Cmd::Links(a) => a.json,
            Cmd::Trace(a) => a.out.json,
            Cmd::Dashboard(a) => a.out.json,
            Cmd::Explain(e) => e.json(),
            Cmd::Check(a) => a.out.json,
            Cmd::Sessions(a) => a.json,
            Cmd::ExpireSession(a) => a.out.json,
            Cmd::Disk(a) => a.out.json,
            Cmd::Reset(a) => a.out.json,
            Cmd::Logs(_)
            | Cmd::Cli(_)
            | Cmd::Export(_)
            | Cmd::Render(_)
            | Cmd::Completions { .. }
            | Cmd::GenHistory(_)
            | Cmd::Supervise { .. } => false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorArg {
    Auto,
    Always,
    Never,
}

impl From<ColorArg> for anstream::ColorChoice {
    fn from(c: ColorArg) -> Self {
        match c {
            ColorArg::Auto => anstream::ColorChoice::Auto,
            ColorArg::Always => anstream::ColorChoice::Always,
            ColorArg::Never => anstream::ColorChoice::Never,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Start an ensemble (or start a stopped one again) and wait until one leader serves
    #[command(
        after_help = "Examples:\n  zkdev up --nodes 3 --observers 1\n  zkdev up --profile fast --port-offset 10000 -c ci"
    )]
    Up(UpArgs),
    /// Show every node's process, mode, zxid, epoch and ports, from what the servers answer
    Status(StatusArgs),
    /// Kill the leader, wait for a new one with a higher epoch, and show how long it took
    KillLeader(KillLeaderArgs),
    /// Stop every node (SIGTERM, then SIGKILL after a grace period); data is kept unless --purge
    Down(DownArgs),
    /// Stop nodes gracefully (SIGTERM): TARGET is an id, leader, follower, observer or all
    Stop(NodeArgs),
    /// Start stopped or crashed nodes again and wait until they serve
    Start(NodeArgs),
    /// Stop, then start nodes, and wait until they serve again
    Restart(NodeArgs),
    /// SIGKILL nodes, as in a crash
    Kill(NodeArgs),
    /// SIGSTOP nodes: the process hangs with its connections open (a paused leader is noticed only after syncLimit x tickTime)
    Pause(NodeArgs),
    /// SIGCONT paused nodes and wait until they serve again
    Resume(NodeArgs),
    /// Add nodes to a running ensemble (`up --reconfig` clusters): start them, then `reconfig -add`
    #[command(after_help = "Examples:\n  zkdev add\n  zkdev add --count 2\n  zkdev add --observer")]
    Add(AddArgs),
    /// Remove a node from the ensemble with `reconfig -remove` (the leader too), then stop it and drop it
    #[command(after_help = "Examples:\n  zkdev remove 5\n  zkdev remove leader\n  zkdev remove 2 --force")]
    Remove(MemberArgs),
    /// Make an observer a voting participant (`reconfig -add server.N=...:participant`)
    Promote(MemberArgs),
    /// Make a participant an observer (`reconfig -add server.N=...:observer`)
    Demote(MemberArgs),
    /// Cut nodes off from the others (or only from --from) on quorum and election links (--net clusters)
    #[command(
        after_help = "Examples:\n  zkdev partition leader           # the leader against the rest\n  zkdev partition 1 2 --from 3\n  zkdev partition 1 --one-way      # node 1 hears the others, they do not hear it"
    )]
    Partition(PartitionArgs),
    /// Cut one node off from every other node: `isolate leader` is the leader cut off from the majority
    Isolate(IsolateArgs),
    /// Degrade a link between two nodes, or between the clients and a node (`link client ID`)
    #[command(
        after_help = "Examples:\n  zkdev link 1 2 --delay 200ms --jitter 50ms\n  zkdev link leader 2 --stall --port quorum\n  zkdev link client 3 --cut\n  zkdev link 1 3 --loss 10% --bandwidth 64KiB/s --one-way"
    )]
    Link(LinkArgs),
    /// Heal the links between two ends, or every link (no ends, or --all), and wait for one zxid everywhere
    Heal(HealArgs),
    /// Every proxied link and what is done to it
    Links(JsonArg),
    /// The messages the proxied links carry, decoded (ZAB packets, election notifications, client requests
    /// and replies), or the whole story of one write (--write) (--net clusters)
    #[command(
        after_help = "Examples:\n  zkdev trace --write /app/x             # one write through a follower, told message by message\n  zkdev trace --write /app/x --via 3 --json\n  zkdev trace --follow --type PROPOSAL   # every proposal from now on (Ctrl-C ends)\n  zkdev trace --follow --node 2 --path /app --json"
    )]
    Trace(TraceArgs),
    /// Every client session, as the servers report it: creator, connected node, client, timeout, ephemerals
    Sessions(JsonArg),
    /// Make the ensemble end client sessions for real: their ephemeral znodes go, the clients see Expired
    #[command(
        after_help = "Examples:\n  zkdev expire-session 0x100012f4b6c0000\n  zkdev expire-session --client 127.0.0.1:41920\n  zkdev expire-session --all --node 2   # every session connected to node 2"
    )]
    ExpireSession(ExpireSessionArgs),
    /// A clean ensemble without restarting a running JVM: every znode but /zookeeper deleted, every client
    /// session closed, every fault healed (links, disks, paused and stopped nodes)
    #[command(
        after_help = "Examples:\n  zkdev reset\n  zkdev reset --json   # what was deleted, closed and healed, and how long it took"
    )]
    Reset(ResetArgs),
    /// Disk faults on one node (clusters made with --disk-faults or the chaos profile): slow fsync, full, EIO
    #[command(
        after_help = "Examples:\n  zkdev disk leader --slow-fsync 300ms   # every fsync of its data directory waits 300 ms\n  zkdev disk 2 --full                    # writes there fail with ENOSPC\n  zkdev disk 2 --heal                    # then `zkdev start 2` if its JVM exited"
    )]
    Disk(DiskArgs),
    /// Wait until every node serves and exactly one leader exists
    Wait(WaitArgs),
    /// Live view: the status table refreshed in place and a timeline of every transition
    Watch(WatchArgs),
    /// The journal: everything that happened to the cluster (starts, exits, faults, elections), oldest first
    #[command(
        after_help = "Examples:\n  zkdev events                 # the whole journal\n  zkdev events --since 30s --json\n  zkdev events --follow        # and keep printing new events (Ctrl-C ends)"
    )]
    Events(EventsArgs),
    /// Shell exports for clients: eval "$(zkdev env)"
    Env(JsonArg),
    /// Show one node's log, or all of them merged in time order
    Logs(LogsArgs),
    /// Run the installation's own zkCli (ZooKeeperMain) against a node
    Cli(CliArgs),
    /// Write a znode through one node, read it through every node, show that all agree
    Smoke(SmokeArgs),
    /// Write continuously while killing the leader K times (or injecting seeded random faults: --nemesis); check
    /// every acknowledged write survived on every node
    Verify(VerifyArgs),
    /// Run a workload with C real clients while seeded faults are injected; check the history
    /// (linearizability for register) and write it, the verdict and an SVG timeline to a run directory
    #[command(
        after_help = "Examples:\n  zkdev chaos --duration 30s --seed 7\n  zkdev chaos --workload sequential --nemesis kill,pause --clients 3\n  zkdev chaos --duration 60s --out chaos-run --json"
    )]
    Chaos(ChaosArgs),
    /// Run a scenario file: faults, waits and expectations in order, with a JSON report and JUnit XML
    #[command(
        after_help = "Examples:\n  zkdev run scenarios/leader-isolated.toml\n  zkdev run scenarios/kill-leader.toml --junit report.xml"
    )]
    Run(RunArgs),
    /// Restart the nodes one at a time, followers first and the leader last (with --dist: a rolling upgrade)
    RollingRestart(RollingArgs),
    /// ZooKeeper installations: list, add an unpacked one, install (download + verify) a version, remove
    Dist(DistArgs),
    /// The same ensemble for several machines: Kubernetes manifests, a Compose file, or per-host bundles
    #[command(subcommand)]
    Export(ExportCmd),
    /// Show a cluster's files and node commands without starting anything: an existing cluster's own files
    /// (no flags), or what `up` with the given flags would write
    Render(RenderArgs),
    /// List the built-in profiles and what they set
    Profiles(JsonArg),
    /// Print shell completions: zkdev completions bash > /etc/bash_completion.d/zkdev
    Completions {
        #[arg(value_enum, value_name = "SHELL")]
        shell: clap_complete::Shell,
    },
    /// A live web page of the ensemble (nodes, links, timeline, the last election, fault buttons), served by
    /// the supervisor on 127.0.0.1
    #[command(
        after_help = "Examples:\n  zkdev dashboard              # http://127.0.0.1:8900/\n  zkdev dashboard --port 9000 --open"
    )]
    Dashboard(DashboardArgs),
    /// Explain an election, a zxid or a session in words, from the servers' logs and answers and the journal
    #[command(subcommand)]
    Explain(ExplainCmd),
    /// Check a history made elsewhere (zkdev's history.ndjson, Jepsen's EDN operation maps as Knossos's data
    /// files have them, Jepsen's log lines as Porcupine's test data has them) for linearizability against a
    /// register model, or a zk history (`chaos --workload zk`) against ZooKeeper's own model; needs no cluster
    #[command(
        after_help = "Exit codes: 0 linearizable (zk: valid), 1 a violation (the smallest excerpt that still fails is printed), 2 \
                      the file cannot be read (FILE:LINE and what was expected there) or does not fit the model, 4 \
                      too large to decide within the checker's budget.\n\nExamples:\n  zkdev check run/history.ndjson\n  \
                      zkdev check knossos/data/cas-register/bad/bad-analysis.edn --svg bad.svg\n  zkdev check \
                      etcd_002.log --format porcupine --json\n  zkdev check zk-run/history.ndjson --model zk --html zk.html"
    )]
    Check(CheckArgs),
    /// Write a generated register history (zkdev's history.ndjson) on stdout, for the benchmark
    #[command(hide = true)]
    GenHistory(GenHistoryArgs),
    /// Run the cluster's supervisor (started by `up` and other commands; not for people)
    #[command(hide = true)]
    Supervise {
        /// Fork into the background in a session of its own, then run
        #[arg(long)]
        detach: bool,
    },
}

#[derive(Debug, Args)]
pub struct DashboardArgs {
    #[command(flatten)]
    pub out: JsonArg,
    /// The port on 127.0.0.1 to serve the page on
    #[arg(long, default_value_t = 8900)]
    pub port: u16,
    /// Open the page in the desktop's browser (xdg-open)
    #[arg(long)]
    pub open: bool,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("picture").args(["svg", "html"])))]
pub struct CheckArgs {
    #[command(flatten)]
    pub out: JsonArg,
    /// The history to check
    #[arg(value_name = "FILE")]
    pub file: std::path::PathBuf,
    /// cas: Knossos's and Porcupine's compare-and-set register (read, write, cas [old new]); register: zkdev's
    /// versioned register (read VALUE@VERSION, cas on a version); zk: ZooKeeper's own model (a history of
    /// `chaos --workload zk`: sessions, zxids, watches, ephemerals) [default: zk for a zk history, register for
    /// zkdev's other histories, cas for Jepsen's]
    #[arg(long, value_enum, value_name = "MODEL")]
    pub model: Option<ModelArg>,
    /// The file's format [default: told from its content]
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub format: Option<FormatArg>,
    /// The register's initial value: cas: a value (nil when left out); register: VALUE@VERSION or VALUE
    /// (0@0 when left out)
    #[arg(long, value_name = "VALUE", allow_hyphen_values = true)]
    pub initial: Option<String>,
    /// On a violation, draw the excerpt's operations on a time line per process as an SVG
    #[arg(long, value_name = "PATH")]
    pub svg: Option<std::path::PathBuf>,
    /// On a violation, the same picture in a self-contained HTML page with the excerpt's table
    #[arg(long, value_name = "PATH")]
    pub html: Option<std::path::PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ModelArg {
    Cas,
    Register,
    Zk,
}

impl From<ModelArg> for crate::model::check::ModelKind {
    fn from(m: ModelArg) -> Self {
        match m {
            ModelArg::Cas => crate::model::check::ModelKind::Cas,
            ModelArg::Register => crate::model::check::ModelKind::Register,
            ModelArg::Zk => crate::model::check::ModelKind::Zk,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    Zkdev,
    Edn,
    Porcupine,
}

impl From<FormatArg> for crate::model::history_formats::Format {
    fn from(f: FormatArg) -> Self {
        match f {
            FormatArg::Zkdev => crate::model::history_formats::Format::Zkdev,
            FormatArg::Edn => crate::model::history_formats::Format::Edn,
            FormatArg::Porcupine => crate::model::history_formats::Format::Porcupine,
        }
    }
}

#[derive(Debug, Args)]
pub struct GenHistoryArgs {
    /// How many operations
    #[arg(long, default_value_t = 100_000)]
    pub ops: usize,
    /// How many clients
    #[arg(long, default_value_t = 10)]
    pub clients: u32,
    /// Per cent of operations left without an answer
    #[arg(long, default_value_t = 5)]
    pub unknown_percent: u32,
    /// How many registers
    #[arg(long, default_value_t = 1)]
    pub keys: usize,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Change one read's answer so the history is not linearizable (with --zk: one session's read goes back
    /// in time)
    #[arg(long)]
    pub tamper: bool,
    /// A history of the ZooKeeper model (sessions on 20 znodes, reads without sync) instead of the register's
    #[arg(long)]
    pub zk: bool,
}

#[derive(Debug, Subcommand)]
pub enum ExplainCmd {
    /// The last election (or --epoch E): each node's votes, who proposed whom with which (epoch, zxid, myid),
    /// and why the winner won
    Election {
        #[command(flatten)]
        out: JsonArg,
        /// Show only this node's rounds and the votes it heard
        #[arg(long, value_name = "ID")]
        node: Option<u32>,
        /// The election that started this epoch (default: the last one)
        #[arg(long, value_name = "E")]
        epoch: Option<u32>,
    },
    /// A zxid: its epoch and counter, which leader's epoch that was, and where the nodes are now
    Zxid {
        #[command(flatten)]
        out: JsonArg,
        /// 0x and hex (e.g. 0x500000204) or a decimal number (e.g. 21474836996, the same zxid)
        zxid: String,
    },
    /// A session: the node that created it (the id's top byte), its timeout, its ephemeral znodes
    Session {
        #[command(flatten)]
        out: JsonArg,
        /// The session id, e.g. 0x100012a4b5c0000
        id: String,
    },
}

impl ExplainCmd {
    pub fn json(&self) -> bool {
        match self {
            ExplainCmd::Election { out, .. } | ExplainCmd::Zxid { out, .. } | ExplainCmd::Session { out, .. } => {
                out.json
            }
        }
    }
}

#[derive(Debug, Args)]
pub struct EventsArgs {
    #[command(flatten)]
    pub out: JsonArg,
    /// Keep printing new events as they happen (Ctrl-C ends)
    #[arg(short, long)]
    pub follow: bool,
    /// Only events after this sequence number (e.g. 42) or from this long ago (e.g. 30s, 5m, 1h, 250ms)
    #[arg(long, value_name = "SEQ|DURATION")]
    pub since: Option<String>,
}

#[derive(Debug, Args)]
pub struct TraceArgs {
    #[command(flatten)]
    pub out: JsonArg,
    /// Keep printing messages as they cross their links (Ctrl-C ends)
    #[arg(short, long, conflicts_with = "write")]
    pub follow: bool,
    /// Only messages to or from this node
    #[arg(long, value_name = "ID")]
    pub node: Option<u32>,
    /// Only messages about this znode or those below it
    #[arg(long, value_name = "PATH")]
    pub path: Option<String>,
    /// Only this message type (PROPOSAL, ACK, COMMIT, notification, request, reply...) or operation
    /// (setData, create...), any case
    #[arg(long = "type", value_name = "TYPE")]
    pub kind: Option<String>,
    /// Make one write to this znode (setData if it exists, else create) through a follower and print its
    /// whole story: request, REQUEST, PROPOSALs, ACKs, COMMITs, INFORMs, reply
    #[arg(long, value_name = "PATH", conflicts_with_all = ["node", "path", "kind"])]
    pub write: Option<String>,
    /// Send the write to this node instead of the first follower
    #[arg(long, value_name = "ID", requires = "write")]
    pub via: Option<u32>,
    /// What the write sets
    #[arg(long, value_name = "TEXT", default_value = "zkdev trace", requires = "write")]
    pub data: String,
    /// How long the write may take to be answered
    #[arg(long, default_value = "10s", value_name = "DURATION", value_parser = seconds)]
    pub timeout: Duration,
}

#[derive(Debug, Args)]
pub struct UpArgs {
    #[command(flatten)]
    pub out: JsonArg,
    /// Voting participants (ids 1 to N) [default: 3 for a new cluster]
    #[arg(short, long, value_name = "N")]
    pub nodes: Option<u32>,
    /// Observers (ids N+1 to N+M) [default: 0 for a new cluster]
    #[arg(short, long, value_name = "M")]
    pub observers: Option<u32>,
    /// A built-in profile name (see `zkdev profiles`) or a TOML file
    #[arg(short, long, value_name = "NAME|FILE")]
    pub profile: Option<String>,
    /// Added to every port (client 2180+id, quorum 2880+id, election 3880+id, admin 8080+id)
    #[arg(long, value_name = "K")]
    pub port_offset: Option<u16>,
    /// `loopback`: node i listens on its own address (base + i: 127.0.0.11, 127.0.0.12, ...) with the standard
    /// ports 2181/2888/3888/8080 on every node; `shared`: every node on 127.0.0.1, ports per node
    #[arg(long, value_parser = AddressModeArg::parser(), value_name = "MODE")]
    pub addresses: Option<AddressMode>,
    /// With --addresses loopback: node i listens on this address + i [default: 127.0.0.10]; two such
    /// clusters side by side need different bases
    #[arg(long, value_name = "IP")]
    pub address_base: Option<std::net::Ipv4Addr>,
    /// A ZooKeeper installation to use (unpacked tarball); default: ZOOKEEPER_HOME, then Debian's package
    #[arg(long, value_name = "DIR", conflicts_with = "dist")]
    pub zk_home: Option<String>,
    /// The ZooKeeper version to run, among the known installations (`zkdev dist list`)
    #[arg(long, value_name = "VERSION")]
    pub dist: Option<String>,
    /// How long to wait for every node to serve with one leader (a duration: 500ms, 30s, 2m; a bare number is seconds)
    #[arg(long, default_value = "60s", value_name = "DURATION", value_parser = seconds)]
    pub timeout: Duration,
    /// Return as soon as the nodes are started, without waiting for a leader
    #[arg(long)]
    pub no_wait: bool,
    /// On failure leave the started nodes running (to inspect them) instead of stopping them
    #[arg(long)]
    pub keep_on_failure: bool,
    /// Stay attached: show the live view (as `zkdev watch`); Ctrl-C stops the nodes (data kept)
    #[arg(long, conflicts_with = "no_wait")]
    pub foreground: bool,
    /// Every node also serves TLS on its own secure client port, with a throw-away CA (as `[tls] enabled = true`)
    #[arg(long)]
    pub tls: bool,
    /// Proxied links (a new cluster): every peer link and client port goes through the supervisor, so
    /// `partition`, `isolate` and `link` can break them (same as `[network] proxied = true`)
    #[arg(long)]
    pub net: bool,
    /// First port of the client proxies' block (one port per node id) [default: 20000 + port offset]
    #[arg(long, value_name = "P")]
    pub net_port_base: Option<u16>,
    /// Preload zkdev's disk-fault library into every node (a new cluster), so `zkdev disk` can slow fsync or
    /// fail writes on one node (same as `[faults] disk = true`)
    #[arg(long)]
    pub disk_faults: bool,
    /// Dynamic reconfiguration (a new cluster): `reconfigEnabled`, so `zkdev add`, `remove`, `promote` and
    /// `demote` change the membership while it runs (same as `[zookeeper] reconfig = true`)
    #[arg(long)]
    pub reconfig: bool,
    /// A new cluster's ports: `auto` takes the first free port slot (no other `up --slot` of this user
    /// takes it, and every port is checked by binding), N takes slot N (0 to 69); `status --json` and
    /// `env` say which
    #[arg(long, value_name = "auto|N", conflicts_with_all = ["port_offset", "net_port_base", "addresses"])]
    pub slot: Option<crate::model::slot::SlotChoice>,
    /// A new cluster belongs to process PID: when it ends (even killed), the supervisor stops the nodes and
    /// removes the cluster's directory within a few seconds
    #[arg(long, value_name = "PID")]
    pub owner: Option<i32>,
    /// A new cluster's first start as the tutorials do it by hand: the voters one at a time in id order
    /// (each once the one before has its election port open, plus --gap), and once a quorum of them runs,
    /// each next one only after the one before serves; observers last. The first quorum elects its highest
    /// id (3 of 5) and the later nodes join it; `zkdev explain election` tells the story
    #[arg(long, conflicts_with = "no_wait")]
    pub one_by_one: bool,
    /// With --one-by-one: how long to wait between one node being ready and the next starting (a duration:
    /// 500ms, 1s, 0s; a bare number is seconds)
    #[arg(long, default_value = "1s", value_name = "DURATION", value_parser = seconds_or_zero, requires = "one_by_one")]
    pub gap: Duration,
}

#[derive(Debug, Args)]
pub struct ResetArgs {
    #[command(flatten)]
    pub out: JsonArg,
    /// How long to wait for stopped nodes to serve again and for the ensemble to answer (a duration: 500ms,
    /// 30s, 2m; a bare number is seconds)
    #[arg(long, default_value = "60s", value_name = "DURATION", value_parser = seconds)]
    pub timeout: Duration,
}

#[derive(Debug, Args)]
pub struct NodeArgs {
    #[command(flatten)]
    pub out: JsonArg,
    /// A node id, or leader | follower | observer (one node of that role, as the servers say now) | all
    #[arg(value_name = "TARGET")]
    pub target: crate::model::fault::Target,
    /// Proceed even when fewer voters than a quorum would remain up
    #[arg(long)]
    pub force: bool,
    /// Do not wait for the node to serve again (start, restart, resume) or for a new leader (stop, kill, pause)
    #[arg(long)]
    pub no_wait: bool,
    /// How long to wait (a duration: 500ms, 30s, 2m; a bare number is seconds)
    #[arg(long, default_value = "30s", value_name = "DURATION", value_parser = seconds)]
    pub timeout: Duration,
}

#[derive(Debug, Args)]
pub struct AddArgs {
    #[command(flatten)]
    pub out: JsonArg,
    /// Add observers instead of voting participants. On a cluster made without --reconfig this is the
    /// static way: every node's zoo.cfg gets the observer's line, the observer starts, and the other nodes
    /// restart one at a time (leader last) as `rolling-restart` does
    #[arg(long)]
    pub observer: bool,
    /// How many nodes to add (ids after the highest one), in one reconfig
    #[arg(long, default_value_t = 1, value_name = "K")]
    pub count: u32,
    /// Ask ZooKeeper even when the new configuration could not form a quorum from the nodes up now
    #[arg(long)]
    pub force: bool,
    /// How long to wait for the new nodes to sync and the configuration to be committed everywhere (a duration: 500ms, 30s, 2m; a bare number is seconds)
    #[arg(long, default_value = "60s", value_name = "DURATION", value_parser = seconds)]
    pub timeout: Duration,
}

#[derive(Debug, Args)]
pub struct MemberArgs {
    #[command(flatten)]
    pub out: JsonArg,
    /// The node's id, or `leader` (the node leading right now)
    #[arg(value_name = "ID|leader")]
    pub target: crate::model::fault::Target,
    /// Ask ZooKeeper even when the new configuration could not form a quorum from the nodes up now
    #[arg(long)]
    pub force: bool,
    /// How long to wait for the configuration to be committed everywhere (a duration: 500ms, 30s, 2m; a bare number is seconds)
    #[arg(long, default_value = "60s", value_name = "DURATION", value_parser = seconds)]
    pub timeout: Duration,
}

#[derive(Debug, Args)]
pub struct RollingArgs {
    #[command(flatten)]
    pub out: JsonArg,
    /// Move the cluster to this installed ZooKeeper version on the way (`zkdev dist list`)
    #[arg(long, value_name = "VERSION")]
    pub dist: Option<String>,
    /// How long each node may take to serve again (a duration: 500ms, 30s, 2m; a bare number is seconds)
    #[arg(long, default_value = "60s", value_name = "DURATION", value_parser = seconds)]
    pub timeout: Duration,
}

#[derive(Debug, Subcommand)]
pub enum DistCmd {
    /// Known installations: Debian's package, downloaded ones, added ones
    List,
    /// Register an unpacked ZooKeeper directory (3.5+ -bin tarball or 3.4 layout)
    Add {
        #[arg(value_name = "PATH")]
        path: PathBuf,
    },
    /// Download a version from the Apache archive (or a mirror), check its .sha512, unpack it into the cache
    #[command(
        after_help = "Examples:\n  zkdev dist install 3.9.5\n  zkdev dist install 3.8.6 --mirror https://mirror.example/zookeeper/"
    )]
    Install {
        #[arg(value_name = "VERSION")]
        version: String,
        /// Base URL holding zookeeper-X/<file> and <file>.sha512 [env: ZKDEV_MIRROR; profile: dist.mirror]
        #[arg(long, value_name = "URL")]
        mirror: Option<String>,
        /// Take the mirror from this profile's [dist] section
        #[arg(short, long, value_name = "NAME|FILE")]
        profile: Option<String>,
    },
    /// Remove a downloaded version from the cache, or forget an added one (its files stay)
    Remove {
        #[arg(value_name = "VERSION")]
        version: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum ExportCmd {
    /// StatefulSets (voters, observers), headless and client Services, a PodDisruptionBudget, a ConfigMap
    K8s {
        #[command(flatten)]
        shape: ExportShape,
        /// The namespace the manifests name
        #[arg(long, default_value = "default", value_name = "NS")]
        namespace: String,
    },
    /// One service per node on the official image, client ports published on 127.0.0.1
    Compose {
        #[command(flatten)]
        shape: ExportShape,
    },
    /// A directory per host with its zoo.cfg, myid and start script, plus a README of the steps
    Hosts {
        /// One host name per node, voters first, comma-separated
        #[arg(value_name = "HOST1,HOST2,...", value_delimiter = ',', required = true)]
        hosts: Vec<String>,
        #[command(flatten)]
        shape: ExportShape,
    },
}

/// Without these flags an export describes the current cluster; with any of them, a new one.
#[derive(Debug, Args)]
pub struct ExportShape {
    #[arg(short, long, value_name = "N")]
    pub nodes: Option<u32>,
    #[arg(short, long, value_name = "M")]
    pub observers: Option<u32>,
    #[arg(short, long, value_name = "NAME|FILE")]
    pub profile: Option<String>,
    /// The ZooKeeper version (image tag); need not be installed here
    #[arg(long, value_name = "VERSION")]
    pub dist: Option<String>,
    /// Write the files under DIR instead of printing them
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct WaitArgs {
    #[command(flatten)]
    pub out: JsonArg,
    /// How long to wait before giving up (exit 1, with the reason) (a duration: 500ms, 30s, 2m; a bare number is seconds)
    #[arg(long, default_value = "30s", value_name = "DURATION", value_parser = seconds)]
    pub timeout: Duration,
}

#[derive(Debug, Args)]
pub struct WatchArgs {
    #[command(flatten)]
    pub out: JsonArg,
    /// How often to look at the ensemble (a duration with its unit: 100ms, 1s; a bare number is refused)
    #[arg(long, default_value = "100ms", value_name = "DURATION", value_parser = with_unit)]
    pub interval: Duration,
    /// Stop after this long (a duration: 30s, 2m; a bare number is seconds; default: until Ctrl-C)
    #[arg(long, value_name = "DURATION", value_parser = seconds)]
    pub duration: Option<Duration>,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// The node whose log to show; all nodes merged in time order when omitted
    #[arg(value_name = "ID")]
    pub id: Option<u32>,
    /// Keep printing new lines as they are written (Ctrl-C ends)
    #[arg(short, long)]
    pub follow: bool,
    /// How many of the last lines to show first
    #[arg(short = 'n', long, default_value_t = 40, value_name = "LINES")]
    pub lines: usize,
}

#[derive(Debug, Args)]
pub struct CliArgs {
    /// The node to connect to [default: the leader, else the first serving node]
    #[arg(value_name = "ID")]
    pub id: Option<u32>,
    /// Arguments for zkCli, after `--` (e.g. -- ls /)
    #[arg(last = true, value_name = "ARGS")]
    pub args: Vec<String>,
}

#[derive(Debug, Args)]
pub struct SmokeArgs {
    #[command(flatten)]
    pub out: JsonArg,
    /// The node to write through [default: node 1]
    #[arg(long, value_name = "ID")]
    pub via: Option<u32>,
    /// How long each node may take to answer (a duration: 500ms, 30s, 2m; a bare number is seconds)
    #[arg(long, default_value = "5s", value_name = "DURATION", value_parser = seconds)]
    pub timeout: Duration,
    /// Go over TLS: every node's secure client port, with the cluster's CA and client certificate
    #[arg(long)]
    pub tls: bool,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub out: JsonArg,
    /// How many times to kill the leader (each one restarted before the next); without --nemesis
    #[arg(long, default_value_t = 3, value_name = "K", conflicts_with = "nemesis")]
    pub kills: u32,
    /// Writes attempted per second
    #[arg(long, default_value_t = 50, value_name = "R")]
    pub writes_per_sec: u32,
    /// How long to keep writing at least (the kills or faults are spread over it) (a duration: 500ms, 30s, 2m; a bare number is seconds)
    #[arg(long, default_value = "10s", value_name = "DURATION", value_parser = seconds)]
    pub duration: Duration,
    /// Go over TLS: the writer and the checker use every node's secure client port, with the cluster's CA
    /// and client certificate
    #[arg(long)]
    pub tls: bool,
    /// Inject random faults of these kinds instead of leader kills, one at a time, each healed before the
    /// next: kill (the leader, restarted), pause (SIGSTOP, SIGCONT), partition (isolate a node), stall (a
    /// node's quorum link), delay (a link). partition, stall and delay need a `zkdev up --net` cluster
    #[arg(long, value_name = "KINDS")]
    pub nemesis: Option<String>,
    /// Seed of the fault plan: the same seed (with the same kinds, count, duration and nodes) injects the
    /// same faults in the same order. Default: a new one, printed
    #[arg(long, value_name = "N", requires = "nemesis")]
    pub seed: Option<u64>,
    /// How many faults the nemesis injects (default: one per 4 s of --duration)
    #[arg(long, value_name = "N", requires = "nemesis")]
    pub faults: Option<usize>,
    /// Connect the workload's clients to the nodes' own client ports, around the client proxies of a `--net`
    /// cluster (by default they go through them, as an application does, so `link client` faults reach them)
    #[arg(long)]
    pub direct: bool,
}

#[derive(Debug, Args)]
pub struct ChaosArgs {
    #[command(flatten)]
    pub out: JsonArg,
    /// How long the workload runs, the faults spread over it (a duration: 30s, 2m; a bare number is seconds)
    #[arg(long, default_value = "60s", value_name = "DURATION", value_parser = seconds)]
    pub duration: Duration,
    /// Seed of the fault schedule: the same seed (with the same kinds, count, duration and nodes) injects the
    /// same faults at the same times. Default: a new one, printed with the command that replays the run
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// Fault kinds, comma-separated: kill, pause, partition, stall, delay, disk, expire, or none (the workload
    /// alone). Default: every kind the cluster can take (partition, stall and delay need `up --net`, disk needs
    /// `up --disk-faults`; `--profile chaos` has both)
    #[arg(long, value_name = "KINDS")]
    pub nemesis: Option<String>,
    /// How many faults, one at a time, each healed before the next (default: one per 4 s)
    #[arg(long, value_name = "N")]
    pub faults: Option<usize>,
    /// register: compare-and-set and sync+read on a few znodes, checked for linearizability; sequential:
    /// sequential creates, checked on every node and in each client's order; queue: no item lost or
    /// delivered twice; zk: sessions on every node (observers too) doing reads without sync, sync reads,
    /// watches, ephemerals, multis and session moves, checked against ZooKeeper's own model (a stale read
    /// is allowed, a session going back in time is not)
    #[arg(long, value_parser = WorkloadArg::parser(), default_value = "register")]
    pub workload: WorkloadKind,
    /// How many clients, each with its own session
    #[arg(long, default_value_t = 5, value_name = "C")]
    pub clients: u32,
    /// Operations per second per client (0: as fast as each can)
    #[arg(long, default_value_t = 50, value_name = "R")]
    pub rate: u32,
    /// Where to write history.json, verdict.json, faults.json, events.ndjson and timeline.svg [default: a
    /// new directory under the cluster's own]
    #[arg(long = "out", value_name = "DIR")]
    pub out_dir: Option<std::path::PathBuf>,
    /// Take a voter out even where the others would not keep a quorum
    #[arg(long)]
    pub force: bool,
    /// Connect the workload's clients to the nodes' own client ports, around the client proxies of a `--net`
    /// cluster (by default they go through them, as an application does, so `link client` faults reach them)
    #[arg(long)]
    pub direct: bool,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub out: JsonArg,
    /// The scenario file (TOML): see scenarios/ for examples
    #[arg(value_name = "SCENARIO")]
    pub scenario: std::path::PathBuf,
    /// Also write the result as JUnit XML (one test case per `expect` step) for CI systems
    #[arg(long, value_name = "FILE")]
    pub junit: Option<std::path::PathBuf>,
    /// Connect the workload's clients to the nodes' own client ports, around the client proxies of a `--net`
    /// cluster (by default they go through them, as an application does, so `link client` faults reach them)
    #[arg(long)]
    pub direct: bool,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub out: JsonArg,
}

#[derive(Debug, Args)]
pub struct PartitionArgs {
    #[command(flatten)]
    pub out: JsonArg,
    /// The nodes to cut off: ids, or leader | follower | observer (as the servers say now)
    #[arg(required = true, value_name = "NODE")]
    pub nodes: Vec<crate::model::fault::Target>,
    /// Cut them off only from these nodes [default: every other node]
    #[arg(long, num_args = 1.., value_name = "NODE")]
    pub from: Vec<crate::model::fault::Target>,
    /// Drop only what the named nodes send (they still hear the others)
    #[arg(long)]
    pub one_way: bool,
    /// Do not wait to see what the ensemble does
    #[arg(long)]
    pub no_wait: bool,
    /// How long to wait for the majority side's leader (a duration: 500ms, 30s, 2m; a bare number is seconds)
    #[arg(long, default_value = "30s", value_name = "DURATION", value_parser = seconds)]
    pub timeout: Duration,
}

#[derive(Debug, Args)]
pub struct IsolateArgs {
    #[command(flatten)]
    pub out: JsonArg,
    /// leader, follower, observer or a node id
    #[arg(value_name = "NODE")]
    pub node: crate::model::fault::Target,
    /// Drop only what the node sends
    #[arg(long)]
    pub one_way: bool,
    #[arg(long)]
    pub no_wait: bool,
    #[arg(long, default_value = "30s", value_name = "DURATION", value_parser = seconds)]
    pub timeout: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LinkPort {
    Quorum,
    Election,
    Both,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("which").required(true).args(["id", "client", "all"])))]
pub struct ExpireSessionArgs {
    #[command(flatten)]
    pub out: JsonArg,
    /// A session id as `zkdev sessions` prints it (0x...)
    #[arg(value_name = "ID")]
    pub id: Option<String>,
    /// The session of the client connected from this address (HOST:PORT, as `zkdev sessions` shows it)
    #[arg(long, value_name = "HOST:PORT")]
    pub client: Option<String>,
    /// Every client session (with --node: every session connected to that node)
    #[arg(long)]
    pub all: bool,
    /// With --all: only the sessions connected to this node
    #[arg(long, value_name = "ID", requires = "all")]
    pub node: Option<u32>,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("fault").required(true).args(["slow_fsync", "full", "eio", "heal", "power_cut", "corrupt", "truncate"])))]
pub struct DiskArgs {
    #[command(flatten)]
    pub out: JsonArg,
    /// A node id, or leader | follower | observer (one node of that role, as the servers say now), or all
    #[arg(value_name = "TARGET")]
    pub target: crate::model::fault::Target,
    /// Every fsync/fdatasync of a file under the node's data directory waits this long first (a duration
    /// with its unit: 300ms, 1s; a bare number is refused)
    #[arg(long, value_name = "DURATION", value_parser = with_unit)]
    pub slow_fsync: Option<Duration>,
    /// Every write there fails with ENOSPC (no space left on device)
    #[arg(long)]
    pub full: bool,
    /// Every write and fsync there fails with EIO (a failing disk)
    #[arg(long)]
    pub eio: bool,
    /// The disk is healthy again (a node whose JVM is still up catches up by itself; one that exited
    /// stays stopped: `zkdev start ID`)
    #[arg(long)]
    pub heal: bool,
    /// Cut the power: the JVM is SIGKILLed at once and every byte written to its data directory since that
    /// file's last fsync/fdatasync is lost (as a real power loss would); `zkdev start ID` (or `up`) brings it
    /// back. `all` cuts the whole rack at once
    #[arg(long)]
    pub power_cut: bool,
    /// With --power-cut: a random (seeded) prefix of each file's last unsynced write reaches the disk
    #[arg(long, requires = "power_cut")]
    pub torn: bool,
    /// With --power-cut: the kernel had written back by itself every change older than this (Linux does
    /// after vm.dirty_expire_centisecs, 30s by default); without it every unsynced byte is lost, however old
    #[arg(long, value_name = "DURATION", value_parser = with_unit, requires = "power_cut")]
    pub writeback: Option<Duration>,
    /// Flip bytes inside the written records of the newest transaction log or snapshot of a stopped node
    #[arg(long, value_enum, value_name = "FILE")]
    pub corrupt: Option<CorruptFile>,
    /// With --corrupt: how many bytes to flip
    #[arg(long, default_value_t = 1, value_name = "N", requires = "corrupt")]
    pub bytes: u32,
    /// Cut the newest transaction log of a stopped node at a seeded offset inside its records
    #[arg(long)]
    pub truncate: bool,
    /// The seed of --torn, --corrupt and --truncate (the same seed picks the same bytes); default: random,
    /// and printed
    #[arg(long, value_name = "S")]
    pub seed: Option<u64>,
    /// How long to watch what ZooKeeper does about the fault (a duration: 500ms, 30s, 2m; a bare number is seconds)
    #[arg(long, default_value = "15s", value_name = "DURATION", value_parser = seconds)]
    pub timeout: Duration,
}

/// Which file `disk --corrupt` damages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CorruptFile {
    /// The newest transaction log (version-2/log.*)
    Log,
    /// The newest snapshot (version-2/snapshot.*)
    Snapshot,
}

#[derive(Debug, Args)]
pub struct LinkArgs {
    #[command(flatten)]
    pub out: JsonArg,
    /// A node (id, leader, follower, observer) or `client`
    #[arg(value_name = "A")]
    pub a: String,
    /// The other node
    #[arg(value_name = "B")]
    pub b: String,
    /// Added to every chunk of bytes (a duration with its unit: 200ms, 1s; a bare number is refused)
    #[arg(long, value_name = "DURATION", value_parser = with_unit)]
    pub delay: Option<Duration>,
    /// Up to this much more, at random, per chunk, order kept (a duration with its unit: 50ms)
    #[arg(long, value_name = "DURATION", value_parser = with_unit)]
    pub jitter: Option<Duration>,
    /// Per cent of chunks that cost a retransmission (200 ms), e.g. 10%
    #[arg(long, value_name = "PCT")]
    pub loss: Option<String>,
    /// Keep the connections open but move no bytes
    #[arg(long)]
    pub stall: bool,
    /// Cut the link (connections reset, new ones refused; one-way: bytes held)
    #[arg(long)]
    pub cut: bool,
    /// Reset the live connections once (they may reconnect)
    #[arg(long)]
    pub reset: bool,
    /// Bytes per second, e.g. 64KiB/s, 1MB/s, 5000
    #[arg(long, value_name = "RATE")]
    pub bandwidth: Option<String>,
    /// Which peer port's connections (ignored for `client`)
    #[arg(long, value_enum, default_value_t = LinkPort::Both)]
    pub port: LinkPort,
    /// Only the bytes A sends to B
    #[arg(long)]
    pub one_way: bool,
}

#[derive(Debug, Args)]
pub struct HealArgs {
    #[command(flatten)]
    pub out: JsonArg,
    /// Two link ends (node ids, leader..., or `client` and a node); none: every link
    #[arg(value_name = "END", num_args = 0..=2)]
    pub ends: Vec<String>,
    /// Every link
    #[arg(long, conflicts_with = "ends")]
    pub all: bool,
    #[arg(long)]
    pub no_wait: bool,
    /// How long to wait for every node to serve on one zxid (a duration: 500ms, 30s, 2m; a bare number is seconds)
    #[arg(long, default_value = "30s", value_name = "DURATION", value_parser = seconds)]
    pub timeout: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SignalArg {
    /// SIGKILL: the process vanishes at once, as in a crash
    Kill,
    /// SIGTERM: ZooKeeper shuts down
    Term,
}

impl From<SignalArg> for crate::engine::kill_leader::Signal {
    fn from(s: SignalArg) -> Self {
        match s {
            SignalArg::Kill => Self::Kill,
            SignalArg::Term => Self::Term,
        }
    }
}

#[derive(Debug, Args)]
pub struct KillLeaderArgs {
    #[command(flatten)]
    pub out: JsonArg,
    /// Which signal to send
    #[arg(long, value_enum, default_value_t = SignalArg::Kill)]
    pub signal: SignalArg,
    /// Kill even when the survivors cannot form a quorum (no leader can then be elected)
    #[arg(long)]
    pub force: bool,
    /// Start the old leader again afterwards and wait until it rejoins (as a follower)
    #[arg(long)]
    pub restart: bool,
    /// How long to wait for a new leader (a duration: 500ms, 30s, 2m; a bare number is seconds)
    #[arg(long, default_value = "30s", value_name = "DURATION", value_parser = seconds)]
    pub timeout: Duration,
}

#[derive(Debug, Args)]
pub struct DownArgs {
    #[command(flatten)]
    pub out: JsonArg,
    /// Also remove the cluster's directory (configs, data, logs), and nothing outside it
    #[arg(long)]
    pub purge: bool,
    /// How long between SIGTERM and SIGKILL (a duration: 500ms, 30s, 2m; a bare number is seconds)
    #[arg(long, default_value = "10s", value_name = "DURATION", value_parser = seconds)]
    pub grace: Duration,
}

#[derive(Debug, Args)]
pub struct RenderArgs {
    /// Voters (default 3). Without any of these flags on an existing cluster, its own files are shown
    #[arg(short, long, value_name = "N")]
    pub nodes: Option<u32>,
    /// Observers (default 0)
    #[arg(short, long, value_name = "M")]
    pub observers: Option<u32>,
    #[arg(short, long, value_name = "NAME|FILE")]
    pub profile: Option<String>,
    #[arg(long, value_name = "K")]
    pub port_offset: Option<u16>,
    #[arg(long, value_parser = AddressModeArg::parser(), value_name = "MODE")]
    pub addresses: Option<AddressMode>,
    #[arg(long, value_name = "IP")]
    pub address_base: Option<std::net::Ipv4Addr>,
    #[arg(long, value_name = "DIR", conflicts_with = "dist")]
    pub zk_home: Option<String>,
    /// The ZooKeeper version to render for, among the known installations
    #[arg(long, value_name = "VERSION")]
    pub dist: Option<String>,
    /// Write the files under DIR (as DIR/node<i>/...) instead of printing them
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Render with TLS on (as `up --tls`)
    #[arg(long)]
    pub tls: bool,
}

/// A duration flag where a bare number has always meant seconds (`--timeout 30` = `--timeout 30s`).
fn seconds(text: &str) -> Result<Duration, String> {
    match crate::model::span::parse(text, crate::model::span::Bare::Seconds)? {
        d if d.is_zero() => Err("give a duration greater than 0, e.g. 30s".into()),
        d => Ok(d),
    }
}

/// A duration flag where a bare number means seconds and 0 is allowed (`up --gap`).
fn seconds_or_zero(text: &str) -> Result<Duration, String> {
    crate::model::span::parse(text, crate::model::span::Bare::Seconds)
}

/// A duration flag where a bare number used to mean milliseconds: a unit is now required.
fn with_unit(text: &str) -> Result<Duration, String> {
    crate::model::span::parse(text, crate::model::span::Bare::Refused)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn completions_name_every_command() {
        for shell in [
            clap_complete::Shell::Bash,
            clap_complete::Shell::Zsh,
            clap_complete::Shell::Fish,
        ] {
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "zkdev", &mut out);
            let text = String::from_utf8(out).unwrap();
            for cmd in ["kill-leader", "events", "rolling-restart"] {
                assert!(text.contains(cmd), "{shell:?} completions lack {cmd}");
            }
        }
    }

    #[test]
    fn json_is_taken_where_it_means_something_and_refused_elsewhere() {
        let parse = |args: &[&str]| Cli::try_parse_from(std::iter::once("zkdev").chain(args.iter().copied()));
        for ok in [
            &["status", "--json"][..],
            &["kill-leader", "--json"],
            &["stop", "1", "--json"],
            &["dist", "list", "--json"],
            &["dist", "--json", "list"],
            &["env", "--json"],
            &["events", "--json"],
        ] {
            assert!(parse(ok).unwrap().command.json(), "{ok:?}");
        }
        for refused in [
            &["logs", "--json"][..],
            &["cli", "--json"],
            &["render", "--json"],
            &["--json", "status"],
        ] {
            let e = parse(refused).unwrap_err();
            assert_eq!(e.kind(), clap::error::ErrorKind::UnknownArgument, "{refused:?}");
        }
    }
}

/// Write `zkdev completions SHELL`'s script to `out`.
pub fn completions(shell: clap_complete::Shell, out: &mut dyn std::io::Write) {
    use clap::CommandFactory;
    clap_complete::generate(shell, &mut Cli::command(), "zkdev", out);
}

/// `argv` (program name first) as a zkdev command line, or None when it is not one.
pub fn parse(argv: impl IntoIterator<Item = String>) -> Option<Cli> {
    Cli::try_parse_from(argv).ok()
}

/// Whether `argv` (program name first) is a zkdev command line: None when it parses, else the first line of
/// what clap says is wrong (without its `error: `).
pub fn usage_error<'a>(argv: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let e = Cli::try_parse_from(argv).err()?;
    let text = e.render().to_string();
    Some(
        text.lines()
            .next()
            .unwrap_or("")
            .trim_start_matches("error: ")
            .to_string(),
    )
}

// The library's choices as the command line spells them: clap's derives stay here, the library never names
// clap (each maps onto the model type it stands for).

/// Where the nodes listen: all on 127.0.0.1 with ports per node, or each on its own loopback address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AddressModeArg {
    /// Every node on 127.0.0.1, ports per node (client 2180+id, quorum 2880+id, ...).
    Shared,
    /// Node i on its own address, base + i (127.0.0.11, 127.0.0.12, ... by default), every node on the
    /// standard ports 2181, 2888, 3888, 8080 (and 7000 for metrics), the way ccm runs Cassandra nodes.
    Loopback,
}

impl AddressModeArg {
    fn parser() -> MapValueParser<EnumValueParser<AddressModeArg>, fn(AddressModeArg) -> AddressMode> {
        EnumValueParser::<AddressModeArg>::new().map(AddressMode::from)
    }
}

impl From<AddressModeArg> for AddressMode {
    fn from(a: AddressModeArg) -> AddressMode {
        match a {
            AddressModeArg::Shared => AddressMode::Shared,
            AddressModeArg::Loopback => AddressMode::Loopback,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum WorkloadArg {
    Register,
    Sequential,
    Queue,
    Zk,
}

impl WorkloadArg {
    fn parser() -> MapValueParser<EnumValueParser<WorkloadArg>, fn(WorkloadArg) -> WorkloadKind> {
        EnumValueParser::<WorkloadArg>::new().map(WorkloadKind::from)
    }
}

impl From<WorkloadArg> for WorkloadKind {
    fn from(w: WorkloadArg) -> WorkloadKind {
        match w {
            WorkloadArg::Register => WorkloadKind::Register,
            WorkloadArg::Sequential => WorkloadKind::Sequential,
            WorkloadArg::Queue => WorkloadKind::Queue,
            WorkloadArg::Zk => WorkloadKind::Zk,
        }
    }
}
