"""Platform seams: one small interface per concern, one class per platform, a fallback chain.

Every adapter that cannot work here raises `PlatformUnavailable` in its constructor, and the
`make_*` function of its module tries the next one (STYLE.md, Vorta's keyring pattern).
"""

from __future__ import annotations

__all__ = ["PlatformUnavailable"]


class PlatformUnavailable(RuntimeError):
    """This adapter cannot work on this machine (wrong OS, missing tool, no session bus)."""
