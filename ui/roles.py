"""The item-data roles every model and delegate of the UI share (one home, no borrowing)."""

from __future__ import annotations

from PySide6.QtCore import Qt

__all__ = ["CONVERSATION_ID_ROLE", "MESSAGE_ID_ROLE", "MESSAGE_ROLE", "ROW_ROLE"]

_USER = Qt.ItemDataRole.UserRole
MESSAGE_ID_ROLE = _USER + 1  # a message row's id (the seen tracker reads it, S1)
ROW_ROLE = _USER + 10  # a conversation list row's ConversationRow
CONVERSATION_ID_ROLE = _USER + 11  # a conversation list row's conversation id
MESSAGE_ROLE = _USER + 20  # a message row's MessageRow
