//! Why a node died, read from its log (which also gets the JVM's own stdout and stderr): the line that says
//! so, and what to do about it. Pure (the caller reads the log), so it is tested on real
//! log excerpts; a crashed node's status hint and `up`'s report of a node that died while starting use it.

/// Why the node whose log text is `log_text` died: `exited_at_once` when zkdev knows how its java ended (`exit`,
/// from `process::reap`), else `diagnose`.
pub fn node_died(log_text: &str, java: &str, exit: Option<String>) -> Option<String> {
    exit.and_then(|status| exited_at_once(java, &status, log_text))
        .or_else(|| diagnose(log_text))
}

/// The known cause of death in a node's log, as one sentence: what happened (quoting the telling line) and
/// what to do. None when the log shows no cause zkdev knows; the caller then quotes the log itself.
pub fn diagnose(log_text: &str) -> Option<String> {
    let lines = last_run(log_text);
    // Newest first: the log keeps every earlier run of the node.
    for (i, line) in lines.iter().enumerate().rev() {
        if let Some(at) = line.find("OutOfMemoryError") {
            return Some(out_of_memory(line, at));
        }
        if line.trim() == "Error occurred during initialization of VM" {
            let reason = lines.get(i + 1).map_or("", |l| l.trim());
            return Some(format!(
                "the JVM could not start: `{reason}`; check heap_max_mb, heap_min_mb and flags in the profile's [jvm] \
                 section"
            ));
        }
        if line.starts_with("Error: Could not create the Java Virtual Machine") {
            // The JVM names the option it refused on the line before its "Error:" lines.
            let before = lines[..i]
                .iter()
                .rev()
                .find(|l| !l.starts_with("Error: ") && !l.trim().is_empty());
            let reason = before.map_or(line.trim(), |l| l.trim());
            return Some(format!(
                "the JVM refused its options: `{reason}`; check flags in the profile's [jvm] section"
            ));
        }
        if line.starts_with("Error: Could not find or load main class") {
            return Some(format!(
                "java could not load ZooKeeper: `{}`; the installation looks incomplete (see `zkdev dist list`)",
                line.trim()
            ));
        }
        if line.contains("Unable to load database on disk") {
            return Some(refused_its_data(&lines, i));
        }
        if line.contains("java.net.BindException") {
            let binding = lines[..i]
                .iter()
                .rev()
                .take(5)
                .find_map(|l| l.split_once("binding to port ").map(|(_, a)| a.trim()));
            let port = binding.map(|a| format!(" ({a})")).unwrap_or_default();
            return Some(format!(
                "a port of this node{port} was taken by another process after zkdev checked it: `{}`; find it with \
                 `ss -ltnp` and stop it (a cluster keeps its ports; a new one can go elsewhere with --port-offset, \
                 or with --address-base under --addresses loopback)",
                line.trim()
            ));
        }
    }
    None
}

/// ZooKeeper refused the snapshot or transaction log on its disk (`Unable to load database on disk` at line
/// `at`): the line, and the exception that says why (`CRC check failed`, an EOF in a record...).
fn refused_its_data(lines: &[&str], at: usize) -> String {
    let why = lines[at + 1..].iter().take(40).map(|l| l.trim()).find(|l| {
        l.contains("CRC check failed")
            || l.contains("Checksum")
            || ((l.contains("Exception:") || l.contains("Exception ") || l.ends_with("Exception"))
                && !l.starts_with("at "))
    });
    let why = why.map(|w| format!(" (`{w}`)")).unwrap_or_default();
    format!(
        "ZooKeeper refused the data on its disk: `{}`{why}; its transaction log or snapshot is damaged (a power \
         cut, `zkdev disk --corrupt`/`--truncate`). A follower can resync from the leader if its \
         data/version-2 directory is moved aside; then `zkdev start ID`",
        lines[at].trim()
    )
}

