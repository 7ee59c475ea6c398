#!/usr/bin/env python3
"""zkdev's benchmark: zkdev against the tutorial way (baseline.sh), on this machine, alternating contenders.

Measures, over ROUNDS rounds (median and spread):
  1. up to all serving: 3+1 and 5+2, default and fast profile, zkdev vs baseline.sh with the same zoo.cfg
     timing values, AdminServer setting and JVM flags;
  2. kill-leader to a new leader serving (default and fast);
  3. status wall time, healthy and with one node paused, vs one FourLetterWordMain JVM per node;
  4. down to no JVM left, vs kill + wait in a script;
  5. peak RSS per node (default and fast), and zkdev's own CPU time as a share of the JVMs' during up;
and a scale table: up time and total memory for 3, 5, 7 and 9 voters (+1 observer), fast profile.

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


def run_timed(cmd, env=None):
    """Run cmd; return (wall seconds, own CPU seconds of the process, CompletedProcess-like)."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    out = p.stdout.read()
    err = p.stderr.read()
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed ({p.returncode}):\n{out}\n{err}")
    return wall, ru.ru_utime + ru.ru_stime, out


class Zkdev:
    def __init__(self, home):
        self.home = home
        self.env = dict(os.environ, ZKDEV_HOME=str(home), ZKDEV_CLUSTER="bench")
        self.env.pop("ZOOKEEPER_HOME", None)

    def __call__(self, *args):
        return run_timed([str(ZKDEV), *args], env=self.env)

    def status(self):
        return json.loads(self("status", "--json")[2])

    def pids(self):
        return jvms_under(self.home)


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
    args = ap.parse_args()
    rounds = 3 if args.quick else args.rounds
    if not ZKDEV.exists():
        subprocess.run(["cargo", "build", "--release", "--locked", "--quiet"], cwd=ROOT, check=True)
    busy = ports_free()
    if busy:
        sys.exit(f"bench: {busy}; stop what uses ports {2181 + OFFSET}.. first")

    work = Path(tempfile.mkdtemp(prefix="zkdev-bench-"))
    res = {k: [] for k in [
        "up31_default_zkdev", "up31_default_baseline", "up31_fast_zkdev", "up31_fast_baseline",
        "up52_default_zkdev", "up52_default_baseline", "up52_fast_zkdev", "up52_fast_baseline",
        "kill_default", "kill_fast", "status_healthy", "status_paused", "flwm_healthy", "flwm_paused",
        "down_zkdev", "down_baseline", "rss_default_mb", "rss_fast_mb", "zkdev_cpu_share",
    ]}
    try:
        # One zkdev home for the whole run: the class-data-sharing archive is recorded once and then used, as
        # it is for a user. A warm-up round per profile records it.
        zk = Zkdev(work / "home")
        for profile in ("default", "fast"):
            zk("up", "--profile", profile, "--port-offset", str(OFFSET), "--nodes", "3", "--observers", "1", "-q")
            zk("down", "--purge")
        for r in range(rounds):
            print(f"round {r + 1}/{rounds}", file=sys.stderr)
            for profile in ("default", "fast"):
                for voters, observers, key in ((3, 1, "up31"), (5, 2, "up52")):
                    order = ["zkdev", "baseline"] if r % 2 == 0 else ["baseline", "zkdev"]
                    for who in order:
                        if who == "zkdev":
                            pids_cpu0 = 0.0
                            wall, cpu, _ = zk("up", "--profile", profile, "--port-offset", str(OFFSET), "--nodes",
                                              str(voters), "--observers", str(observers), "-q")
                            res[f"{key}_{profile}_zkdev"].append(wall)
                            pids = zk.pids()
                            if key == "up31":
                                jvm_cpu = sum(proc_cpu_s(p) for p in pids) - pids_cpu0
                                res["zkdev_cpu_share"].append(cpu / jvm_cpu)
                                time.sleep(1.0)  # let the JVMs settle before reading peak RSS
                                res[f"rss_{profile}_mb"].extend(proc_status(p, "VmHWM") / 1024 for p in pids)
                                if profile == "default":
                                    measure_status(zk, res)
                                res[f"kill_{profile}"].append(json.loads(zk("kill-leader", "--json")[2])["new_leader_ms"] / 1000)
                                zk("up", "-q")
                            wall_down, _, _ = zk("down", "--purge")
                            if key == "up31" and profile == "default":
                                res["down_zkdev"].append(wall_down)
                            assert not zk.pids(), "zkdev down left JVMs"
                        else:
                            d = Path(tempfile.mkdtemp(dir=work))
                            wall, pids = baseline_up(voters, observers, profile, d)
                            res[f"{key}_{profile}_baseline"].append(wall)
                            t = baseline_down(pids)
                            reap()
                            if key == "up31" and profile == "default":
                                res["down_baseline"].append(t)
                            shutil.rmtree(d, ignore_errors=True)
        scale = [] if args.quick else measure_scale(zk)
    finally:
        kill_all(jvms_under(work))
        reap()
        shutil.rmtree(work, ignore_errors=True)

    report(res, scale, rounds)


