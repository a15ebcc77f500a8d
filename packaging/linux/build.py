"""Linux packages from the PyInstaller bundle: a .deb, an AppDir (an AppImage where appimagetool
is installed) and a tarball. `make package` runs it after PyInstaller; see packaging/README.md.

    python packaging/linux/build.py [deb] [appimage] [tarball]    (default: all three)

Reads dist/Deskbell (the bundle) and build/deskbell/manifest.json (written by deskbell.spec);
writes dist/deskbell_<version>_<arch>.deb, dist/Deskbell-<version>-<arch>.AppImage (or the
AppDir beside it), dist/deskbell-<version>-linux-<arch>.tar.gz. Needs binutils (objdump),
dpkg-deb, and a Python with PySide6 (this one) to draw the 512 px icon from the SVG.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Iterable
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "packaging"), str(ROOT)]

import bundle_rules  # noqa: E402
import licenses  # noqa: E402

from resources import APP_ID  # noqa: E402

LINUX = ROOT / "packaging" / "linux"
ICONS = ROOT / "resources" / "icons"
# The hicolor theme's sizes that we have PNGs for; 512 is drawn from the SVG at build time.
HICOLOR_SIZES = (16, 22, 24, 32, 48, 64, 128, 256)
# Loaded by name at run time (ctypes), so no binary names it: psycopg's system libpq.
RUNTIME_PACKAGES = ("libpq5",)
DESCRIPTION = """\
Help-desk messenger that emails what nobody saw
 Deskbell is a desktop messenger for help-desk agents: internal conversations
 with the team and external ones with customers, a tray icon with a count, a
 ping and desktop notifications. Whatever a person does not see within a
 minute is sent to them by email."""


def arch() -> str:
    try:
        return subprocess.run(
            ["dpkg", "--print-architecture"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())


def appimage_arch() -> str:
    return platform.machine()


# --- what the bundle needs from the system -----------------------------------------------------


def system_libraries(bundle: Path) -> tuple[set[str], tuple[int, int]]:
    """The sonames the bundle's binaries need that it does not carry, and the newest glibc."""
    carried = {p.name for p in bundle.rglob("*") if p.is_file() or p.is_symlink()}
    needed: set[str] = set()
    newest = (0, 0)
    for path in bundle_rules.elf_files(bundle):
        needed.update(bundle_rules.elf_needed(path))
        glibc = bundle_rules.glibc_needed(path)
        if glibc is not None and glibc > newest:
            newest = glibc
    return needed - carried, newest


def debian_depends(sonames: Iterable[str], glibc: tuple[int, int]) -> tuple[list[str], list[str]]:
    """(Depends entries, sonames no installed package provides: optional plugins' needs)."""
    paths = {}
    for line in subprocess.run(
        ["/sbin/ldconfig", "-p"], capture_output=True, text=True, check=True
    ).stdout.splitlines():
        match = re.match(r"\s*(\S+) \((.*)\) => (\S+)", line)
        if match:  # the first entry is this architecture's (the cache lists it first)
            paths.setdefault(match.group(1), match.group(3))
    packages: set[str] = set(RUNTIME_PACKAGES)
    missing: list[str] = []
    for soname in sorted(sonames):
        path = paths.get(soname)
        package = licenses.debian_package_of(path) if path else None
        if package is None:
            missing.append(soname)
        else:
            packages.add(package.split(":")[0])
    packages.discard("libc6")
    return [f"libc6 (>= {glibc[0]}.{glibc[1]})", *sorted(packages)], missing


# --- the files every package shares ------------------------------------------------------------


def draw_icon(size: int, target: Path) -> None:
    """deskbell-<size>.png drawn from the SVG (offscreen Qt, this Python)."""
    code = (
        "import sys; from pathlib import Path\n"
        "from PySide6.QtGui import QGuiApplication\n"
        "app = QGuiApplication([])\n"
        "from ui.icons import render_app_pngs\n"
        "render_app_pngs(folder=Path(sys.argv[1]), sizes=(int(sys.argv[2]),))\n"
    )
    target.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [sys.executable, "-c", code, str(target), str(size)],
        check=True,
        cwd=ROOT,
        env=dict(os.environ, QT_QPA_PLATFORM="offscreen"),
    )