/// The first line of the first exception in the node's last run (`java.net.BindException: Address already in
/// use`, `Caused by: java.lang.ClassNotFoundException: ...`), with its index in `last_run`'s lines: what an
/// excerpt must show even when the stack trace below it is long.
fn first_exception(lines: &[&str]) -> Option<usize> {
    lines.iter().position(|l| {
        let t = l.trim_start();
        let head = t.strip_prefix("Caused by: ").unwrap_or(t);
        let name = head.split([':', ' ']).next().unwrap_or("");
        !t.starts_with("at ")
            && name.contains('.')
            && (name.ends_with("Exception") || name.ends_with("Error"))
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '$' || c == '_')
    })
}

/// A fatal sign in a node's log while it starts, as the line to quote: a port it could not bind, ZooKeeper
/// giving up. A missing class is not one by itself (see `missing_class`): ZooKeeper serves without the
/// classes of its optional parts, such as the AdminServer's servlet API.
pub fn fatal_at_start(log_text: &str) -> Option<String> {
    let lines = last_run(log_text);
    let fatal =
        |l: &str| l.contains("java.net.BindException") || l.contains("Unexpected exception, exiting abnormally");
    let at = lines.iter().position(|l| fatal(l))?;
    Some(quote_exception(&lines, at))
}

/// A missing class in a node's log (an incomplete installation), as the line to quote. Fatal only when the
/// node cannot serve: a node whose client port closes every connection (Netty's codec missing), or one that
/// never serves; one that serves anyway lacks an optional part (`optional_part_missing` says which).
pub fn missing_class(log_text: &str) -> Option<String> {
    let lines = last_run(log_text);
    let at = lines
        .iter()
        .position(|l| l.contains("ClassNotFoundException") || l.contains("NoClassDefFoundError"))?;
    Some(quote_exception(&lines, at))
}

/// What a serving node lacks when its log names the missing class `line` (from `missing_class`), and what to
/// do about it.
pub fn optional_part_missing(line: &str) -> String {
    if line.contains("javax/servlet") || line.contains("javax.servlet") {
        "its AdminServer did not start (the installation lacks the servlet API; on Debian `sudo apt-get install \
         libservlet-api-java`, or `admin_server = false` under [zookeeper] in a profile), so its admin port does not \
         answer; ZooKeeper serves without it"
            .to_string()
    } else {
        "a part of ZooKeeper that needs this class does not work; it serves without it (`zkdev logs` shows where)"
            .to_string()
    }
}

/// The exception to quote for the line at `at`: the exception itself where that line is ZooKeeper's message
/// about it.
fn quote_exception(lines: &[&str], at: usize) -> String {
    let exception = first_exception(&lines[at..])
        .map(|i| lines[at + i])
        .unwrap_or(lines[at]);
    exception.trim().to_string()
}

/// Lines of a node's log for an error message: the first exception of its last run with the line before it and
/// two of its frames (when it is not among the last lines anyway), then the last `n` lines.
pub fn excerpt(log_text: &str, n: usize) -> Vec<String> {
    let all: Vec<&str> = log_text.lines().collect();
    let run = last_run(log_text);
    let run_start = all.len() - run.len();
    let tail_start = all.len().saturating_sub(n);
    let mut out = Vec::new();
    if let Some(i) = first_exception(&run).map(|i| run_start + i) {
        if i < tail_start {
            let from = i.saturating_sub(1).max(run_start);
            let to = (i + 3).min(tail_start);
            out.extend(all[from..to].iter().map(|l| l.to_string()));
            if to < tail_start {
                out.push("...".to_string());
            }
        }
    }
    out.extend(all[tail_start..].iter().map(|l| l.to_string()));
    out
}

