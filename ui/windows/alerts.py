"""Carries out `ui.policies.alerts.AlertPolicy` (N1, N4-N6, R5): the ping and the notifications.

The window says what is on screen; the service says whether do not disturb holds now.
"""

from __future__ import annotations

from collections.abc import Callable

from services.api import MessageRow, PersonInfo, Service, UnseenCounts
from ui.platform.notify import Notice, NotificationCenter
from ui.platform.sound import Pinger
from ui.policies.alerts import AlertPolicy

__all__ = ["Alerts"]


class Alerts:
    """Counts what it did (`pings`, `notices`) for tests and the state file."""

    def __init__(
        self,
        *,
        service: Service,
        center: NotificationCenter,
        pinger: Pinger | None,
        is_on_screen: Callable[[int], bool],
        policy: AlertPolicy | None = None,
    ) -> None:
        self._service = service
        self._center = center
        self._pinger = pinger
        self._is_on_screen = is_on_screen
        self.policy = policy if policy is not None else AlertPolicy()
        self.pings = 0
        self.notices = 0

    def on_message(self, message: MessageRow, *, me: PersonInfo, title: str) -> None:
        alert = self.policy.on_message(
            message,
            me=me,
            conversation=title,
            on_screen=self._is_on_screen(message.conversation_id),
            dnd=self._service.do_not_disturb(me),
        )
        if alert is None:
            return
        if alert.ping and self._pinger is not None and self._pinger.ping(sound_on=True):
            self.pings += 1
        if alert.notify:
            key = str(alert.conversation_id)
            self._center.notify(Notice(key=key, title=alert.title, body=alert.body))
            self.notices += 1
            self.policy.shown(alert.conversation_id)

    def shown(self) -> list[int]:
        """Conversations with a notification up."""
        return self.policy.showing()

    def withdraw(self, conversation_id: int) -> None:
        self.policy.withdrawn(conversation_id)
        self._center.close(str(conversation_id))

    def on_counts(self, counts: UnseenCounts) -> None:
        """Seen elsewhere (S4): a notification whose conversation has nothing unseen goes."""
        for conv_id in self.policy.seen_elsewhere(counts.by_conversation):
            self.withdraw(conv_id)
