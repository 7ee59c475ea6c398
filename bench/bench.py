#!/usr/bin/env python3
"""zkdev's benchmark: zkdev against the tutorial way (baseline.sh), on this machine, alternating contenders.

Measures, over ROUNDS rounds (median and spread):
  1. up to all serving: 3+1 and 5+2, default and fast profile, zkdev vs baseline.sh with the same zoo.cfg
     timing values, AdminServer setting and JVM flags;
  2. kill-leader to a new leader serving (default and fast);
  3. status wall time, healthy and with one node paused, vs one FourLetterWordMain JVM per node;
  4. down to no JVM left, vs kill + wait in a script;
  5. peak RSS per node (default and fast), and zkdev's own CPU time as a share of the JVMs' during up;
  6. the supervisor's cost while idle with a healthy 3+1 (fast profile): CPU as percent of one core over a
     10 s window (utime+stime from /proc/<pid>/stat), VmRSS and VmHWM;
  7. status wall time with the supervisor answering (source=supervisor) and with it SIGKILLed (source=probe);
  8. (group net) what the proxies of `up --net` cost: an acknowledged write's median latency under `zkdev
     verify --kills 0` and kill-leader's new_leader_ms, direct vs --net (fast, 3 voters), and the
     supervisor's CPU while it proxies that write load;
  9. (group chaos) the register workload of `zkdev chaos` on a healthy 3+1 (fast, no faults, 5 clients as
     fast as each can): successful operations per second, and the linearizability checker's time on that
     run's history;
 10. (group reset) `zkdev reset` on a fast 3+1 with proxied links (`up --slot auto --net`): 1,000 znodes, 5 sessions
     with an ephemeral each and one link fault, reset; its wall time against the fresh `up` of the same cluster;
 11. (group chaos64) `zkdev chaos --clients 64 --duration 30s --rate 0 --nemesis none` on a healthy fast 3+1:
     the whole command's wall time and peak RSS (targets: a verdict within 60 s, under 500 MB), and the
     checker's time on that history;
 12. (group check) `zkdev check` on a generated register history of 100,000 operations from 10 clients, about 5 %
     without an answer (`zkdev gen-history`, zkdev's history.ndjson): the whole command's wall time on it
     and on the same history with one read's answer changed (target: a verdict, not inconclusive, within 1 s
     each), and the checker's own time; the same for the ZooKeeper model on a generated zk history (`gen-history
     --zk`: 10 sessions, 20 znodes, reads without sync up to two versions stale, 5 % of the writes without an
     answer; tampered: one session's read goes back in time);
 11. (group power) a power cut of one follower (`disk 2 --power-cut`, then `start 2`) to that node serving
     again, beside a plain `restart 2` to serving (fast, 3 voters, --disk-faults, a writer-free ensemble);
and a scale table: up time and total memory for 3, 5, 7 and 9 voters (+1 observer), fast profile.
Some measures have a target (TARGETS); the table says whether the median meets it.
`--only status,supervisor` runs only those groups (GROUPS), starting only the ensembles they need.

Prints a table and writes bench/results/latest.json. Needs: python3, java, Debian's zookeeper package,
a release build (built here if missing). Ports: 22181.. (offset 20000); nothing else may use them.
"""
import argparse
import json
import os
import resource
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ZKDEV = ROOT / "target" / "release" / "zkdev"
BASELINE = ROOT / "bench" / "baseline.sh"
OFFSET = 20000
JAVA_DIR = Path("/usr/share/java")
CP = ":".join(str(JAVA_DIR / j) for j in ["zookeeper.jar", "zookeeper-jute.jar", "slf4j-log4j12.jar", "log4j-1.2.jar"])

# The zoo.cfg timing values and JVM flags of zkdev's built-in profiles, for the baseline to use the same.
PROFILES = {
    "default": {"tick": 2000, "init": 10, "sync": 5, "admin": 1, "jvm": []},
    "fast": {
        "tick": 200, "init": 20, "sync": 10, "admin": 0,
        "jvm": ["-Xmx32m", "-Xms8m", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-Xss256k", "-XX:-UsePerfData",
                "-XX:ReservedCodeCacheSize=16m", "-XX:MaxMetaspaceSize=64m", "-XX:CICompilerCount=1"],
    },
}

# Measure groups for --only, and the result keys each one fills.
GROUPS = {
    "up": ["up31_default_zkdev", "up31_default_baseline", "up31_fast_zkdev", "up31_fast_baseline",
           "up52_default_zkdev", "up52_default_baseline", "up52_fast_zkdev", "up52_fast_baseline"],
    "kill": ["kill_default", "kill_fast"],
    "status": ["status_healthy", "status_paused", "flwm_healthy", "flwm_paused", "status_supervisor",
               "status_no_supervisor"],
    "down": ["down_zkdev", "down_baseline"],
    "rss": ["rss_default_mb", "rss_fast_mb"],
    "cpu": ["zkdev_cpu_share"],
    "supervisor": ["supervisor_cpu_pct", "supervisor_rss_mb", "supervisor_hwm_mb", "supervisor_threads"],
    "net": ["net_write_direct_ms", "net_write_proxied_ms", "net_write_ratio", "net_kill_direct_s",
            "net_kill_proxied_s", "net_kill_ratio", "net_supervisor_cpu_pct"],
    "chaos": ["chaos_ok_ops_per_s", "chaos_check_ms", "chaos_ops"],
    "reset": ["reset_s", "reset_took_ms", "reset_up_s"],
    "chaos64": ["chaos64_wall_s", "chaos64_rss_mb", "chaos64_check_ms", "chaos64_ops"],
    "power": ["power_cut_restart_s", "plain_restart_s"],
    "check": ["check_valid_s", "check_violation_s", "check_self_ms", "check_ops", "check_zk_valid_s",
              "check_zk_violation_s", "check_zk_self_ms"],
    "scale": [],
}

