"""An emoji in a message is drawn with an emoji font, or spelled out: never an empty box
(issue 8 item 20)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from PySide6.QtGui import QColor, QFont, QFontDatabase, QImage, QPainter
from PySide6.QtWidgets import QApplication

from services.api import MessageRow, MessageStatus
from ui.platform.fonts import EMOJI_FAMILIES, readable_emoji, use_emoji_font
from ui.theme import LIGHT
from ui.widgets.message_view import MessageDelegate


def test_emoji_are_spelled_out_when_no_font_has_them() -> None:
    assert readable_emoji("👍 got it") == ":thumbs up sign: got it"
    assert readable_emoji("👩\u200d💻 at work") == ":woman::personal computer: at work"
    assert readable_emoji("👍🏽 ok ❤️") == ":thumbs up sign: ok :heavy black heart:"
    assert readable_emoji("plain, é, 中文") == "plain, é, 中文"


def test_the_delegate_spells_out_only_without_an_emoji_font(qapp: QApplication) -> None:
    now = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    row = MessageRow(
        id=1, conversation_id=1, author=None, text="👍 got it", created_at=now, source="app",
        status=MessageStatus(sent_at=now),
    )  # fmt: skip
    assert MessageDelegate(theme=LIGHT, me_id=1, now=lambda: now).display_text(row) == "👍 got it"
    spelled = MessageDelegate(theme=LIGHT, me_id=1, now=lambda: now, spell_out_emoji=True)
    assert spelled.display_text(row) == ":thumbs up sign: got it"


def test_an_installed_emoji_font_draws_colour(qapp: QApplication) -> None:
    installed = set(QFontDatabase.families()) & set(EMOJI_FAMILIES)
    if not installed:
        pytest.skip("no emoji font installed here (Debian: fonts-noto-color-emoji)")
    assert use_emoji_font() in installed
    image = QImage(64, 64, QImage.Format.Format_ARGB32)
    image.fill(QColor("white"))
    painter = QPainter(image)
    painter.setFont(QFont("DejaVu Sans", 28))
    painter.drawText(8, 48, "👍")
    painter.end()
    colours = {
        (c.red() // 32, c.green() // 32, c.blue() // 32)
        for y in range(64)
        for x in range(64)
        if (c := image.pixelColor(x, y)) != QColor("white")
    }
    assert len(colours) > 4  # a coloured thumb, not a black outline box
