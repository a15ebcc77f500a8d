"""An emoji font for people's text (a thumbs-up in a message drew as an empty box).

Qt picks a fallback font per character, but where fontconfig does not list a colour emoji
font as a fallback (or none is installed) emoji come out as boxes. `use_emoji_font` names an
installed emoji family to Qt; with none installed, `readable_emoji` spells each emoji out
(":thumbs up sign:") so the message stays readable instead of showing boxes.
"""

from __future__ import annotations

import logging
import unicodedata

from PySide6.QtGui import QFont, QFontDatabase, QFontMetrics

__all__ = ["EMOJI_FAMILIES", "readable_emoji", "use_emoji_font"]

log = logging.getLogger(__name__)

# Colour first; Symbola (monochrome) last. Debian ships Noto Color Emoji as fonts-noto-color-emoji.
EMOJI_FAMILIES = (
    "Noto Color Emoji",
    "Apple Color Emoji",
    "Segoe UI Emoji",
    "Twemoji",
    "Twitter Color Emoji",
    "JoyPixels",
    "EmojiOne Color",
    "Symbola",
)
_PROBE = 0x1F44D  # thumbs up sign


def use_emoji_font() -> str | None:
    """Tell Qt to draw emoji with the first installed emoji family; its name, or None."""
    installed = set(QFontDatabase.families())
    for family in EMOJI_FAMILIES:
        if family in installed and QFontMetrics(QFont(family)).inFontUcs4(_PROBE):
            QFontDatabase.setApplicationEmojiFontFamilies([family])
            log.info("emoji font: %s", family)
            return family
    log.info("no emoji font installed: emoji are spelled out")
    return None


def _is_emoji(char: str) -> bool:
    code = ord(char)
    return (
        0x1F000 <= code <= 0x1FAFF  # pictographs, emoticons, transport, symbols and more
        or 0x2600 <= code <= 0x27BF  # miscellaneous symbols, dingbats
        or 0x1F1E6 <= code <= 0x1F1FF  # regional indicators (flags)
    )


def readable_emoji(text: str) -> str:
    """Each emoji as ':its name:' (for when no font can draw it); joiners and variation
    selectors that only glue emoji together are dropped."""
    out = []
    for char in text:
        if char in ("\u200d", "\ufe0f", "\ufe0e") or 0x1F3FB <= ord(char) <= 0x1F3FF:
            continue  # zero-width joiner, variation selectors, skin-tone modifiers
        if _is_emoji(char):
            out.append(f":{unicodedata.name(char, 'emoji').lower()}:")
        else:
            out.append(char)
    return "".join(out)