/// What a java that exited before ZooKeeper wrote a single log line did: its exit status and its output.
/// `java` is the program zkdev ran, `status` how it ended (`exit status 1`), `log_text` the node's log.
/// None when ZooKeeper did start logging (then it was not java that failed at once) or a known cause explains it.
pub fn exited_at_once(java: &str, status: &str, log_text: &str) -> Option<String> {
    let lines = last_run(log_text);
    if lines.iter().any(|l| is_log_line(l)) || diagnose(log_text).is_some() {
        return None;
    }
    let printed: Vec<&str> = lines.iter().map(|l| l.trim_end()).filter(|l| !l.is_empty()).collect();
    let output = match printed.as_slice() {
        [] => "and printed nothing".to_string(),
        some => {
            let shown: Vec<&str> = some.iter().rev().take(3).rev().copied().collect();
            format!("and printed: {}", shown.join(" / "))
        }
    };
    Some(format!(
        "`{java}` exited at once with {status} {output}; is it a Java runtime? Set `java` in the profile's [dist] \
         section to one (or leave it out to use $JAVA_HOME/bin/java, then java on PATH)"
    ))
}

/// The lines of the node's last run: from the last line where ZooKeeper began reading its configuration (a
/// JVM that fails earlier leaves its lines after the previous run's, and those are still included).
fn last_run(log_text: &str) -> Vec<&str> {
    let lines: Vec<&str> = log_text.lines().collect();
    let start = lines
        .iter()
        .rposition(|l| l.contains("QuorumPeerConfig - Reading configuration from:"))
        .unwrap_or(0);
    lines[start..].to_vec()
}

/// A line written by ZooKeeper's logger (`2026-11-30 22:31:47,154 [myid:1] INFO ...`), as opposed to what the
/// JVM itself printed.
fn is_log_line(line: &str) -> bool {
    let b = line.as_bytes();
    b.len() > 19 && b[..4].iter().all(u8::is_ascii_digit) && b[4] == b'-' && b[10] == b' ' && b[13] == b':'
}

