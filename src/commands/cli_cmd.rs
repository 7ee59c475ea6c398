//! `zkdev cli [ID] [-- ARGS]`: the installation's own zkCli (org.apache.zookeeper.ZooKeeperMain) against one
//! node. zkdev execs java in its place, so the terminal, Ctrl-C and the exit code are zkCli's own. With a
//! command after `--` the session is closed when the command returns (see `zk::cli_once`); an interactive
//! session behaves as ZooKeeper's own zkCli.

use std::os::unix::process::CommandExt;
use std::process::Command;

use super::Ctx;
use crate::cli::CliArgs;
use crate::dist::LogConfig;
use crate::error::{Error, Result};
use crate::zk::{cli_once, observe};

/// zkCli logs to the console at WARN, so its prompt is not buried in INFO lines.
const LOG4J: &str = "log4j.rootLogger=WARN, CONSOLE\nlog4j.appender.CONSOLE=org.apache.log4j.ConsoleAppender\n\
log4j.appender.CONSOLE.Target=System.err\nlog4j.appender.CONSOLE.layout=org.apache.log4j.PatternLayout\n\
log4j.appender.CONSOLE.layout.ConversionPattern=%-5p %c{1} - %m%n\n\
log4j.logger.org.apache.zookeeper.util.ServiceUtils=OFF\n";
const LOGBACK: &str = "<configuration>\n  <appender name=\"CONSOLE\" class=\"ch.qos.logback.core.ConsoleAppender\">\n\
    <target>System.err</target>\n    <encoder><pattern>%-5level %logger{0} - %msg%n</pattern></encoder>\n  </appender>\n\
  <logger name=\"org.apache.zookeeper.util.ServiceUtils\" level=\"OFF\" />\n  <root level=\"WARN\"><appender-ref ref=\"CONSOLE\" /></root>\n</configuration>\n";

pub async fn run(ctx: &Ctx, args: CliArgs) -> Result<()> {
    let (paths, spec) = ctx.existing()?;
    let id = match args.id {
        Some(id) => {
            spec.node(id).ok_or_else(|| {
                Error::usage(format!(
                    "cluster `{}` has no node {id}; its {} {}",
                    spec.name,
                    crate::model::words::noun_for(spec.nodes.len(), "node is|nodes are"),
                    crate::model::words::and_list(&spec.ids())
                ))
            })?;
            id
        }
        None => {
            let status = observe::gather(&spec, &paths, &paths.load_state()?).await;
            status
                .leader
                .or_else(|| status.nodes.iter().find(|n| n.serving()).map(|n| n.id))
                .ok_or_else(|| Error::failed("no node serves right now; start the cluster with `zkdev up`"))?
        }
    };
    let addr = spec.node(id).expect("checked").client_addr();
    let (file, text, prop) = match spec.dist.log_config {
        LogConfig::Log4j => ("cli-log4j.properties", LOG4J, "-Dlog4j.configuration=file:"),
        LogConfig::Logback => ("cli-logback.xml", LOGBACK, "-Dlogback.configurationFile="),
    };
    let log_cfg = paths.root.join(file);
    crate::os::state::write_atomic(&log_cfg, text.as_bytes())?;
    let mut classpath = spec.dist.classpath_string();
    let mut main = "org.apache.zookeeper.ZooKeeperMain";
    if cli_once::names_a_command(&args.args) {
        match cli_once::prepare(&spec.dist, &paths.root.join("cli")) {
            Ok(dir) => {
                classpath = format!("{}:{classpath}", dir.display());
                main = cli_once::MAIN_CLASS;
            }
            Err(why) => eprintln!(
                "note: {why}; running ZooKeeper's zkCli as it is, whose session stays open (with any ephemeral \
                 znode the command created) until it times out"
            ),
        }
    }
    let mut cmd = Command::new(&spec.dist.java);
    cmd.arg(format!("{prop}{}", log_cfg.display()))
        .arg("-cp")
        .arg(classpath)
        .arg(main)
        .arg("-server")
        .arg(addr.to_string())
        .args(&args.args);
    if !ctx.quiet && args.args.is_empty() {
        eprintln!("zkCli on node {id} ({addr}); `quit` leaves");
    }
    let err = cmd.exec();
    Err(Error::env(format!("cannot run {}: {err}", spec.dist.java.display())))
}