# Targets, checked against the median: (comparison, limit in the unit of the raw samples, as printed).
TARGETS = {
    "supervisor_cpu_pct": ("<", 1.0, "< 1 % of a core"),
    "supervisor_rss_mb": ("<", 16.0, "< 16 MB"),
    "supervisor_hwm_mb": ("<", 16.0, "< 16 MB"),
    "status_supervisor": ("<", 0.030, "< 30 ms"),
    "status_no_supervisor": ("<", 0.030, "< 30 ms"),
    "kill_fast": ("<=", 0.40, "<= 0.40 s (no slower than the previous median)"),
    "net_write_ratio": ("<", 1.10, "< 1.10 (proxies cost < 10 %)"),
    "net_kill_ratio": ("<", 1.10, "< 1.10 (proxies cost < 10 %)"),
    "reset_s": ("<=", 0.100, "<= 100 ms"),
    "chaos64_wall_s": ("<", 60.0, "< 60 s (30 s of workload, then the verdict)"),
    "chaos64_rss_mb": ("<", 500.0, "< 500 MB"),
    "check_valid_s": ("<", 1.0, "< 1 s, a verdict"),
    "check_violation_s": ("<", 1.0, "< 1 s, a verdict"),
    "check_zk_valid_s": ("<", 1.0, "< 1 s, a verdict"),
    "check_zk_violation_s": ("<", 1.0, "< 1 s, a verdict"),
}

SUPERVISOR_SETTLE_S = 2.0  # after up, before the idle window
SUPERVISOR_WINDOW_S = 10.0  # the idle window over which the supervisor's CPU time is read
STATUS_SAMPLES = 5  # status calls per round with, and without, a supervisor
NET_PORT_BASE = 24500  # the proxies of the --net cluster (21 ports for 3 nodes), clear of the node ports
NET_VERIFY_S = 5  # seconds of writes per verify run
CHAOS_S = 10  # seconds of the chaos workload per round
CHAOS_CLIENTS = 5
CHAOS64_S = 30  # the many-clients chaos run: 64 clients as fast as each can
CHAOS64_CLIENTS = 64
NET_WRITES_PER_S = 50
RESET_ZNODES = 1000  # persistent znodes before each reset: 10 parents of 99 children each
RESET_SESSIONS = 5  # sessions with an ephemeral znode each
CHECK_OPS = 100_000  # the generated history `zkdev check` times
CHECK_CLIENTS = 10
CHECK_UNKNOWN_PERCENT = 5


def jvms_under(path):
    pids = []
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            cmd = (p / "cmdline").read_bytes().decode(errors="replace")
            state = (p / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if "QuorumPeerMain" in cmd and str(path) in cmd and state not in ("Z", "X"):
            pids.append(int(p.name))
    return pids


def proc_status(pid, key):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])  # kB
    return 0