def measure_status(zk, res):
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


def measure_scale(zk):
    rows = []
    for voters in (3, 5, 7, 9):
        walls, totals = [], []
        for _ in range(3):
            wall, _, _ = zk("up", "--profile", "fast", "--port-offset", str(OFFSET), "--nodes", str(voters),
                            "--observers", "1", "-q")
            time.sleep(1.0)
            totals.append(sum(proc_status(p, "VmRSS") for p in zk.pids()) / 1024)
            walls.append(wall)
            zk("down", "--purge")
        rows.append({"voters": voters, "observers": 1, "up_s": summary(walls), "total_rss_mb": summary(totals)})
    return rows


def fmt(s, unit="s", scale=1.0, digits=2):
    if not s:
        return "-"
    return f"{s['median'] * scale:.{digits}f} {unit} ({s['min'] * scale:.{digits}f}-{s['max'] * scale:.{digits}f})"


def report(res, scale, rounds):
    s = {k: summary(v) for k, v in res.items()}
    rows = [
        ("up 3+1 to all serving, default profile", fmt(s["up31_default_zkdev"]), fmt(s["up31_default_baseline"])),
        ("up 3+1 to all serving, fast profile", fmt(s["up31_fast_zkdev"]), fmt(s["up31_fast_baseline"])),
        ("up 5+2 to all serving, default profile", fmt(s["up52_default_zkdev"]), fmt(s["up52_default_baseline"])),
        ("up 5+2 to all serving, fast profile", fmt(s["up52_fast_zkdev"]), fmt(s["up52_fast_baseline"])),
        ("kill-leader to new leader serving, default", fmt(s["kill_default"]), "-"),
        ("kill-leader to new leader serving, fast", fmt(s["kill_fast"]), "-"),
        ("status, healthy 3+1", fmt(s["status_healthy"], "ms", 1000, 0), fmt(s["flwm_healthy"], "ms", 1000, 0)),
        ("status, one node paused", fmt(s["status_paused"], "ms", 1000, 0), fmt(s["flwm_paused"], "ms", 1000, 0)),
        ("down 3+1 to no JVM left", fmt(s["down_zkdev"]), fmt(s["down_baseline"])),
        ("peak RSS per node, default", fmt(s["rss_default_mb"], "MB", 1, 0), "-"),
        ("peak RSS per node, fast", fmt(s["rss_fast_mb"], "MB", 1, 0), "-"),
        ("zkdev CPU / JVMs' CPU during up 3+1", fmt(s["zkdev_cpu_share"], "%", 100, 1), "-"),
    ]
    w = max(len(r[0]) for r in rows)
    w2 = max(len(r[1]) for r in rows)
    lines = [f"zkdev benchmark: {rounds} rounds, median (min-max); baseline = bench/baseline.sh, or one "
             f"FourLetterWordMain JVM per node for status", "",
             f"{'measure':<{w}}  {'zkdev':<{w2}}  baseline"]
    lines += [f"{a:<{w}}  {b:<{w2}}  {c}" for a, b, c in rows]
    for key in ("default", "fast"):
        z, b = s[f"up31_{key}_zkdev"], s[f"up31_{key}_baseline"]
        if z and b:
            lines.append(f"up 3+1 {key}: zkdev / baseline = {z['median'] / b['median']:.2f}")
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
        {"rounds": rounds, "machine": machine, "summary": s, "raw": res, "scale": scale, "table": text},
        indent=2) + "\n")
    (out / "latest.txt").write_text(text + "\n")


if __name__ == "__main__":
    main()
