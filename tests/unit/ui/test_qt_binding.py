"""The Qt binding itself: a PySide6 release that corrupts reference counts must not ship."""

from __future__ import annotations

import sys
from dataclasses import dataclass

from PySide6.QtCore import QObject, Signal


@dataclass(frozen=True)
class _Payload:
    total: int


class _Emitter(QObject):
    typed = Signal(_Payload)
    number = Signal(int)


def test_signal_emits_keep_the_reference_counts_of_true_and_false() -> None:
    """PySide6 6.12.0 dropped one reference to True per emit; after enough signals the app
    aborted with "bool_dealloc" (seen at exit of `deskbell --quit-after-shown`)."""
    emitter = _Emitter()
    before = sys.getrefcount(True), sys.getrefcount(False)
    for n in range(200):
        emitter.typed.emit(_Payload(total=n))
        emitter.number.emit(n)
    assert (sys.getrefcount(True), sys.getrefcount(False)) == before
