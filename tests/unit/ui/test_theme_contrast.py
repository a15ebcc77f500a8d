"""D6: every text/background pair the themes paint reads at WCAG AA (4.5:1), light and dark."""

from __future__ import annotations

import pytest

from ui.theme import DARK, LIGHT, Theme, contrast_ratio


@pytest.mark.parametrize("theme", [LIGHT, DARK], ids=["light", "dark"])
def test_d6_text_pairs_reach_aa(theme: Theme) -> None:
    low = {
        name: round(contrast_ratio(fg, bg), 2)
        for name, (fg, bg) in theme.text_pairs().items()
        if contrast_ratio(fg, bg) < 4.5
    }
    assert low == {}


def test_d6_contrast_ratio_matches_wcag() -> None:
    from PySide6.QtGui import QColor

    assert contrast_ratio(QColor("#000000"), QColor("#ffffff")) == pytest.approx(21.0)
    assert contrast_ratio(QColor("#777777"), QColor("#ffffff")) == pytest.approx(4.48, abs=0.01)


def test_d6_the_send_buttons_are_in_the_pairs() -> None:
    names = set(DARK.text_pairs())
    assert {"send to team", "send to customer", "unseen pill", "new item button"} <= names
