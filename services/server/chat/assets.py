"""The chat page's files (resources/chat/): templates rendered with Jinja2's autoescape (C3:
every text is escaped), and the script and style served under names that carry a hash of
their content, so a browser keeps them for a year and a new version is a new name."""

from __future__ import annotations

import functools
import hashlib
import importlib.resources
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    import jinja2

__all__ = ["Asset", "asset", "assets", "render", "theme_css"]

_FILES: Final = ("chat.js", "chat.css", "widget.js")
_TYPES: Final = {"js": "text/javascript", "css": "text/css"}


@dataclass(frozen=True, slots=True)
class Asset:
    name: str  # as served: chat.3f2a9c1b0d4e.js
    body: bytes
    content_type: str
    etag: str

    @property
    def url(self) -> str:
        return f"/chat/static/{self.name}"


def _folder() -> importlib.resources.abc.Traversable:
    return importlib.resources.files("resources").joinpath("chat")


@functools.cache
def assets() -> dict[str, Asset]:
    """Every static file by its plain name (chat.js), read once."""
    found: dict[str, Asset] = {}
    for plain in _FILES:
        body = _folder().joinpath(plain).read_bytes()
        digest = hashlib.sha256(body).hexdigest()[:12]
        stem, _, ext = plain.rpartition(".")
        found[plain] = Asset(f"{stem}.{digest}.{ext}", body, _TYPES[ext], f'"{digest}"')
    return found


def asset(served_name: str) -> Asset | None:
    return next((a for a in assets().values() if a.name == served_name), None)


@functools.cache
def _environment() -> jinja2.Environment:
    import jinja2

    return jinja2.Environment(
        loader=jinja2.FunctionLoader(lambda name: _folder().joinpath(name).read_text("utf-8")),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render(template: str, /, **variables: Any) -> str:
    return _environment().get_template(template).render(assets=assets(), **variables)


def _luminance(rgb: tuple[float, float, float]) -> float:
    def channel(c: float) -> float:
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(c) for c in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def _contrast(a: tuple[float, float, float], b: tuple[float, float, float]) -> float:
    la, lb = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def _toward(
    rgb: tuple[float, float, float], target: float, against: tuple[float, float, float]
) -> str:
    """`rgb` mixed toward `target` (0 black, 1 white) until it contrasts 4.5:1 with
    `against` (WCAG AA for text)."""
    mixed = rgb
    for step in range(21):
        t = step / 20
        mixed = (
            rgb[0] + (target - rgb[0]) * t,
            rgb[1] + (target - rgb[1]) * t,
            rgb[2] + (target - rgb[2]) * t,
        )
        if _contrast(mixed, against) >= 4.5:
            break
    return "#" + "".join(f"{round(c * 255):02x}" for c in mixed)


@functools.lru_cache(maxsize=16)
def theme_css(colour: str) -> bytes:
    """The accent colour (`#rrggbb`, a stored setting) for light and dark pages, each
    adjusted to keep 4.5:1 against its background and white button text."""
    rgb = (int(colour[1:3], 16) / 255, int(colour[3:5], 16) / 255, int(colour[5:7], 16) / 255)
    light = _toward(rgb, 0.0, (1.0, 1.0, 1.0))
    dark_bg = (0x12 / 255, 0x14 / 255, 0x18 / 255)
    dark = _toward(rgb, 1.0, dark_bg)
    return (
        f":root{{--accent:{light};--on-accent:#fff}}\n"
        f"@media (prefers-color-scheme: dark){{:root{{--accent:{dark};--on-accent:#111}}}}\n"
    ).encode()
