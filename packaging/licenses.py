"""The licence notices of everything a bundle carries, from the installed distributions' metadata.

    python packaging/licenses.py build/deskbell/manifest.json > THIRD-PARTY-NOTICES.txt
    python packaging/licenses.py --debian build/deskbell/manifest.json > copyright

`manifest.json` is written by deskbell.spec: the bundle's top-level Python modules and each
binary with the file it was copied from. A Python distribution is listed when one of its
top-level modules is in the bundle, with its licence (License-Expression, License or the
classifiers) and every licence file its wheel ships. Qt and PySide6 (LGPL-3.0, whose wheels ship
no licence file) get their notice here. On Linux, each bundled library copied from a Debian
package brings that package's copyright file. `--debian` (the .deb's
/usr/share/doc/deskbell/copyright) points at /usr/share/common-licenses for the LGPL text.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Iterable
from importlib.metadata import Distribution, distributions, packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

QT_NOTICE = """\
Qt 6 and PySide6 / Shiboken6 (Qt for Python)
Copyright (C) The Qt Company Ltd. and other contributors.
License: LGPL-3.0-only

Deskbell uses Qt and Qt for Python under the GNU Lesser General Public License version 3
({lgpl}). They are shipped as separate shared libraries (the PySide6 folder of the
bundle), unmodified except that debugging symbols were stripped and ICU's data library was
replaced by an empty one; you may replace them with your own compatible build. Their source
code is available from https://code.qt.io/ and
https://download.qt.io/official_releases/QtForPython/ ; on request we send the source of the
exact versions we ship.
"""

PYTHON_NOTICE = """\
Python {version}
Copyright (c) 2001 Python Software Foundation; All Rights Reserved.
License: PSF-2.0 (https://docs.python.org/3/license.html)
"""


def bundled_distributions(modules: Iterable[str]) -> list[Distribution]:
    """The installed distributions that provide one of `modules` (top-level names)."""
    providers = packages_distributions()
    names = {dist for module in modules for dist in providers.get(module, [])}
    found: dict[str, Distribution] = {}
    for dist in distributions():
        name = dist.metadata["Name"]
        if name in names and name.lower() not in found:
            found[name.lower()] = dist
    return [found[key] for key in sorted(found)]


def license_of(dist: Distribution) -> str:
    meta = dist.metadata
    expression = meta.get("License-Expression")
    if expression:
        return str(expression)
    text = meta.get("License")
    if text and "\n" not in text.strip() and len(text) < 100:
        return str(text).strip()
    classifiers = [
        c.rsplit("::", 1)[-1].strip()
        for c in meta.get_all("Classifier") or []
        if c.startswith("License ::")
    ]
    return ", ".join(classifiers) or "see the licence text below"


def license_files(dist: Distribution) -> list[tuple[str, str]]:
    out = []
    for file in dist.files or []:
        name = file.name.upper()
        in_dist_info = ".dist-info" in str(file)
        if in_dist_info and name.startswith(("LICENSE", "LICENCE", "COPYING", "NOTICE", "AUTHORS")):
            path = Path(str(file.locate()))
            if path.is_file():
                out.append((str(file), path.read_text(encoding="utf-8", errors="replace")))
    return out


def debian_package_of(path: str) -> str | None:
    """The Debian package that installed `path`, or None (not from a package, no dpkg)."""
    # dpkg may know a library by its /lib or its /usr/lib path (the /usr merge): ask for both.
    real = str(Path(path).resolve())
    candidates = dict.fromkeys([path, real, real.removeprefix("/usr"), "/usr" + real])
    for candidate in candidates:
        try:
            done = subprocess.run(
                ["dpkg", "-S", candidate], capture_output=True, text=True, check=False
            )
        except FileNotFoundError:
            return None
        if done.returncode == 0 and ":" in done.stdout:
            return done.stdout.split(":", 1)[0].split(",")[0].strip()
    return None


def notices(manifest: dict[str, list], *, debian: bool = False) -> str:
    modules = set(manifest["modules"]) | {dest.split("/")[0] for dest, _src in manifest["binaries"]}
    version = ".".join(map(str, sys.version_info[:3]))
    lgpl = (
        "/usr/share/common-licenses/LGPL-3" if debian else "https://www.gnu.org/licenses/lgpl-3.0"
    )
    deskbell_license = (ROOT / "LICENSE").read_text(encoding="utf-8")
    parts = ["Deskbell\n" + deskbell_license, QT_NOTICE.format(lgpl=lgpl)]
    parts.append(PYTHON_NOTICE.format(version=version))
    for dist in bundled_distributions(modules):
        name = dist.metadata["Name"]
        if name.lower().replace("-", "_") in ("deskbell", "pyside6_essentials", "shiboken6"):
            continue  # above
        texts = "\n\n".join(f"--- {file}\n{text.strip()}" for file, text in license_files(dist))
        parts.append(
            f"{name} {dist.version}\nLicense: {license_of(dist)}"
            + (f"\n\n{texts}" if texts else "")
        )
    # Shared libraries copied from the build machine's Debian packages.
    packages: dict[str, list[str]] = {}
    for dest, src in manifest["binaries"]:
        package = debian_package_of(src) if src.startswith(("/lib", "/usr/lib")) else None
        if package:
            packages.setdefault(package, []).append(Path(dest).name)
    for package, files in sorted(packages.items()):
        copyright_file = Path("/usr/share/doc") / package.split(":")[0] / "copyright"
        if copyright_file.is_file():
            text = copyright_file.read_text(encoding="utf-8", errors="replace").strip()
        else:
            text = "(no copyright file found on the build machine)"
        parts.append(f"{', '.join(sorted(files))} (from the Debian package {package})\n{text}")
    return "\n\n".join(parts).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("manifest", type=Path, help="build/deskbell/manifest.json")
    parser.add_argument("--debian", action="store_true", help="for /usr/share/doc (Debian)")
    args = parser.parse_args(argv)
    manifest = json.loads(args.manifest.read_text())
    sys.stdout.write(notices(manifest, debian=args.debian))
    return 0


if __name__ == "__main__":
    sys.exit(main())
