"""Wait until a system tray host owns the tray on this display (run.sh, before the tests).

Started by tests/xvfb/run.sh right after the tray host: on a busy machine the host may take
seconds to claim the tray, and a fixed sleep would race it. Gives up after 60 s (the tests
then report the missing tray themselves).
"""

from __future__ import annotations

import sys
import time

from PySide6.QtWidgets import QApplication, QSystemTrayIcon

DEADLINE_S = 60.0


def main() -> int:
    app = QApplication(sys.argv[:1])
    deadline = time.monotonic() + DEADLINE_S
    while not QSystemTrayIcon.isSystemTrayAvailable():
        if time.monotonic() > deadline:
            print(f"run.sh: no system tray appeared within {DEADLINE_S:.0f} s", file=sys.stderr)
            return 1
        app.processEvents()
        time.sleep(0.1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
