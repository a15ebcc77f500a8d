"""What the bundle leaves out (issue 13, Size): rules, the pruning of orphaned libraries, the
database drivers taken from the dependencies, and the empty ICU data library."""

from __future__ import annotations

import ctypes
import shutil
import subprocess
from pathlib import Path

import bundle_rules
import pytest
from bundle_rules import Rule, database_hiddenimports, is_unused, prune

QT = "PySide6/Qt"


def test_drivers_follow_the_dependencies() -> None:
    """A driver leaves the bundle when it leaves pyproject.toml (issue 9 drops two)."""
    dialects = [
        "sqlalchemy.dialects.sqlite.aiosqlite",
        "sqlalchemy.dialects.sqlite.pysqlite",
        "sqlalchemy.dialects.postgresql.asyncpg",
        "sqlalchemy.dialects.postgresql.psycopg",
        "sqlalchemy.dialects.postgresql.psycopg2",
        "sqlalchemy.dialects.mysql.aiomysql",
    ]
    today = ["aiosqlite>=0.20", "asyncpg>=0.29", "psycopg[binary]>=3.2,<4", "Jinja2>=3"]
    assert database_hiddenimports(today, dialects) == [
        "asyncpg",
        "sqlalchemy.dialects.postgresql.asyncpg",
        "psycopg",
        "sqlalchemy.dialects.postgresql.psycopg",
        "aiosqlite",
        "sqlalchemy.dialects.sqlite.aiosqlite",
    ]
    after_issue_9 = ["psycopg[binary]>=3.2,<4", 'pytest>=8; extra == "test"']
    assert database_hiddenimports(after_issue_9, dialects) == [
        "psycopg",
        "sqlalchemy.dialects.postgresql.psycopg",
    ]


@pytest.mark.parametrize(
    ("dest", "left_out"),
    [
        (f"{QT}/translations/qtbase_de.qm", True),
        (f"{QT}/plugins/platforms/libqxcb.so", False),
        (f"{QT}/plugins/platforms/libqwayland.so", False),
        (f"{QT}/plugins/platforms/libqoffscreen.so", False),
        (f"{QT}/plugins/platforms/qwindows.dll", False),
        (f"{QT}/plugins/platforms/libqcocoa.dylib", False),
        (f"{QT}/plugins/platforms/libqeglfs.so", True),
        (f"{QT}/plugins/platforms/libqvnc.so", True),
        (f"{QT}/plugins/platformthemes/libqgtk3.so", True),
        (f"{QT}/plugins/platformthemes/libqxdgdesktopportal.so", False),
        (f"{QT}/plugins/imageformats/libqsvg.so", False),
        (f"{QT}/plugins/imageformats/libqjpeg.so", True),
        (f"{QT}/plugins/iconengines/libqsvgicon.so", False),
        (f"{QT}/plugins/platforminputcontexts/libibusplatforminputcontextplugin.so", False),
        (f"{QT}/plugins/wayland-shell-integration/libxdg-shell.so", False),
        (f"{QT}/plugins/wayland-shell-integration/libivi-shell.so", True),
        (f"{QT}/lib/libQt6Widgets.so.6", False),
        ("resources/icons/deskbell.svg", False),
        ("services/store/migrations/env.py", False),
        ("libstdc++.so.6", True),
    ],
)
def test_rules_leave_out_only_what_is_never_loaded(dest: str, left_out: bool) -> None:
    assert (is_unused(dest) is not None) == left_out


def test_every_rule_says_why() -> None:
    assert all(rule.why for rule in bundle_rules.UNUSED)


def test_prune_drops_libraries_only_a_dropped_plugin_needed() -> None:
    needs = {
        "/src/theme.so": ["libgtk.so", "libglib.so"],
        "/src/libgtk.so": ["libcairo.so", "libglib.so"],
        "/src/libcairo.so": [],
        "/src/libglib.so": [],
        "/src/QtCore.so": ["libQt6Core.so"],
        "/src/libQt6Core.so": ["libglib.so"],
    }
    entries = [
        ("plugins/themes/theme.so", "/src/theme.so", "BINARY"),
        ("libgtk.so", "/src/libgtk.so", "BINARY"),
        ("libcairo.so", "/src/libcairo.so", "BINARY"),
        ("libglib.so", "/src/libglib.so", "BINARY"),
        ("QtCore.so", "/src/QtCore.so", "EXTENSION"),
        ("lib/libQt6Core.so", "/src/libQt6Core.so", "BINARY"),
        ("libQt6Core.so", "lib/libQt6Core.so", "SYMLINK"),
        ("libgtk-link.so", "libgtk.so", "SYMLINK"),
        ("resources/x.svg", "/src/x.svg", "DATA"),
    ]
    rules = [Rule("plugins/themes/*", "unused theme")]
    kept, dropped = prune(entries, needed=lambda src: needs.get(src, []), rules=rules)
    assert [d for d, _s, _k in kept] == [
        "libglib.so",
        "QtCore.so",
        "lib/libQt6Core.so",
        "libQt6Core.so",
        "resources/x.svg",
    ]
    assert dict(dropped) == {
        "plugins/themes/theme.so": "unused theme",
        "libgtk.so": "needed only by files left out above",
        "libcairo.so": "needed only by files left out above",
        "libgtk-link.so": "a link to a file left out",
    }


@pytest.mark.skipif(shutil.which("cc") is None, reason="needs a C compiler")
def test_icu_stub_is_a_loadable_library_with_the_data_symbol(tmp_path: Path) -> None:
    stub = bundle_rules.icu_stub(Path("/somewhere/libicudata.so.73"), tmp_path)
    assert stub.name == "libicudata.so.73"
    assert stub.stat().st_size < 64 * 1024
    lib = ctypes.CDLL(str(stub))
    header = (ctypes.c_ubyte * 48).in_dll(lib, "icudt73_dat")
    assert bytes(header[2:4]) == b"\xda\x27"  # ICU's magic
    assert bytes(header[12:16]) == b"CmnD"  # a common-data package...
    assert bytes(header[32:36]) == b"\0\0\0\0"  # ...with no entries
    soname = subprocess.run(["objdump", "-p", str(stub)], capture_output=True, text=True).stdout
    assert "SONAME               libicudata.so.73" in soname
    with pytest.raises(ValueError, match="not an ICU data library"):
        bundle_rules.icu_stub(Path("libicuuc.so.73"), tmp_path)


ICU_BACKED = (
    "QCollator",
    "localeAwareCompare",
    "QStringConverter",
    "QStringDecoder",
    "QStringEncoder",
    "QFileDialog",
    "setSortLocaleAware",
)


def test_the_app_uses_no_qt_api_that_needs_icu_data() -> None:
    """The Linux bundle ships an empty ICU data library (bundle_rules.icu_stub): Qt's collation
    and legacy text codecs would find no data there (a warning, then a plain comparison). If
    the app needs one of them, bundle the real libicudata again."""
    root = Path(__file__).resolve().parents[3]
    for folder in ("app", "ui"):
        for path in (root / folder).rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            used = [name for name in ICU_BACKED if name in text]
            assert not used, f"{path.relative_to(root)} uses {used}: see bundle_rules.icu_stub"
