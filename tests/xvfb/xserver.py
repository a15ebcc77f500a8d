"""A private X server of a chosen size, for tests that need their own screen."""

from __future__ import annotations

import os
import subprocess

__all__ = ["start_xvfb"]


def start_xvfb(size: str = "1280x800") -> tuple[subprocess.Popen[bytes], str]:
    """(the Xvfb process, its DISPLAY); the caller terminates it."""
    read, write = os.pipe()
    server = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write), "-screen", "0", f"{size}x24", "-nolisten", "tcp"],
        pass_fds=(write,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write)
    with os.fdopen(read) as pipe:
        number = pipe.readline().strip()
    assert number, "Xvfb printed no display number"
    return server, f":{number}"
