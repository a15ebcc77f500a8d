#!/usr/bin/env bash
# CI (issue 13): build the Linux bundle and the .deb, install the .deb on this machine, run the
# smoke test against the installed /usr/bin/deskbell (CLI round trip, migrations in an empty
# folder, --quit-after-shown offscreen, the demo on Xvfb with a screenshot, a round trip on a
# private PostgreSQL, the keyring's backends), then purge it and check that nothing it
# installed is left.
#   packaging/ci-smoke.sh            (as root, or with sudo; after `make system-packages`)
# Reuses the project's venv (PyInstaller comes with the dev extras); 1 minute on 2 quiet cores,
# 2½–3 while other suites run (docs/benchmarks.md), most of it PyInstaller.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
APT=(-o DPkg::Lock::Timeout=600 -y -qq --no-install-recommends)
started=$SECONDS
step() { echo "ci-smoke: $1 ($((SECONDS - started)) s)"; }

if dpkg-query -W -f='${Status}' deskbell 2>/dev/null | grep -q "install ok installed"; then
  if [ "${CI:-}" != true ]; then
    echo "ci-smoke: deskbell is already installed here: refusing to replace it" >&2
    exit 2
  fi
  echo "ci-smoke: removing the deskbell an interrupted run left installed"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get purge "${APT[@]}" deskbell >/dev/null
fi

step "bundle (PyInstaller)"
"$PY" -m PyInstaller packaging/deskbell.spec --noconfirm --log-level WARN
step "the .deb"
"$PY" packaging/linux/build.py deb
# shellcheck disable=SC2012  # the newest of our own file names: no odd characters
deb=$(ls -t dist/deskbell_*.deb | head -1)

step "install $deb"
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install "${APT[@]}" "./$deb" >/dev/null
listed=$(mktemp)
trap 'rm -f "$listed"' EXIT
dpkg -L deskbell >"$listed"
status=0
step "smoke test of /usr/bin/deskbell"
mkdir -p shots
xvfb-run -a -s "-screen 0 1280x800x24" dbus-run-session -- "$PY" - <<'EOF' || status=$?
import sys

sys.path[:0] = [".", "packaging"]
import smoke_test
from tests.support.postgres import start_cluster

cluster = start_cluster(lambda url: None)  # an empty database: the app migrates it
try:
    url = cluster.url(cluster.create_database())
    sys.exit(
        smoke_test.main(
            ["--cli", "/usr/bin/deskbell", "--demo", "--screenshot", "shots/installed-demo.png",
             "--grab-python", sys.executable, "--database-url", url, "--keyring-absent"]
        )
    )
finally:
    cluster.stop()
EOF

step "purge"
DEBIAN_FRONTEND=noninteractive $SUDO apt-get purge "${APT[@]}" deskbell >/dev/null
left=0
while read -r path; do
  # Shared folders (/usr/share/icons/...) stay; the package's own files and folders must not.
  if [ -e "$path" ] || [ -L "$path" ]; then
    if [ ! -d "$path" ] || [[ $path == /opt/deskbell* || $path == /usr/share/doc/deskbell* ]]; then
      echo "ci-smoke: left behind: $path" >&2
      left=1
    fi
  fi
done <"$listed"
[ $left = 0 ] || status=1
step "done (status $status)"
exit $status