fn out_of_memory(line: &str, at: usize) -> String {
    let start = line[..at]
        .rfind("java.lang.")
        .filter(|s| at - s == "java.lang.".len())
        .unwrap_or(at);
    let error = line[start..].trim();
    let advice = if error.contains("Metaspace") || error.contains("Compressed class space") {
        "raise -XX:MaxMetaspaceSize in the profile's [jvm] flags (or drop it)"
    } else if error.contains("heap space") || error.contains("GC overhead") || error.contains("array size") {
        "raise `heap_max_mb` under [jvm] in a profile (e.g. a file with `extends = \"fast\"` and `heap_max_mb = \
         128` under [jvm]), or run fewer nodes"
    } else {
        "give the JVMs more memory (the profile's [jvm] heap_max_mb and flags), or run fewer nodes"
    };
    format!("the JVM ran out of memory: `{error}`; {advice}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Debian 3.8.0, `heap_max_mb = 4`: the JVM's own line after ZooKeeper's last log line.
    const OOM: &str = "\
2026-11-30 22:26:16,686 [myid:1] INFO  [main] DatadirCleanupManager - Purge task is not scheduled.
2026-11-30 22:26:16,688 [myid:1] INFO  [main] ManagedUtil - Log4j 1.2 jmx support found and enabled.
2026-11-30 22:26:16,793 [myid:1] INFO  [main] QuorumPeerMain - Starting quorum peer, myid=1
2026-11-30 22:26:16,811 [myid:1] INFO  [main] ServerMetrics - ServerMetrics initialized with provider org.apache.zookeeper.metrics.impl.DefaultMetricsProvider@587c290d
Terminating due to java.lang.OutOfMemoryError: Java heap space
";

    #[test]
    fn out_of_heap_quotes_the_error_and_says_to_raise_heap_max_mb() {
        let d = diagnose(OOM).unwrap();
        assert!(
            d.starts_with("the JVM ran out of memory: `java.lang.OutOfMemoryError: Java heap space`;"),
            "{d}"
        );
        assert!(d.contains("raise `heap_max_mb`"), "{d}");
        // Interleaved with a log line (many JVMs writing at once): the error is found wherever it is.
        let cut = "2026-11-30 22:26:16,811 [myid:1] INFO  [main] ServerMetrics - x\nTerm\ninating due to java.lang.OutOfMemoryError: Java heap space\n2026-11-30 22:26:16,900 [myid:1] INFO  [NIOWorkerThread-1] X - y\n";
        assert!(diagnose(cut)
            .unwrap()
            .contains("`java.lang.OutOfMemoryError: Java heap space`"));
        let meta = "Exception in thread \"main\" java.lang.OutOfMemoryError: Metaspace\n";
        assert!(diagnose(meta).unwrap().contains("MaxMetaspaceSize"));
    }

    #[test]
    fn refused_jvm_options_are_named() {
        let log = "Unrecognized VM option 'NoSuchOption'\nError: Could not create the Java Virtual Machine.\nError: A fatal exception has occurred. Program will exit.\n";
        let d = diagnose(log).unwrap();
        assert!(
            d.contains("the JVM refused its options: `Unrecognized VM option 'NoSuchOption'`"),
            "{d}"
        );
        let log = "Error occurred during initialization of VM\nInitial heap size set to a larger value than the maximum heap size\n";
        let d = diagnose(log).unwrap();
        assert!(
            d.contains("`Initial heap size set to a larger value than the maximum heap size`"),
            "{d}"
        );
        let log = "Error: Could not find or load main class org.apache.zookeeper.server.quorum.QuorumPeerMain\nCaused by: java.lang.ClassNotFoundException: org.apache.zookeeper.server.quorum.QuorumPeerMain\n";
        assert!(diagnose(log).unwrap().contains("java could not load ZooKeeper"));
    }

    #[test]
    fn a_port_taken_after_the_check_is_named() {
        let log = "\
2026-11-30 22:31:47,154 [myid:1] INFO  [main] NIOServerCnxnFactory - binding to port /127.0.0.1:12701
2026-11-30 22:31:47,154 [myid:1] ERROR [main] QuorumPeerMain - Unexpected exception, exiting abnormally
java.net.BindException: Address already in use
\tat java.base/sun.nio.ch.Net.bind0(Native Method)
\tat org.apache.zookeeper.server.quorum.QuorumPeerMain.main(QuorumPeerMain.java:91)
2026-11-30 22:31:47,158 [myid:1] INFO  [main] ZKAuditProvider - ZooKeeper audit is disabled.
2026-11-30 22:31:47,159 [myid:1] ERROR [main] ServiceUtils - Exiting JVM with code 1
";
        let d = diagnose(log).unwrap();
        assert!(d.contains("a port of this node (/127.0.0.1:12701) was taken"), "{d}");
        assert!(d.contains("`java.net.BindException: Address already in use`"), "{d}");
    }

    #[test]
    fn the_excerpt_keeps_the_exception_line_above_a_long_stack_trace() {
        let mut log = String::from(
            "2026-11-30 22:31:47,154 [myid:1] INFO  [main] QuorumPeerConfig - Reading configuration from: /x/zoo.cfg\n\
             2026-11-30 22:31:47,154 [myid:1] ERROR [main] QuorumPeerMain - Unexpected exception, exiting abnormally\n\
             java.net.BindException: Address already in use\n",
        );
        for i in 0..30 {
            log.push_str(&format!("\tat frame{i}(X.java:1)\n"));
        }
        log.push_str("2026-11-30 22:31:47,159 [myid:1] ERROR [main] ServiceUtils - Exiting JVM with code 1\n");
        let ex = excerpt(&log, 5);
        assert!(
            ex.iter().any(|l| l == "java.net.BindException: Address already in use"),
            "{ex:?}"
        );
        assert!(ex.contains(&"...".to_string()), "{ex:?}");
        assert_eq!(
            ex.last().unwrap(),
            "2026-11-30 22:31:47,159 [myid:1] ERROR [main] ServiceUtils - Exiting JVM with code 1"
        );
        assert_eq!(
            fatal_at_start(&log).as_deref(),
            Some("java.net.BindException: Address already in use")
        );
        let netty = "2026-11-30 22:31:47,154 [myid:1] WARN  [nioEventLoopGroup-4-1] ChannelInitializer - Failed to initialize a channel. Closing: [id: 0x1]\n\
                     java.lang.NoClassDefFoundError: io/netty/handler/codec/ByteToMessageDecoder\n\
                     \tat java.base/java.lang.ClassLoader.defineClass1(Native Method)\n\
                     Caused by: java.lang.ClassNotFoundException: io.netty.handler.codec.ByteToMessageDecoder\n";
        // A missing class is not fatal by itself: the node may serve without it.
        assert_eq!(fatal_at_start(netty), None);
        assert_eq!(
            missing_class(netty).as_deref(),
            Some("java.lang.NoClassDefFoundError: io/netty/handler/codec/ByteToMessageDecoder")
        );
        assert_eq!(
            fatal_at_start("2026-11-30 22:31:47,154 [myid:1] INFO  [main] X - fine\n"),
            None
        );
    }

    /// Debian 3.8.0 from a `lib/` with Jetty but without the servlet API: a WARN, and the node serves.
    #[test]
    fn a_missing_servlet_api_is_a_warning_not_a_fatal_sign() {
        let log = "\
2026-12-02 16:00:00,000 [myid:2] INFO  [main] QuorumPeerConfig - Reading configuration from: /x/zoo.cfg
2026-12-02 16:00:01,000 [myid:2] WARN  [main] QuorumPeer - Problem starting AdminServer
java.lang.NoClassDefFoundError: javax/servlet/Servlet
\tat org.apache.zookeeper.server.admin.AdminServerFactory.createAdminServer(AdminServerFactory.java:43)
2026-12-02 16:00:02,000 [myid:2] INFO  [QuorumPeer[myid=2]] QuorumPeer - Peer state changed: following - broadcast
";
        assert_eq!(fatal_at_start(log), None);
        let line = missing_class(log).unwrap();
        assert_eq!(line, "java.lang.NoClassDefFoundError: javax/servlet/Servlet");
        assert!(optional_part_missing(&line).contains("AdminServer"));
    }

    #[test]
    fn only_the_last_run_counts() {
        // An earlier run ran out of memory; the last one started fine and was killed from outside.
        let log = format!(
            "{OOM}2026-11-30 23:00:00,000 [myid:1] INFO  [main] QuorumPeerConfig - Reading configuration from: /x/zoo.cfg\n\
             2026-11-30 23:00:01,000 [myid:1] INFO  [main] QuorumPeer - Peer state changed: following - broadcast\n"
        );
        assert_eq!(diagnose(&log), None);
        assert_eq!(diagnose(""), None);
        assert!(diagnose(&log[..OOM.len()]).is_some());
    }

    #[test]
    fn a_java_that_exits_at_once_is_described_with_its_status_and_output() {
        let d = exited_at_once("/bin/false", "exit status 1", "").unwrap();
        assert_eq!(
            d.split(';').next().unwrap(),
            "`/bin/false` exited at once with exit status 1 and printed nothing"
        );
        let d = exited_at_once("/opt/j", "exit status 7", "no java here\n").unwrap();
        assert!(d.contains("exit status 7 and printed: no java here;"), "{d}");
        // ZooKeeper logged: not a java that failed at once.
        assert_eq!(exited_at_once("java", "exit status 1", OOM), None);
        // A known cause speaks for itself.
        assert_eq!(
            exited_at_once(
                "java",
                "exit status 1",
                "Unrecognized VM option 'X'\nError: Could not create the Java Virtual Machine.\n"
            ),
            None
        );
    }
}
