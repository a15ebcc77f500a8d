#!/usr/bin/env bash
# Run the tests that need a real X screen with a system tray (D2) and a session bus:
# Xvfb, a private D-Bus session, and trayer as the tray host. Usable from CI.
#   tests/xvfb/run.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/../.."
python=${PYTHON:-python}
[[ -x .venv/bin/python && -z ${PYTHON:-} ]] && python=.venv/bin/python
for tool in xvfb-run dbus-run-session trayer; do
  command -v "$tool" >/dev/null || { echo "run.sh: $tool missing (apt-get install xvfb dbus trayer)" >&2; exit 2; }
done
inner='
trayer --edge top --align right --widthtype request --height 28 --transparent false \
  --tint 0x303030 >/dev/null 2>&1 &
tray=$!
QT_QPA_PLATFORM=xcb "$0" tests/xvfb/wait_for_tray.py
DESKBELL_XVFB=1 QT_QPA_PLATFORM=xcb "$0" -m pytest tests/xvfb -q -m xvfb "$@"
status=$?
kill "$tray" 2>/dev/null
wait "$tray" 2>/dev/null
exit $status
'
exec xvfb-run -a -s "-screen 0 1024x768x24" dbus-run-session -- bash -c "$inner" "$python" "$@"
