"""A retrying task's log: one line when it starts failing, when the reason changes, and when it
works again, instead of a traceback on every retry (`deskbell serve` may retry for days).

An error of `services.errors`, or a reason given in words (a server's answer), is logged as its
one line. Anything else is a bug: its traceback is logged once, the first time it is seen.
"""

from __future__ import annotations

import logging

from services.errors import DeskbellError

__all__ = ["RetryLog"]


class RetryLog:
    def __init__(self, log: logging.Logger, task: str) -> None:
        self._log = log
        self._task = task
        self._failing: str | None = None

    @property
    def failing(self) -> bool:
        return self._failing is not None

    def failed(self, cause: BaseException | str) -> None:
        """Log `cause` unless the task already failed for the same reason."""
        if isinstance(cause, str | DeskbellError):
            reason = str(cause)
            if reason != self._failing:
                self._log.error("%s: %s (retrying)", self._task, reason)
        else:
            reason = f"{type(cause).__name__}: {cause}"
            if reason != self._failing:
                self._log.error("%s failed (retrying)", self._task, exc_info=cause)
        self._failing = reason

    def succeeded(self) -> None:
        """Log once that the task works again after failing."""
        if self._failing is not None:
            self._failing = None
            self._log.info("%s works again", self._task)
