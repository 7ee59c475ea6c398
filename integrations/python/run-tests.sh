#!/usr/bin/env bash
# pytest-zkdev's own tests against real ensembles, in 4 pytest-xdist workers (each with its own ensembles on
# its own ports). Makes the venv target/pyvenv (pytest, pytest-xdist, kazoo, this plugin) when it is missing.
# Extra arguments go to pytest.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="$root/target/pyvenv"
if ! "$venv/bin/python" -c 'import kazoo, xdist, pytest_zkdev' >/dev/null 2>&1; then
  echo "installing pytest, pytest-xdist, kazoo and pytest-zkdev into $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check pytest==9.2.0 pytest-xdist==3.8.0 kazoo==2.11.0
  "$venv/bin/pip" install --quiet --disable-pip-version-check -e "$here"
fi
export ZKDEV_BIN="${ZKDEV_BIN:-$root/target/debug/zkdev}"
cd "$here"
# loadfile: one test file per worker at a time, so a worker holds one ensemble shape (4 workers: at most
# 3 + 1 + 1 + 1 JVMs at once).
exec "$venv/bin/python" -m pytest -p no:cacheprovider -n 4 --dist loadfile "$@" tests
