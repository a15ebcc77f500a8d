"""What the PyInstaller bundle leaves out, and why: used by deskbell.spec, tested by
tests/unit/packaging/test_bundle_rules.py.

The bundle's contents come from PyInstaller's analysis of what the app imports. On top of that:

- `database_hiddenimports`: SQLAlchemy loads a database driver by name from the URL, so the
  analysis cannot see it. A driver is bundled when Deskbell's distribution depends on it (its
  `pyproject.toml`) and SQLAlchemy has a dialect module for it: dropping a driver from the
  dependencies drops it from the bundle, with no list here to keep in step.
- `UNUSED`: files the Qt hooks collect that the app never loads, each with the reason, measured
  by `packaging/size_report.py --trace` (docs/benchmarks.md). `prune` removes them, then the
  shared libraries only they needed (the GTK theme plugin alone brought 20 of them).
- `icu_stub`: Qt's ICU (Linux wheels) needs a 31 MB data library at load time; the app calls
  nothing that reads it (Qt falls back to its own case mapping and comparison when ICU finds no
  data), so an empty data package of the same name takes its place.
- `glibc_floor`: the newest glibc symbol version any bundled binary needs; the build refuses a
  bundle that would not start on the oldest glibc we support (GLIBC_FLOOR).
"""

from __future__ import annotations

import fnmatch
import re
import subprocess
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

__all__ = [
    "GLIBC_FLOOR",
    "SYSTEM_LIBRARIES",
    "UNUSED",
    "Rule",
    "database_hiddenimports",
    "elf_needed",
    "glibc_needed",
    "icu_stub",
    "is_unused",
    "prune",
]

# Ubuntu 22.04 has glibc 2.35, Debian 12 2.36: the oldest we support.
GLIBC_FLOOR = (2, 35)


@dataclass(frozen=True)
class Rule:
    pattern: str  # fnmatch pattern over the path inside the bundle, "/"-separated
    why: str
    keep: tuple[str, ...] = ()  # fnmatch patterns of exceptions inside `pattern`


QT = "PySide6/Qt"
UNUSED: tuple[Rule, ...] = (
    Rule(
        f"{QT}/translations/*",
        "no QTranslator is installed: the UI is English, Qt's own strings are never looked up",
    ),
    Rule(
        f"{QT}/plugins/platforms/*",
        "kiosk and embedded platforms (eglfs, linuxfb, vnc, vkkhrdisplay, minimalegl): a"
        " desktop app runs on xcb or wayland; offscreen stays for tests and smoke runs",
        keep=("*/*qxcb*", "*/*qwayland*", "*/*qoffscreen*", "*/*qwindows*", "*/*qcocoa*"),
    ),
    Rule(f"{QT}/plugins/egldeviceintegrations/*", "only the eglfs platform loads these"),
    Rule(f"{QT}/lib/libQt6EglFS*", "only the eglfs platform needs it"),
    Rule(f"{QT}/plugins/generic/*", "evdev and TUIO input for eglfs and linuxfb"),
    Rule(
        f"{QT}/plugins/platformthemes/*gtk3*",
        "the GTK theme plugin: it brings the build machine's GTK, cairo and pango (20"
        " libraries); the colour scheme comes from the desktop portal and ui/theme.py",
    ),
    Rule(
        f"{QT}/plugins/imageformats/*",
        "the app shows PNG (built into QtGui) and SVG only",
        keep=("*/imageformats/*qsvg*",),
    ),
    Rule(
        f"{QT}/plugins/networkinformation/*",
        "QtNetwork serves the single-instance local socket only",
    ),
    Rule(f"{QT}/plugins/tls/*", "QtNetwork makes no TLS connection (Python does the mail)"),
    Rule(
        f"{QT}/plugins/wayland-shell-integration/*",
        "every current compositor speaks xdg-shell; ivi, wl-shell, fullscreen and qt-shell are"
        " for embedded compositors",
        keep=("*/wayland-shell-integration/*xdg-shell*",),
    ),
    Rule(f"{QT}/lib/libQt6WlShellIntegration*", "only the wl-shell plugin needs it"),
    Rule(
        f"{QT}/plugins/wayland-graphics-integration-client/*-server*",
        "server-buffer sharing with a Qt-based compositor",
    ),
)