def proc_cpu_s(pid):
    f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def proc_alive(pid):
    """True while pid exists and is not a zombie."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return False


def supervisors_under(path):
    """Live `zkdev ... supervise` processes whose command line names path (the bench's home)."""
    pids = []
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            argv = (p / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        if "supervise" in argv and any(str(path) in a for a in argv) and proc_alive(int(p.name)):
            pids.append(int(p.name))
    return pids


def run_timed(cmd, env=None, usage=None):
    """Run cmd; return (wall seconds, own CPU seconds of the process, CompletedProcess-like). With a dict as
    `usage`, its "maxrss_mb" is set to the process's peak resident memory."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    out = p.stdout.read()
    err = p.stderr.read()
    p.returncode = os.waitstatus_to_exitcode(status)
    if usage is not None:
        usage["maxrss_mb"] = ru.ru_maxrss / 1024  # Linux: kilobytes
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed ({p.returncode}):\n{out}\n{err}")
    return wall, ru.ru_utime + ru.ru_stime, out


class Zkdev:
    def __init__(self, home):
        self.home = home
        self.env = dict(os.environ, ZKDEV_HOME=str(home), ZKDEV_CLUSTER="bench")
        self.env.pop("ZOOKEEPER_HOME", None)

    def __call__(self, *args, usage=None):
        return run_timed([str(ZKDEV), *args], env=self.env, usage=usage)

    def status(self):
        return json.loads(self("status", "--json")[2])

    def pids(self):
        return jvms_under(self.home)

    def supervisor_pid(self):
        """The pid in supervisor.json, checked to be a live `supervise` process of this home."""
        rec = json.loads((self.home / "clusters" / "bench" / "supervisor.json").read_text())
        pid = int(rec["pid"])
        if pid not in supervisors_under(self.home):
            raise RuntimeError(f"supervisor.json names pid {pid}, which is not a live supervisor of {self.home}")
        return pid


def down_purge(zk, extra):
    """`zkdev down --purge`; its wall time. Works around a race in zkdev (seen with the supervisor of
    2026-11-30): the supervisor removes supervisor.json before its process has exited, `down` then stops
    waiting for it, and the purge refuses because that still-running `zkdev` uses the cluster directory.
    When that is the only complaint and no JVM is left, wait for the supervisor to exit and purge again;
    every such retry is counted and printed under the table. The wall time is the first call's (every JVM
    was gone by then). Returns once the supervisor has exited too (for the same race it may outlive a
    successful `down` by a few ms), or after 5 s; the caller checks."""
    def supervisor_exited():
        deadline = time.monotonic() + 5
        while supervisors_under(zk.home) and time.monotonic() < deadline:
            time.sleep(0.005)

    t0 = time.perf_counter()
    try:
        wall = zk("down", "--purge")[0]
    except RuntimeError as e:
        wall = time.perf_counter() - t0
        msg = str(e)
        if "refusing to purge" not in msg or "(zkdev)" not in msg or zk.pids():
            raise
        supervisor_exited()
        extra["down_purge_retried"] += 1
        print("bench: zkdev down --purge refused while the exiting supervisor still ran; purged again",
              file=sys.stderr)
        zk("down", "--purge")
    supervisor_exited()
    return wall


def kill_all(pids):
    for p in pids:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass


def baseline_up(voters, observers, profile, workdir):
    p = PROFILES[profile]
    cmd = [str(BASELINE), str(workdir), str(voters), str(observers), str(OFFSET), str(p["tick"]), str(p["init"]),
           str(p["sync"]), str(p["admin"]), *p["jvm"]]
    wall, _, out = run_timed(cmd)
    pids = [int(x) for x in (workdir / "pids").read_text().split()]
    return wall, pids


def baseline_down(pids):
    t0 = time.perf_counter()
    for p in pids:
        os.kill(p, signal.SIGTERM)
    while any(Path(f"/proc/{p}").exists() and Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
              for p in pids if Path(f"/proc/{p}").exists()):
        time.sleep(0.005)
    return time.perf_counter() - t0


def flwm_status(ports):
    """The zkServer.sh way: one FourLetterWordMain JVM per node (its own 5 s socket timeout)."""
    t0 = time.perf_counter()
    for port in ports:
        r = subprocess.run(["java", "-cp", CP, "org.apache.zookeeper.client.FourLetterWordMain", "127.0.0.1",
                            str(port), "srvr"], capture_output=True, text=True)
        assert "Usage" not in r.stdout + r.stderr, r.stdout + r.stderr
    return time.perf_counter() - t0


def reap():
    """Collect zombies of JVMs this script started (baseline)."""
    try:
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass
    except ChildProcessError:
        pass


def summary(values):
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


def ports_free():
    for base in (2180, 2880, 3880, 8080):
        for i in range(1, 12):
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as ZooKeeper binds: TIME_WAIT is fine
            try:
                s.bind(("127.0.0.1", base + i + OFFSET))
            except OSError:
                return f"port {base + i + OFFSET} is in use"
            finally:
                s.close()
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="3 rounds, no scale table (a smoke run of the benchmark)")
    ap.add_argument("--only", metavar="GROUP,...",
                    help=f"run only these measure groups ({', '.join(GROUPS)}); default: all")
    args = ap.parse_args()
    rounds = 3 if args.quick else args.rounds
    if args.only:
        sel = {g.strip() for g in args.only.split(",") if g.strip()}
        unknown = sel - set(GROUPS)
        if unknown or not sel:
            ap.error(f"--only: unknown group(s) {', '.join(sorted(unknown)) or '(none given)'}; "
                     f"choose from {', '.join(GROUPS)}")
    else:
        sel = set(GROUPS)
    if args.quick:
        sel.discard("scale")
    if not ZKDEV.exists():
        subprocess.run(["cargo", "build", "--release", "--locked", "--quiet"], cwd=ROOT, check=True)
    busy = ports_free()
    if busy:
        sys.exit(f"bench: {busy}; stop what uses ports {2181 + OFFSET}.. first")

    # A SIGTERM ends the run through the finally below (down --purge, nothing left running).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    work = Path(tempfile.mkdtemp(prefix="zkdev-bench-"))
    res = {k: [] for g in GROUPS.values() for k in g}
    extra = {"status_source_mismatch": 0, "down_purge_retried": 0}
    scale = []
    # One zkdev home for the whole run: the class-data-sharing archive is recorded once and then used, as it
    # is for a user. A warm-up round per profile records it.
    zk = Zkdev(work / "home")
    try:
        profiles = [p for p in ("default", "fast") if any(needs_zkdev(sel, p, k) for k in ("up31", "up52"))]
        if sel & {"scale", "net", "chaos", "chaos64"} and "fast" not in profiles:
            profiles.append("fast")
        for profile in profiles:
            zk("up", "--profile", profile, "--port-offset", str(OFFSET), "--nodes", "3", "--observers", "1", "-q")
            down_purge(zk, extra)
        for r in range(rounds):
            print(f"round {r + 1}/{rounds}", file=sys.stderr)
            for profile in ("default", "fast"):
                for voters, observers, key in ((3, 1, "up31"), (5, 2, "up52")):
                    order = ["zkdev", "baseline"] if r % 2 == 0 else ["baseline", "zkdev"]
                    for who in order:
                        if who == "zkdev" and needs_zkdev(sel, profile, key):
                            wall, cpu, _ = zk("up", "--profile", profile, "--port-offset", str(OFFSET), "--nodes",
                                              str(voters), "--observers", str(observers), "-q")
                            if "up" in sel:
                                res[f"{key}_{profile}_zkdev"].append(wall)
                            pids = zk.pids()
                            if key == "up31":
                                if "cpu" in sel:
                                    res["zkdev_cpu_share"].append(cpu / sum(proc_cpu_s(p) for p in pids))
                                if "rss" in sel:
                                    time.sleep(1.0)  # let the JVMs settle before reading peak RSS
                                    res[f"rss_{profile}_mb"].extend(proc_status(p, "VmHWM") / 1024 for p in pids)
                                if profile == "default" and "status" in sel:
                                    measure_status(zk, res, extra)
                                if profile == "fast" and "supervisor" in sel:
                                    measure_supervisor(zk, res)
                                if "kill" in sel:
                                    res[f"kill_{profile}"].append(
                                        json.loads(zk("kill-leader", "--json")[2])["new_leader_ms"] / 1000)
                                    zk("up", "-q")
                            wall_down = down_purge(zk, extra)
                            if key == "up31" and profile == "default" and "down" in sel:
                                res["down_zkdev"].append(wall_down)
                            assert not zk.pids(), "zkdev down left JVMs"
                            assert not supervisors_under(zk.home), "zkdev down left the supervisor running"
                        elif who == "baseline" and needs_baseline(sel, profile, key):
                            d = Path(tempfile.mkdtemp(dir=work))
                            wall, pids = baseline_up(voters, observers, profile, d)
                            if "up" in sel:
                                res[f"{key}_{profile}_baseline"].append(wall)
                            t = baseline_down(pids)
                            reap()
                            if key == "up31" and profile == "default" and "down" in sel:
                                res["down_baseline"].append(t)
                            shutil.rmtree(d, ignore_errors=True)
        if "net" in sel:
            for r in range(rounds):
                print(f"net round {r + 1}/{rounds}", file=sys.stderr)
                measure_net(zk, res, extra, proxied_first=r % 2 == 1)
        if "chaos" in sel:
            for r in range(rounds):
                print(f"chaos round {r + 1}/{rounds}", file=sys.stderr)
                measure_chaos(zk, res, extra, work / f"chaos-{r}")
        if "reset" in sel:
            for r in range(rounds):
                print(f"reset round {r + 1}/{rounds}", file=sys.stderr)
                measure_reset(work, res)
        if "chaos64" in sel:
            for r in range(rounds):
                print(f"chaos64 round {r + 1}/{rounds}", file=sys.stderr)
                measure_chaos64(zk, res, extra, work / f"chaos64-{r}")
        if "power" in sel:
            measure_power(zk, res, extra, rounds)
        if "check" in sel:
            measure_check(work, res, rounds)
        if "scale" in sel:
            scale = measure_scale(zk, extra)
    finally:
        # However the run ends: zkdev stops its cluster and supervisor and removes the cluster; whatever is
        # still running under the bench's directory (a baseline JVM, a supervisor down could not reach) is
        # killed.
        try:
            down_purge(zk, extra)
        except Exception as e:  # noqa: BLE001 - report and carry on cleaning up
            print(f"bench: zkdev down --purge failed: {e}", file=sys.stderr)
        kill_all(jvms_under(work) + supervisors_under(work))
        reap()
        shutil.rmtree(work, ignore_errors=True)

    report(res, scale, rounds, sel, extra)


def needs_zkdev(sel, profile, key):
    """Does this run start a zkdev ensemble of this profile and size in each round?"""
    if "up" in sel:
        return True
    if key != "up31":
        return False
    return bool(sel & {"rss", "cpu", "kill"}) or (profile == "default" and bool(sel & {"status", "down"})) \
        or (profile == "fast" and "supervisor" in sel)


def needs_baseline(sel, profile, key):
    return "up" in sel or (key == "up31" and profile == "default" and "down" in sel)


def measure_status(zk, res, extra):
    ports = [n["client_port"] for n in zk.status()["nodes"]]
    res["status_healthy"].append(zk("status")[0])
    res["flwm_healthy"].append(flwm_status(ports))
    follower = next(n for n in zk.status()["nodes"] if n["mode"] == "follower")
    os.kill(follower["pid"], signal.SIGSTOP)
    try:
        time.sleep(0.05)
        res["status_paused"].append(zk("status")[0])
        res["flwm_paused"].append(flwm_status(ports))
    finally:
        os.kill(follower["pid"], signal.SIGCONT)
    zk("wait", "--timeout", "30")
    measure_status_supervisor(zk, res, extra)


def timed_status(zk, source):
    """Wall time of one `zkdev status --json`, or None when it did not answer from `source`."""
    wall, _, out = zk("status", "--json")
    return wall if json.loads(out).get("source") == source else None


def measure_status_supervisor(zk, res, extra):
    """status with the supervisor answering, then with the supervisor SIGKILLed (the JVMs keep serving and
    status probes them itself); a new supervisor is started afterwards and adopts the JVMs. The timed calls
    are `status --json`, so that the source of every sample is known; a sample from the other source is
    counted, not kept."""
    # The view must be fresh and healthy again after the paused follower: wait until status says so.
    deadline = time.monotonic() + 10
    while zk.status().get("source") != "supervisor":
        if time.monotonic() > deadline:
            raise RuntimeError("zkdev status never answered from the supervisor (source=supervisor) "
                               "on a healthy 3+1 within 10 s")
        time.sleep(0.1)
    for _ in range(STATUS_SAMPLES):
        wall = timed_status(zk, "supervisor")
        if wall is None:
            extra["status_source_mismatch"] += 1
        else:
            res["status_supervisor"].append(wall)
        time.sleep(0.05)

    old = zk.supervisor_pid()
    jvms = sorted(zk.pids())
    os.kill(old, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while proc_alive(old):
        if time.monotonic() > deadline:
            raise RuntimeError(f"the supervisor (pid {old}) survived SIGKILL for 5 s")
        time.sleep(0.01)
    assert sorted(zk.pids()) == jvms, "the JVMs did not outlive their supervisor"
    st = zk.status()
    if st.get("source") != "probe":
        raise RuntimeError(f"status with the supervisor killed answered from {st.get('source')!r}, not 'probe'")
    for _ in range(STATUS_SAMPLES):
        wall = timed_status(zk, "probe")
        if wall is None:
            extra["status_source_mismatch"] += 1
        else:
            res["status_no_supervisor"].append(wall)
        time.sleep(0.05)

    # Back to a supervised cluster: `start all` needs a supervisor, starts one, and it adopts the JVMs.
    zk("start", "all")
    new = zk.supervisor_pid()
    assert new != old, "no new supervisor after `zkdev start all`"
    assert sorted(zk.pids()) == jvms, "`zkdev start all` replaced running JVMs instead of adopting them"


def measure_supervisor(zk, res):
    """The supervisor's own cost with a healthy, idle ensemble: CPU time over a window (utime+stime of all
    its threads, /proc/<pid>/stat) as percent of one core, and its resident memory now and at peak."""
    time.sleep(SUPERVISOR_SETTLE_S)
    pid = zk.supervisor_pid()
    c0, t0 = proc_cpu_s(pid), time.perf_counter()
    time.sleep(SUPERVISOR_WINDOW_S)
    c1, t1 = proc_cpu_s(pid), time.perf_counter()
    if zk.supervisor_pid() != pid:
        raise RuntimeError(f"the supervisor (pid {pid}) was replaced during the idle window")
    res["supervisor_cpu_pct"].append((c1 - c0) / (t1 - t0) * 100)
    res["supervisor_rss_mb"].append(proc_status(pid, "VmRSS") / 1024)
    res["supervisor_hwm_mb"].append(proc_status(pid, "VmHWM") / 1024)
    res["supervisor_threads"].append(proc_status(pid, "Threads"))


def measure_net(zk, res, extra, proxied_first):
    """One round of the proxies' cost: a fast 3-voter cluster direct and one with --net (alternating which
    goes first). On each: `verify --kills 0` writes NET_WRITES_PER_S znodes/s for NET_VERIFY_S s through the
    connect string (through the client proxies on --net) with a real client and reports the acknowledged
    writes' latency; the supervisor's CPU (utime+stime, /proc/<pid>/stat) is read over that run; then
    `kill-leader --json` gives new_leader_ms. The ratios are per round (proxied / direct)."""
    got = {}
    for proxied in ([True, False] if proxied_first else [False, True]):
        net = ["--net", "--net-port-base", str(NET_PORT_BASE)] if proxied else []
        zk("up", "--profile", "fast", "--port-offset", str(OFFSET), "--nodes", "3", "-q", *net)
        pid = zk.supervisor_pid()
        c0, t0 = proc_cpu_s(pid), time.perf_counter()
        out = json.loads(zk("verify", "--kills", "0", "--duration", str(NET_VERIFY_S), "--writes-per-sec",
                            str(NET_WRITES_PER_S), "--json")[2])
        c1, t1 = proc_cpu_s(pid), time.perf_counter()
        if not out["ok"] or out["latency_ms"] is None:
            raise RuntimeError(f"verify on the {'--net' if proxied else 'direct'} cluster failed: {out}")
        kill = json.loads(zk("kill-leader", "--json")[2])["new_leader_ms"] / 1000
        key = "proxied" if proxied else "direct"
        got[key] = (out["latency_ms"]["p50"], kill)
        res[f"net_write_{key}_ms"].append(out["latency_ms"]["p50"])
        res[f"net_kill_{key}_s"].append(kill)
        if proxied:
            res["net_supervisor_cpu_pct"].append((c1 - c0) / (t1 - t0) * 100)
        down_purge(zk, extra)
        assert not zk.pids(), "zkdev down left JVMs"
    res["net_write_ratio"].append(got["proxied"][0] / got["direct"][0])
    res["net_kill_ratio"].append(got["proxied"][1] / got["direct"][1])


def measure_chaos(zk, res, extra, out):
    """The register workload of `zkdev chaos` on a healthy fast 3+1 without faults: CHAOS_CLIENTS clients,
    each as fast as it can, for CHAOS_S s; successful operations per second, and how long the checker took
    on the recorded history (as chaos reports it: `verdict.check_ms`)."""
    zk("up", "--profile", "fast", "--port-offset", str(OFFSET), "--nodes", "3", "--observers", "1", "-q")
    r = json.loads(zk("chaos", "--duration", f"{CHAOS_S}s", "--nemesis", "none", "--rate", "0", "--clients",
                      str(CHAOS_CLIENTS), "--json", "--out", str(out))[2])
    if not r["ok"]:
        raise RuntimeError(f"chaos on a healthy ensemble found a violation: {r['verdict']}")
    res["chaos_ok_ops_per_s"].append(r["ops"]["ok_per_sec"])
    res["chaos_check_ms"].append(r["verdict"]["check_ms"])
    res["chaos_ops"].append(r["ops"]["total"])
    down_purge(zk, extra)
    assert not zk.pids(), "zkdev down left JVMs"


class Jute:
    """A ZooKeeper client of a few lines (jute over TCP), enough to make znodes fast: every create is sent
    before the first answer is read (one session's requests are applied in order)."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.send(struct.pack(">iqiqi16s?", 0, 0, 30000, 0, 16, b"\0" * 16, False))
        self.recv()

    def send(self, body):
        self.sock.sendall(struct.pack(">i", len(body)) + body)

    def recv(self):
        def exact(n):
            buf = b""
            while len(buf) < n:
                chunk = self.sock.recv(n - len(buf))
                if not chunk:
                    raise RuntimeError("ZooKeeper closed the connection")
                buf += chunk
            return buf
        (n,) = struct.unpack(">i", exact(4))
        return exact(n)

    def create_all(self, paths, ephemeral=False):
        def s(b):
            return struct.pack(">i", len(b)) + b
        acl = struct.pack(">ii", 1, 31) + s(b"world") + s(b"anyone")
        for xid, path in enumerate(paths, 1):
            self.send(struct.pack(">ii", xid, 1) + s(path.encode()) + s(b"x") + acl +
                      struct.pack(">i", 1 if ephemeral else 0))
        for _ in paths:
            xid, _zxid, err = struct.unpack(">iqi", self.recv()[:16])
            if err != 0:
                raise RuntimeError(f"create #{xid} failed with ZooKeeper error {err}")

    def close(self):
        self.sock.close()


def measure_reset(work, res):
    """A fresh fast 3+1 with proxied links on a port slot of its own; RESET_ZNODES znodes, RESET_SESSIONS
    sessions with an ephemeral each, a 20 ms delay on the link 1-2; then `zkdev reset --json`, timed from
    outside (what a test pays between two tests) and as the command measured itself (took_ms). Checks that
    the reset did what it says."""
    zk = Zkdev(work / "reset-home")
    try:
        up_wall, _, _ = zk("up", "--slot", "auto", "--net", "--profile", "fast", "--nodes", "3", "--observers", "1",
                           "-q")
        res["reset_up_s"].append(up_wall)
        st = zk.status()
        ports = [n["client_port"] for n in st["nodes"]]
        maker = Jute(ports[0])
        parents = [f"/p{i}" for i in range(10)]
        maker.create_all(parents + [f"{p}/c{j}" for p in parents for j in range(99)])
        maker.close()
        holders = []
        for i in range(RESET_SESSIONS):
            h = Jute(ports[i % len(ports)])
            h.create_all([f"/eph{i}"], ephemeral=True)
            holders.append(h)
        zk("link", "1", "2", "--delay", "20ms")
        wall, _, out = zk("reset", "--json")
        r = json.loads(out)
        for h in holders:
            h.close()
        if r["znodes_deleted"] < RESET_ZNODES or r["sessions_closed"] < RESET_SESSIONS or not r["faults_healed"]:
            raise RuntimeError(f"reset did less than asked: {r}")
        res["reset_s"].append(wall)
        res["reset_took_ms"].append(r["took_ms"])
    finally:
        zk("down", "--purge")


def measure_chaos64(zk, res, extra, out):
    """Many clients on one healthy fast 3+1: `zkdev chaos --clients 64 --duration 30s --rate 0 --nemesis none`,
    timed from outside (workload, check and report: the whole command) with the command's peak resident
    memory (ru_maxrss from wait4), and the checker's own time on that history."""
    zk("up", "--profile", "fast", "--port-offset", str(OFFSET), "--nodes", "3", "--observers", "1", "-q")
    usage = {}
    wall, _, text = zk("chaos", "--duration", f"{CHAOS64_S}s", "--nemesis", "none", "--rate", "0", "--clients",
                       str(CHAOS64_CLIENTS), "--json", "--out", str(out), usage=usage)
    r = json.loads(text)
    if not r["ok"]:
        raise RuntimeError(f"chaos with {CHAOS64_CLIENTS} clients on a healthy ensemble did not pass: {r['verdict']}")
    res["chaos64_wall_s"].append(wall)
    res["chaos64_rss_mb"].append(usage["maxrss_mb"])
    res["chaos64_check_ms"].append(r["verdict"]["check_ms"])
    res["chaos64_ops"].append(r["ops"]["total"])


def measure_check(work, res, rounds):
    """`zkdev check` on generated histories (no ensemble): one linearizable, one with a read's answer changed,
    each round timed from outside (the whole command: reading, parsing, checking, the excerpt)."""
    files = {}
    for model, zk in (("", []), ("zk_", ["--zk"])):
        for name, tamper in (("valid", []), ("violation", ["--tamper"])):
            path = work / f"check-{model}{name}.ndjson"
            with open(path, "w") as f:  # straight to the file: 20 MB would fill a pipe nobody reads yet
                subprocess.run([str(ZKDEV), "gen-history", "--ops", str(CHECK_OPS), "--clients", str(CHECK_CLIENTS),
                                "--unknown-percent", str(CHECK_UNKNOWN_PERCENT), "--seed", "1", *tamper, *zk],
                               stdout=f, check=True)
            files[(model, name)] = path
    for r in range(rounds):
        print(f"check round {r + 1}/{rounds}", file=sys.stderr)
        for (model, name), path in files.items():
            t0 = time.perf_counter()
            p = subprocess.run([str(ZKDEV), "check", str(path), "--json"], capture_output=True, text=True)
            wall = time.perf_counter() - t0
            want = 0 if name == "valid" else 1
            out = json.loads(p.stdout) if p.stdout else {}
            if p.returncode != want or out.get("verdict") != name or (model == "zk_") != (out.get("model") == "zk"):
                raise RuntimeError(f"zkdev check on the {model}{name} history: exit {p.returncode}, "
                                   f"{p.stdout[:300]} {p.stderr[:300]}")
            res[f"check_{model}{name}_s"].append(wall)
            if name == "valid":
                res[f"check_{model}self_ms"].append(out["check_ms"])
                if not model:
                    res["check_ops"].append(out["ops"])


def serving_again(zk, node, t0, timeout=60.0):
    """Seconds from t0 until `node` answers as a follower or leader."""
    while time.monotonic() - t0 < timeout:
        for n in zk.status()["nodes"]:
            if n["id"] == node and n["mode"] in ("follower", "leader"):
                return time.monotonic() - t0
        time.sleep(0.05)
    raise RuntimeError(f"node {node} did not serve again within {timeout:.0f} s")


def measure_power(zk, res, extra, rounds):
    """Node 2 of a fast 3-voter --disk-faults ensemble: `disk 2 --power-cut` + `start 2` to serving, and
    `restart 2` to serving, alternating which goes first."""
    zk("up", "--profile", "fast", "--port-offset", str(OFFSET), "--nodes", "3", "--disk-faults", "-q")
    for r in range(rounds):
        print(f"power round {r + 1}/{rounds}", file=sys.stderr)
        for which in (("cut", "plain") if r % 2 == 0 else ("plain", "cut")):
            t0 = time.monotonic()
            if which == "cut":
                zk("disk", "2", "--power-cut", "-q")
                zk("start", "2", "-q")
                res["power_cut_restart_s"].append(serving_again(zk, 2, t0))
            else:
                zk("restart", "2", "-q")
                res["plain_restart_s"].append(serving_again(zk, 2, t0))
    down_purge(zk, extra)
    assert not zk.pids(), "zkdev down left JVMs"


def measure_scale(zk, extra):
    rows = []
    for voters in (3, 5, 7, 9):
        walls, totals = [], []
        for _ in range(3):
            wall, _, _ = zk("up", "--profile", "fast", "--port-offset", str(OFFSET), "--nodes", str(voters),
                            "--observers", "1", "-q")
            time.sleep(1.0)
            totals.append(sum(proc_status(p, "VmRSS") for p in zk.pids()) / 1024)
            walls.append(wall)
            down_purge(zk, extra)
        rows.append({"voters": voters, "observers": 1, "up_s": summary(walls), "total_rss_mb": summary(totals)})
    return rows


def fmt(s, unit="s", scale=1.0, digits=2):
    if not s:
        return "-"
    return f"{s['median'] * scale:.{digits}f} {unit} ({s['min'] * scale:.{digits}f}-{s['max'] * scale:.{digits}f})"


def check_target(key, summ):
    """The target of key and whether the median meets it, for the table and latest.json (None: no target)."""
    if key not in TARGETS:
        return None
    op, limit, text = TARGETS[key]
    met = None
    if summ:
        met = summ["median"] < limit if op == "<" else summ["median"] <= limit
    return {"op": op, "limit": limit, "text": text, "median": summ["median"] if summ else None, "met": met}


def report(res, scale, rounds, sel, extra):
    s = {k: summary(v) for k, v in res.items()}
    targets = {k: check_target(k, s[k]) for k in TARGETS}
    # (group, label, zkdev key, zkdev cell, baseline cell)
    rows = [
        ("up", "up 3+1 to all serving, default profile", "up31_default_zkdev", fmt(s["up31_default_zkdev"]),
         fmt(s["up31_default_baseline"])),
        ("up", "up 3+1 to all serving, fast profile", "up31_fast_zkdev", fmt(s["up31_fast_zkdev"]),
         fmt(s["up31_fast_baseline"])),
        ("up", "up 5+2 to all serving, default profile", "up52_default_zkdev", fmt(s["up52_default_zkdev"]),
         fmt(s["up52_default_baseline"])),
        ("up", "up 5+2 to all serving, fast profile", "up52_fast_zkdev", fmt(s["up52_fast_zkdev"]),
         fmt(s["up52_fast_baseline"])),
        ("kill", "kill-leader to new leader serving, default", "kill_default", fmt(s["kill_default"]), "-"),
        ("kill", "kill-leader to new leader serving, fast", "kill_fast", fmt(s["kill_fast"]), "-"),
        ("status", "status, healthy 3+1", "status_healthy", fmt(s["status_healthy"], "ms", 1000, 0),
         fmt(s["flwm_healthy"], "ms", 1000, 0)),
        ("status", "status, one node paused", "status_paused", fmt(s["status_paused"], "ms", 1000, 0),
         fmt(s["flwm_paused"], "ms", 1000, 0)),
        ("status", "status --json, healthy 3+1, from the supervisor", "status_supervisor",
         fmt(s["status_supervisor"], "ms", 1000, 0), "-"),
        ("status", "status --json, healthy 3+1, supervisor killed", "status_no_supervisor",
         fmt(s["status_no_supervisor"], "ms", 1000, 0), "-"),
        ("down", "down 3+1 to no JVM left", "down_zkdev", fmt(s["down_zkdev"]), fmt(s["down_baseline"])),
        ("rss", "peak RSS per node, default", "rss_default_mb", fmt(s["rss_default_mb"], "MB", 1, 0), "-"),
        ("rss", "peak RSS per node, fast", "rss_fast_mb", fmt(s["rss_fast_mb"], "MB", 1, 0), "-"),
        ("cpu", "zkdev CPU / JVMs' CPU during up 3+1", "zkdev_cpu_share", fmt(s["zkdev_cpu_share"], "%", 100, 1),
         "-"),
        ("supervisor", "supervisor CPU, idle 3+1 fast, % of a core", "supervisor_cpu_pct",
         fmt(s["supervisor_cpu_pct"], "%", 1, 2), "-"),
        ("supervisor", "supervisor VmRSS, idle 3+1 fast", "supervisor_rss_mb",
         fmt(s["supervisor_rss_mb"], "MB", 1, 1), "-"),
        ("supervisor", "supervisor VmHWM, idle 3+1 fast", "supervisor_hwm_mb",
         fmt(s["supervisor_hwm_mb"], "MB", 1, 1), "-"),
        ("net", "write latency p50, 3 voters fast, --net (direct)", "net_write_proxied_ms",
         fmt(s["net_write_proxied_ms"], "ms", 1, 2), fmt(s["net_write_direct_ms"], "ms", 1, 2)),
        ("net", "write latency --net / direct, per round", "net_write_ratio", fmt(s["net_write_ratio"], "x", 1, 2),
         "-"),
        ("net", "kill-leader to new leader, --net (direct)", "net_kill_proxied_s", fmt(s["net_kill_proxied_s"]),
         fmt(s["net_kill_direct_s"])),
        ("net", "kill-leader --net / direct, per round", "net_kill_ratio", fmt(s["net_kill_ratio"], "x", 1, 2), "-"),
        ("net", "supervisor CPU proxying 50 writes/s, % of a core", "net_supervisor_cpu_pct",
         fmt(s["net_supervisor_cpu_pct"], "%", 1, 2), "-"),
        ("chaos", f"chaos register workload, healthy 3+1 fast, {CHAOS_CLIENTS} clients: ok ops/s",
         "chaos_ok_ops_per_s", fmt(s["chaos_ok_ops_per_s"], "ops/s", 1, 0), "-"),
        ("chaos", "linearizability check of that history" + (f" ({s['chaos_ops']['median']:.0f} ops)"
                                                             if s["chaos_ops"] else ""),
         "chaos_check_ms", fmt(s["chaos_check_ms"], "ms", 1, 1), "-"),
        ("reset", f"reset: {RESET_ZNODES} znodes, {RESET_SESSIONS} sessions, 1 link fault, 3+1 fast --net "
         "(fresh up)", "reset_s", fmt(s["reset_s"], "ms", 1000, 0), fmt(s["reset_up_s"])),
        ("reset", "  as reset measured itself (took_ms)", "reset_took_ms", fmt(s["reset_took_ms"], "ms", 1, 0), "-"),
        ("chaos64", f"chaos {CHAOS64_CLIENTS} clients, {CHAOS64_S} s, rate 0, healthy 3+1 fast: whole command",
         "chaos64_wall_s", fmt(s["chaos64_wall_s"]), "-"),
        ("chaos64", "  its peak RSS (the zkdev chaos process)", "chaos64_rss_mb", fmt(s["chaos64_rss_mb"], "MB", 1, 0),
         "-"),
        ("chaos64", "  linearizability check of that history" + (f" ({s['chaos64_ops']['median']:.0f} ops)"
                                                               if s["chaos64_ops"] else ""),
         "chaos64_check_ms", fmt(s["chaos64_check_ms"], "ms", 1, 1), "-"),
        ("check", f"check: generated register history, {CHECK_CLIENTS} clients, ~{CHECK_UNKNOWN_PERCENT} % unknown"
         + (f" ({s['check_ops']['median']:.0f} ops): valid" if s["check_ops"] else ": valid"),
         "check_valid_s", fmt(s["check_valid_s"], "ms", 1000, 0), "-"),
        ("check", "  the same with one read's answer changed: violation", "check_violation_s",
         fmt(s["check_violation_s"], "ms", 1000, 0), "-"),
        ("check", "  the checker's own time on the valid one (check_ms)", "check_self_ms",
         fmt(s["check_self_ms"], "ms", 1, 1), "-"),
        ("check", "check --model zk: generated zk history, same size, reads without sync: valid", "check_zk_valid_s",
         fmt(s["check_zk_valid_s"], "ms", 1000, 0), "-"),
        ("check", "  the same with one session's read going back in time: violation", "check_zk_violation_s",
         fmt(s["check_zk_violation_s"], "ms", 1000, 0), "-"),
        ("check", "  the ZooKeeper model's own time on the valid one (check_ms)", "check_zk_self_ms",
         fmt(s["check_zk_self_ms"], "ms", 1, 1), "-"),
        ("power", "power cut of a follower + start, to serving", "power_cut_restart_s",
         fmt(s["power_cut_restart_s"]), "-"),
        ("power", "plain restart of that follower, to serving", "plain_restart_s", fmt(s["plain_restart_s"]), "-"),
    ]

    def target_cell(key):
        t = targets.get(key)
        if not t:
            return ""
        return f"{t['text']}: " + ("-" if t["met"] is None else "met" if t["met"] else "MISSED")

    table = [(label, z, b, target_cell(key)) for group, label, key, z, b in rows if group in sel]
    header = ("measure", "zkdev", "baseline", "target")
    w = [max(len(r[i]) for r in table + [header]) for i in range(3)]
    only = "" if sel == set(GROUPS) else f"; only {','.join(g for g in GROUPS if g in sel)}"
    lines = [f"zkdev benchmark: {rounds} rounds{only}, median (min-max); baseline = bench/baseline.sh, or one "
             f"FourLetterWordMain JVM per node for status", ""]
    lines += [f"{a:<{w[0]}}  {b:<{w[1]}}  {c:<{w[2]}}  {d}".rstrip() for a, b, c, d in [header] + table]
    for key in ("default", "fast"):
        z, b = s[f"up31_{key}_zkdev"], s[f"up31_{key}_baseline"]
        if z and b:
            lines.append(f"up 3+1 {key}: zkdev / baseline = {z['median'] / b['median']:.2f}")
    if "status" in sel and extra["status_source_mismatch"]:
        lines.append(f"status: {extra['status_source_mismatch']} timed call(s) answered from the other source "
                     f"(left out of the two status --json rows)")
    if "supervisor" in sel and s["supervisor_threads"]:
        lines.append(f"supervisor: {s['supervisor_threads']['median']:.0f} threads; CPU over "
                     f"{SUPERVISOR_WINDOW_S:.0f} s windows after {SUPERVISOR_SETTLE_S:.0f} s of settling")
    if extra["down_purge_retried"]:
        lines.append(f"zkdev down --purge: refused {extra['down_purge_retried']} time(s) because the supervisor had "
                     f"not exited yet (a zkdev race); purged again")
    missed = [k for k, t in targets.items() if t["met"] is False]
    if missed:
        lines.append("targets missed: " + ", ".join(missed))
    if scale:
        lines += ["", "scale (fast profile, 3 rounds): voters+observers, up to all serving, total RSS of all nodes"]
        for r in scale:
            lines.append(f"  {r['voters']}+{r['observers']}: {fmt(r['up_s'])}, {fmt(r['total_rss_mb'], 'MB', 1, 0)}")
    text = "\n".join(lines)
    print(text)
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    machine = {"cores": os.cpu_count(), "mem_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30)}
    (out / "latest.json").write_text(json.dumps(
        {"rounds": rounds, "only": sorted(sel) if only else None, "machine": machine, "summary": s,
         "targets": targets, "raw": res, "extra": extra, "scale": scale, "table": text},
        indent=2) + "\n")
    (out / "latest.txt").write_text(text + "\n")

if __name__ == "__main__":
    main()
