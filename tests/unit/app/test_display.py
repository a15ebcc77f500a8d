"""Started with no display: one line, before Qt aborts (issue 8 item 21; D1)."""

from __future__ import annotations

import pytest

from app.desktop import display_problem


@pytest.mark.parametrize(
    "env",
    [
        {"DISPLAY": ":0"},
        {"WAYLAND_DISPLAY": "wayland-0"},
        {"QT_QPA_PLATFORM": "offscreen"},
        {"QT_QPA_PLATFORM": "vnc:size=800x600"},
    ],
)
def test_d1_a_display_or_a_headless_platform_is_enough(env: dict[str, str]) -> None:
    assert display_problem(env, platform="linux") is None


@pytest.mark.parametrize("env", [{}, {"QT_QPA_PLATFORM": "xcb"}, {"DISPLAY": ""}])
def test_d1_no_display_on_linux_says_so(env: dict[str, str]) -> None:
    problem = display_problem(env, platform="linux")
    assert problem is not None and "DISPLAY" in problem and "\n" not in problem


@pytest.mark.parametrize("platform", ["win32", "darwin"])
def test_d1_windows_and_macos_always_have_a_display(platform: str) -> None:
    assert display_problem({}, platform=platform) is None