# Libraries taken from the system rather than the build machine (Linux; the .deb depends on
# their packages, every desktop has them):
# - libstdc++ and libexpat: the build machine's need glibc 2.36 (arc4random), while every
#   bundled binary needs at most GLIBCXX_3.4.29, which Ubuntu 22.04 and Debian 12 have;
# - fontconfig and FreeType: an older bundled fontconfig warns about, or misreads, a newer
#   system's fonts.conf (the AppImage exclude list leaves them out for that reason);
# - libdbus: the session bus's own library, with its chain (systemd, gcrypt, lz4, zstd...).
SYSTEM_LIBRARIES = (
    "libstdc++.so.6",
    "libexpat.so.1",
    "libfontconfig.so.1",
    "libfreetype.so.6",
    "libdbus-1.so.3",
)
UNUSED += tuple(Rule(name, "taken from the system (SYSTEM_LIBRARIES)") for name in SYSTEM_LIBRARIES)


def _posix(dest: str) -> str:
    return str(PurePosixPath(*Path(dest).parts))


def is_unused(dest: str, rules: Iterable[Rule] = UNUSED) -> Rule | None:
    """The rule that leaves `dest` (a path inside the bundle) out, or None."""
    path = _posix(dest)
    for rule in rules:
        if fnmatch.fnmatchcase(path, rule.pattern) and not any(
            fnmatch.fnmatchcase(path, keep) for keep in rule.keep
        ):
            return rule
    return None


def database_hiddenimports(
    requirements: Iterable[str], dialect_modules: Iterable[str]
) -> list[str]:
    """The drivers Deskbell depends on, with SQLAlchemy's dialect module for each.

    `requirements`: Deskbell's requirement strings (`importlib.metadata.requires`);
    `dialect_modules`: SQLAlchemy's dialect modules, e.g. "sqlalchemy.dialects.sqlite.aiosqlite".
    """
    wanted: set[str] = set()
    for req in requirements:
        if "extra ==" in req:
            continue  # test and build tools are not part of the app
        match = re.match(r"\s*([A-Za-z0-9_.-]+)", req)
        if match:
            wanted.add(match.group(1).lower().replace("-", "_"))
    found: list[str] = []
    for module in sorted(dialect_modules):
        driver = module.rsplit(".", 1)[-1]
        if driver in wanted:
            found += [driver, module]
    return found


# --- shared libraries --------------------------------------------------------------------------


def elf_needed(path: str | Path) -> list[str]:
    """The DT_NEEDED names of an ELF file (binutils' objdump), [] for anything else."""
    result = subprocess.run(
        ["objdump", "-p", str(path)], capture_output=True, text=True, check=False
    )
    return re.findall(r"^\s*NEEDED\s+(\S+)", result.stdout, re.MULTILINE)