def stage_share(usr: Path, *, work: Path, desktop_text: str | None = None) -> None:
    """usr/share: the menu entry, AppStream metainfo, hicolor icons (PNG, 512 px, SVG)."""
    share = usr / "share"
    apps = share / "applications"
    apps.mkdir(parents=True, exist_ok=True)
    desktop = (LINUX / f"{APP_ID}.desktop").read_text()
    (apps / f"{APP_ID}.desktop").write_text(desktop_text or desktop)
    metainfo = share / "metainfo"
    metainfo.mkdir(parents=True, exist_ok=True)
    shutil.copy2(LINUX / f"{APP_ID}.metainfo.xml", metainfo / f"{APP_ID}.metainfo.xml")
    hicolor = share / "icons" / "hicolor"
    for size in HICOLOR_SIZES:
        target = hicolor / f"{size}x{size}" / "apps"
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ICONS / f"deskbell-{size}.png", target / "deskbell.png")
    drawn = work / "icons"
    if not (drawn / "deskbell-512.png").is_file():
        draw_icon(512, drawn)
    (hicolor / "512x512" / "apps").mkdir(parents=True, exist_ok=True)
    shutil.copy2(drawn / "deskbell-512.png", hicolor / "512x512" / "apps" / "deskbell.png")
    (hicolor / "scalable" / "apps").mkdir(parents=True, exist_ok=True)
    shutil.copy2(ICONS / "deskbell.svg", hicolor / "scalable" / "apps" / "deskbell.svg")


def validation_remarks(usr: Path) -> list[str]:
    """What desktop-file-validate and `appstreamcli validate` say of the menu entry and the
    metainfo, but pedantic hints: each remark is a line (a missing tool is one too)."""
    desktop = usr / "share" / "applications" / f"{APP_ID}.desktop"
    metainfo = usr / "share" / "metainfo" / f"{APP_ID}.metainfo.xml"
    remarks: list[str] = []
    for tool, package, args in (
        ("desktop-file-validate", "desktop-file-utils", [str(desktop)]),
        ("appstreamcli", "appstream", ["validate", "--no-net", "--pedantic", str(metainfo)]),
    ):
        if shutil.which(tool) is None:
            remarks.append(
                f"{tool} is not installed (Debian package {package}: make system-packages)"
            )
            continue
        done = subprocess.run([tool, *args], capture_output=True, text=True)
        said = [
            f"{tool}: {line.strip()}"
            for line in (done.stdout + done.stderr).splitlines()
            # appstreamcli's verdict and its pedantic hints (our id has capitals, as reverse
            # DNS ids of desktop apps do) are not remarks; desktop-file-validate says nothing
            # of a good file.
            if line.strip() and not line.startswith(("P: ", "\u2714", "Validation was"))
        ]
        if done.returncode != 0 and not said:
            said = [f"{tool}: exit {done.returncode}"]
        remarks.extend(said)
    return remarks


def validate(usr: Path) -> None:
    """Refuse a menu entry or metainfo that a validator remarks on."""
    if remarks := validation_remarks(usr):
        raise SystemExit(
            "build.py: the menu entry or metainfo does not validate:\n  " + "\n  ".join(remarks)
        )


