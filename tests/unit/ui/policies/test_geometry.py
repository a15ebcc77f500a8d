"""D6: the window fits the screen at any scaling, and comes back where it was (issue 8 item 15)."""

from __future__ import annotations

from ui.policies.geometry import BORDER, TITLE_BAR, Rect, SavedPlace, fit, place


def _inside(client: Rect, available: Rect) -> bool:
    return (
        client.x - BORDER >= available.x
        and client.y - TITLE_BAR >= available.y
        and client.right + BORDER <= available.right
        and client.bottom + BORDER <= available.bottom
    )


def test_d6_default_size_fits_a_small_screen_at_150_and_200_percent() -> None:
    # 1600x1000 at 1.5 is 1066x666 logical; 1366x768 at 2 is 683x384 (less a 24 px panel).
    for available in (Rect(0, 0, 1066, 666), Rect(0, 12, 683, 360)):
        client = fit((1100, 720), available)
        assert _inside(client, available)


def test_d6_a_big_screen_keeps_the_default_size_centred() -> None:
    client = fit((1100, 720), Rect(0, 0, 2560, 1440))
    assert (client.w, client.h) == (1100, 720)
    assert abs((client.x - BORDER) - (2560 - client.right - BORDER)) <= 1


def test_d6_saved_place_comes_back_on_its_screen() -> None:
    screens = {"DP-1": Rect(0, 0, 1920, 1080), "HDMI-1": Rect(1920, 0, 1280, 1024)}
    saved = SavedPlace("HDMI-1", Rect(2000, 100, 900, 700), maximized=False)
    assert place(saved, screens, primary="DP-1") == (Rect(2000, 100, 900, 700), False)


def test_d6_saved_place_on_a_screen_that_is_gone_falls_back_to_the_primary() -> None:
    screens = {"eDP-1": Rect(0, 0, 1366, 768)}
    saved = SavedPlace("HDMI-1", Rect(2000, 100, 900, 700), maximized=True)
    rect, maximized = place(saved, screens, primary="eDP-1")
    assert _inside(rect, screens["eDP-1"]) and not maximized


def test_d6_saved_place_too_big_for_its_screen_now_is_shrunk_into_it() -> None:
    screens = {"eDP-1": Rect(0, 0, 1066, 666)}  # the same screen, now at 150 %
    saved = SavedPlace("eDP-1", Rect(40, 40, 1500, 950))
    rect, _ = place(saved, screens, primary="eDP-1")
    assert _inside(rect, screens["eDP-1"])


def test_d6_saved_place_off_its_screen_is_not_used() -> None:
    screens = {"eDP-1": Rect(0, 0, 1366, 768)}
    saved = SavedPlace("eDP-1", Rect(1330, 700, 900, 700))  # 36x68 px would show
    rect, _ = place(saved, screens, primary="eDP-1")
    assert rect == fit((1100, 720), screens["eDP-1"])