def prune(
    entries: list[tuple[str, str, str]],
    *,
    needed: Callable[[str], list[str]] = elf_needed,
    rules: Iterable[Rule] = UNUSED,
) -> tuple[list[tuple[str, str, str]], list[tuple[str, str]]]:
    """`entries` (PyInstaller's (dest, source, kind) binaries and data) without what `rules`
    leave out, the libraries only those needed, and links to them. Returns (kept, [(dest,
    why)])."""
    rules = tuple(rules)
    dropped: dict[str, str] = {}
    for dest, _src, _kind in entries:
        rule = is_unused(dest, rules)
        if rule is not None:
            dropped[dest] = rule.why
    by_name: dict[str, list[str]] = {}
    for dest, _src, _kind in entries:
        by_name.setdefault(PurePosixPath(_posix(dest)).name, []).append(dest)
    sources = {dest: src for dest, src, _kind in entries}

    def closure(roots: Iterable[str], *, avoid: Iterable[str] = ()) -> set[str]:
        seen: set[str] = set()
        todo = list(roots)
        avoided = set(avoid)
        while todo:
            dest = todo.pop()
            if dest in seen or dest in avoided:
                continue
            seen.add(dest)
            if dest in links:  # follow a link to the file it names
                todo += [sources[dest]] if sources[dest] in sources else []
                continue
            if kinds[dest] not in ("BINARY", "EXTENSION"):
                continue
            for name in needed(sources[dest]):
                todo += by_name.get(name, [])
        return seen

    kinds = {dest: kind for dest, _src, kind in entries}
    links = {dest for dest, kind in kinds.items() if kind == "SYMLINK"}  # source: its target
    reached_from_dropped = closure(dropped) - set(dropped)
    still_needed = closure(
        # A link is no root: it is kept when what it names is.
        (d for d in sources if d not in dropped.keys() | reached_from_dropped | links),
        avoid=dropped,
    )
    for dest in sorted(reached_from_dropped - still_needed):
        dropped[dest] = "needed only by files left out above"
    gone = {_posix(d) for d in dropped}
    for dest in links:
        if _posix(sources[dest]) in gone:
            dropped[dest] = "a link to a file left out"
    kept = [entry for entry in entries if entry[0] not in dropped]
    return kept, sorted(dropped.items())


def glibc_needed(path: str | Path) -> tuple[int, int] | None:
    """The newest GLIBC_x.y symbol version an ELF file needs, or None."""
    result = subprocess.run(
        ["objdump", "-T", str(path)], capture_output=True, text=True, check=False
    )
    versions = {
        (int(a), int(b)) for a, b in re.findall(r"\(GLIBC_(\d+)\.(\d+)(?:\.\d+)?\)", result.stdout)
    }
    return max(versions) if versions else None


def elf_files(folder: Path) -> Iterator[Path]:
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not path.is_symlink():
            with path.open("rb") as f:
                if f.read(4) == b"\x7fELF":
                    yield path


# --- ICU ---------------------------------------------------------------------------------------

_ICU_STUB_C = r"""
/* An empty ICU common-data package: a valid "CmnD" header whose table of contents holds no
   entry. ICU finds no data, every ICU call returns an error, and Qt falls back from it. */
#include <stdint.h>
__attribute__((visibility("default"), aligned(16))) const struct {
    uint16_t header_size; uint8_t magic1, magic2;
    uint16_t info_size, reserved_word;
    uint8_t big_endian, charset_family, sizeof_uchar, reserved_byte;
    uint8_t data_format[4], format_version[4], data_version[4];
    uint8_t padding[8];
    uint32_t toc_count, toc_padding[3];
} SYMBOL = {
    32, 0xda, 0x27, 20, 0,
    __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__, 0, 2, 0,
    {'C', 'm', 'n', 'D'}, {1, 0, 0, 0}, {0, 0, 0, 0}, {0}, 0, {0},
};
"""


def icu_stub(library: Path, out_dir: Path) -> Path:
    """An empty stand-in for `library` (libicudata.so.NN), built with the C compiler."""
    match = re.fullmatch(r"libicudata\.so\.(\d+)", library.name)
    if match is None:
        raise ValueError(f"not an ICU data library: {library.name}")
    out_dir.mkdir(parents=True, exist_ok=True)
    source = out_dir / "icudata_stub.c"
    source.write_text(_ICU_STUB_C.replace("SYMBOL", f"icudt{match.group(1)}_dat"))
    target = out_dir / library.name
    subprocess.run(
        [
            "cc",
            "-shared",
            "-fPIC",
            "-O2",
            "-s",
            f"-Wl,-soname,{library.name}",
            "-o",
            str(target),
            str(source),
        ],
        check=True,
    )
    return target
