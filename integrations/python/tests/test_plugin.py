"""The plugin as a user meets it: a pytest run in a subprocess, killed or run twice with --zkdev-reuse."""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time

import pytest

from conftest import wait_until
from pytest_zkdev import Ensemble, find_zkdev

INNER_TEST = textwrap.dedent(
    """
    import json, os, time

    def test_hold(zk_session_ensemble):
        status = zk_session_ensemble.status()
        with open(os.environ["REPORT"], "w") as f:
            json.dump({"home": zk_session_ensemble.home, "cluster": zk_session_ensemble.cluster,
                       "supervisor": status.raw["supervisor"]["pid"], "jvms": [n.pid for n in status.nodes],
                       "owner": status.owner}, f)
        if os.environ.get("HOLD"):
            time.sleep(600)
    """
)


def run_inner(tmp_path, *args, hold=False):
    (tmp_path / "test_inner.py").write_text(INNER_TEST)
    report = tmp_path / "report.json"
    env = dict(os.environ, REPORT=str(report), ZKDEV_BIN=find_zkdev())
    env.pop("PYTEST_XDIST_WORKER", None)
    env.pop("PYTEST_ADDOPTS", None)
    if hold:
        env["HOLD"] = "1"
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path / "test_inner.py"), *args]
    return subprocess.Popen(argv, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True), report


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def processes_mentioning(text):
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    if text.encode() in f.read():
                        found.append(int(entry))
            except OSError:
                pass
    return found


@pytest.mark.parametrize("workers", [[], ["-n", "1"]], ids=["plain", "xdist"])
def test_a_sigkilled_pytest_leaves_no_jvm_and_no_supervisor(tmp_path, workers):
    proc, report = run_inner(tmp_path, *workers, hold=True)
    try:
        wait_until(lambda: report.exists() and report.stat().st_size > 0, timeout=90, what="the inner test's report")
        seen = json.loads(report.read_text())
        assert seen["owner"] == proc.pid
        assert alive(seen["supervisor"]) and all(alive(p) for p in seen["jvms"])
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    killed_at = time.monotonic()
    cluster_dir = os.path.join(seen["home"], "clusters", seen["cluster"])

    def all_gone():
        return (not any(alive(p) for p in [seen["supervisor"], *seen["jvms"]])
                and processes_mentioning(seen["home"]) == [] and not os.path.exists(cluster_dir))

    wait_until(all_gone, timeout=10,
               what="the ensemble's JVMs, supervisor and cluster directory going after pytest was SIGKILLed")
    print(f"gone {time.monotonic() - killed_at:.1f} s after the SIGKILL")
    # The owner's end removes the cluster's directory only; the killed run's (empty) temporary home is ours.
    shutil.rmtree(seen["home"], ignore_errors=True)


def test_reuse_adopts_the_kept_ensemble_and_resets_it(tmp_path):
    # Short: a cluster's control socket lives in its directory, and a socket path has about 100 bytes.
    home = tempfile.mkdtemp(prefix="pytest-zkdev-reuse-")
    first, report = run_inner(tmp_path, "--zkdev-reuse", "--zkdev-home", str(home))
    out = first.communicate(timeout=120)[0]
    assert first.returncode == 0, out
    one = json.loads(report.read_text())
    ens = Ensemble(find_zkdev(), home, one["cluster"])
    try:
        assert one["owner"] is None
        assert all(alive(p) for p in one["jvms"]), "the kept ensemble stopped when pytest ended"
        from kazoo.client import KazooClient

        zk = KazooClient(hosts=ens.connect_string)
        zk.start(timeout=20)
        zk.create("/from-run-1", b"x")
        zk.stop()

        second, report = run_inner(tmp_path, "--zkdev-reuse", "--zkdev-home", str(home))
        out = second.communicate(timeout=120)[0]
        assert second.returncode == 0, out
        two = json.loads(report.read_text())
        assert two["cluster"] == one["cluster"] and two["jvms"] == one["jvms"], "not adopted: new JVMs"
        zk = KazooClient(hosts=ens.connect_string)
        zk.start(timeout=20)
        assert zk.exists("/from-run-1") is None, "adopted without a reset"
        zk.stop()
    finally:
        ens.down(purge=True)
        shutil.rmtree(home, ignore_errors=True)


def test_a_zkdev_bin_that_is_not_there_is_named(monkeypatch):
    monkeypatch.setenv("ZKDEV_BIN", "/nonexistent/zkdev")
    with pytest.raises(FileNotFoundError, match="ZKDEV_BIN names /nonexistent/zkdev"):
        find_zkdev()
