"""The frozen app's entry point (PyInstaller): the same `main()` as the `deskbell` command."""

from __future__ import annotations

import sys

from app.cli import main

if __name__ == "__main__":
    sys.exit(main())