def add_notices(folder: Path, manifest: dict[str, list]) -> None:
    """LICENSE and THIRD-PARTY-NOTICES.txt (with Qt's LGPL notice) into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy2(ROOT / "LICENSE", folder / "LICENSE")
    (folder / "THIRD-PARTY-NOTICES.txt").write_text(licenses.notices(manifest))


def copy_bundle(bundle: Path, target: Path) -> None:
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(bundle, target, symlinks=True)


# --- the packages ------------------------------------------------------------------------------


def build_deb(bundle: Path, manifest: dict[str, list], *, out: Path, work: Path) -> Path:
    ver = version("deskbell")
    root = work / "deb"
    if root.exists():
        shutil.rmtree(root)
    copy_bundle(bundle, root / "opt" / "deskbell")
    (root / "usr" / "bin").mkdir(parents=True)
    (root / "usr" / "bin" / "deskbell").symlink_to("/opt/deskbell/deskbell")
    stage_share(root / "usr", work=work)
    validate(root / "usr")
    doc = root / "usr" / "share" / "doc" / "deskbell"
    doc.mkdir(parents=True)
    (doc / "copyright").write_text(licenses.notices(manifest, debian=True))
    sonames, glibc = system_libraries(bundle)
    depends, missing = debian_depends(sonames, glibc)
    if missing:
        print(f"build.py: no installed package provides {', '.join(missing)} (optional plugins)")
    size_kb = sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) // 1024
    (root / "DEBIAN").mkdir()
    (root / "DEBIAN" / "control").write_text(
        f"Package: deskbell\nVersion: {ver}\nArchitecture: {arch()}\n"
        "Maintainer: The Deskbell developers <maintainers@deskbell.app>\n"
        f"Installed-Size: {size_kb}\nDepends: {', '.join(depends)}\n"
        "Recommends: libnotify-bin, fonts-noto-color-emoji, libwayland-egl1\n"
        "Section: net\nPriority: optional\n"
        f"Description: {DESCRIPTION}\n"
    )
    target = out / f"deskbell_{ver}_{arch()}.deb"
    # gzip: a few seconds; xz would take a minute for a few MB less.
    subprocess.run(
        ["dpkg-deb", "--root-owner-group", "-Zgzip", "-z6", "--build", str(root), str(target)],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    print(
        f"build.py: {target} ({target.stat().st_size / 1e6:.1f} MB); Depends: {', '.join(depends)}"
    )
    return target


def build_appdir(bundle: Path, manifest: dict[str, list], *, work: Path) -> Path:
    """work/Deskbell.AppDir: what appimagetool packs and the AppImage runtime starts."""
    appdir = work / "Deskbell.AppDir"
    if appdir.exists():
        shutil.rmtree(appdir)
    copy_bundle(bundle, appdir / "usr" / "lib" / "deskbell")
    (appdir / "usr" / "bin").mkdir(parents=True)
    (appdir / "usr" / "bin" / "deskbell").symlink_to("../lib/deskbell/deskbell")
    (appdir / "AppRun").symlink_to("usr/bin/deskbell")  # the bootloader follows /proc/self/exe
    # In an AppImage, "deskbell" is not on PATH: no TryExec (it would hide the entry); the
    # desktop integration rewrites Exec to the AppImage's path.
    desktop = "".join(
        line
        for line in (LINUX / f"{APP_ID}.desktop").read_text().splitlines(keepends=True)
        if not line.startswith("TryExec=")
    )
    stage_share(appdir / "usr", work=work, desktop_text=desktop)
    validate(appdir / "usr")
    add_notices(appdir / "usr" / "share" / "doc" / "deskbell", manifest)
    shutil.copy2(appdir / "usr/share/applications" / f"{APP_ID}.desktop", appdir)
    shutil.copy2(ICONS / "deskbell.svg", appdir / "deskbell.svg")
    shutil.copy2(ICONS / "deskbell-256.png", appdir / ".DirIcon")
    # appimagetool looks for <id>.appdata.xml.
    metainfo = appdir / "usr/share/metainfo"
    shutil.copy2(metainfo / f"{APP_ID}.metainfo.xml", metainfo / f"{APP_ID}.appdata.xml")
    return appdir


def build_appimage(bundle: Path, manifest: dict[str, list], *, out: Path, work: Path) -> Path:
    """The AppDir, and the AppImage if appimagetool is on PATH (not a Debian package)."""
    ver = version("deskbell")
    appdir = build_appdir(bundle, manifest, work=work)
    target = out / f"Deskbell-{ver}-{appimage_arch()}.AppImage"
    tool = shutil.which("appimagetool")
    if tool is None:
        kept = out / "Deskbell.AppDir"
        if kept.exists():
            shutil.rmtree(kept)
        shutil.move(str(appdir), kept)
        print(
            f"build.py: appimagetool is not installed: the AppDir is {kept}; "
            f"`appimagetool {kept} {target}` makes the AppImage (the release workflow does)"
        )
        return kept
    subprocess.run(
        [tool, "--no-appstream", str(appdir), str(target)],
        check=True,
        env=dict(os.environ, ARCH=appimage_arch()),
    )
    print(f"build.py: {target} ({target.stat().st_size / 1e6:.1f} MB)")
    return target


def build_tarball(bundle: Path, manifest: dict[str, list], *, out: Path, work: Path) -> Path:
    """deskbell-<version>/: the bundle, share/ (menu entry, icons, metainfo), the notices."""
    ver = version("deskbell")
    top = work / "tar" / f"deskbell-{ver}"
    if top.parent.exists():
        shutil.rmtree(top.parent)
    copy_bundle(bundle, top)
    stage_share(top, work=work)
    add_notices(top, manifest)
    (top / "INSTALL.txt").write_text(
        "Deskbell for Linux (glibc 2.35 or newer: Ubuntu 22.04, Debian 12 and later).\n\n"
        "Run it from here: ./deskbell\n\n"
        "Install it for yourself:\n"
        "  mkdir -p ~/.local/opt && cp -r . ~/.local/opt/deskbell\n"
        "  ln -sf ~/.local/opt/deskbell/deskbell ~/.local/bin/deskbell\n"
        "  cp -r share/. ~/.local/share/\n"
    )
    target = out / f"deskbell-{ver}-linux-{appimage_arch()}.tar.gz"
    with tarfile.open(target, "w:gz", compresslevel=6) as tar:
        tar.add(top, arcname=top.name)
    print(f"build.py: {target} ({target.stat().st_size / 1e6:.1f} MB)")
    return target


def check_glibc(bundle: Path) -> None:
    """Refuse a bundle that needs a newer glibc than bundle_rules.GLIBC_FLOOR."""
    too_new = [
        (path, needs)
        for path in bundle_rules.elf_files(bundle)
        if (needs := bundle_rules.glibc_needed(path)) is not None
        and needs > bundle_rules.GLIBC_FLOOR
    ]
    if too_new:
        floor = ".".join(map(str, bundle_rules.GLIBC_FLOOR))
        lines = "\n".join(f"  {p.relative_to(bundle)}: glibc {a}.{b}" for p, (a, b) in too_new)
        raise SystemExit(f"build.py: these need a glibc newer than {floor}:\n{lines}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", nargs="*", help="deb, appimage, tarball (default: all)")
    parser.add_argument("--bundle", type=Path, default=ROOT / "dist" / "Deskbell")
    parser.add_argument("--build", type=Path, default=ROOT / "build" / "deskbell")
    parser.add_argument("--out", type=Path, default=ROOT / "dist")
    args = parser.parse_args(argv)
    what = args.what or ["deb", "appimage", "tarball"]
    if unknown := set(what) - {"deb", "appimage", "tarball"}:
        parser.error(f"unknown package kind: {', '.join(sorted(unknown))}")
    manifest = json.loads((args.build / "manifest.json").read_text())
    work = args.build / "linux"
    work.mkdir(parents=True, exist_ok=True)
    check_glibc(args.bundle)
    if "deb" in what:
        build_deb(args.bundle, manifest, out=args.out, work=work)
    if "appimage" in what:
        build_appimage(args.bundle, manifest, out=args.out, work=work)
    if "tarball" in what:
        build_tarball(args.bundle, manifest, out=args.out, work=work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
