"""What a PyInstaller bundle weighs, by part, and (with a trace) which of its shared libraries
the app never loaded. Anyone can re-run it; docs/benchmarks.md keeps the latest figures.

    python packaging/size_report.py dist/Deskbell
    # with a trace: run the smoke paths with LD_DEBUG=files (Linux), then report
    xvfb-run -a dbus-run-session -- python packaging/smoke_test.py --cli dist/Deskbell/deskbell \
        --demo --trace build/trace
    python packaging/size_report.py dist/Deskbell --trace build/trace

The trace lists every shared object the dynamic loader mapped in every process of the smoke
test (the CLI, the window offscreen, the demo on a display), so "never loaded" means: not in
any of those runs. Data files (Qt's translations, ICU's data inside its library) and Python
modules (inside the programs' archive) are not traced; see the parts table for them.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import defaultdict
from pathlib import Path, PurePosixPath

MB = 1 << 20  # MiB, as du -m counts


def part_of(rel: PurePosixPath) -> str:
    """A readable group for a path inside the bundle."""
    parts = rel.parts
    name = rel.name
    if parts[0] != "_internal":
        return "programs (with the Python archive)"
    inner = parts[1:]
    if not inner:
        return "other"
    if inner[0] == "PySide6":
        if len(inner) > 3 and inner[1] == "Qt" and inner[2] == "plugins":
            return f"Qt plugins: {inner[3]}"
        if len(inner) > 2 and inner[1] == "Qt" and inner[2] == "translations":
            return "Qt translations"
        if name.startswith("libicu"):
            return "ICU (Qt's Unicode library)"
        if len(inner) > 2 and inner[1] == "Qt":
            return "Qt libraries"
        return "PySide6 bindings"
    if inner[0].startswith("python3"):
        return "Python extension modules (lib-dynload)"
    if len(inner) == 1:
        if name.startswith("libpython"):
            return "Python (libpython)"
        if ".so" in name or name.endswith((".dll", ".dylib")):
            return "shared libraries copied from the build machine"
        return "other files"
    if inner[0].endswith(".dist-info"):
        return "package metadata (.dist-info)"
    return inner[0]


def inventory(bundle: Path) -> list[tuple[PurePosixPath, int]]:
    """Every regular file (links are not counted: they take no room)."""
    return [
        (PurePosixPath(*path.relative_to(bundle).parts), path.stat().st_size)
        for path in sorted(bundle.rglob("*"))
        if path.is_file() and not path.is_symlink()
    ]


def is_elf(path: Path) -> bool:
    with path.open("rb") as f:
        return f.read(4) == b"\x7fELF"


def loaded_objects(trace: Path) -> tuple[set[str], set[str]]:
    """(real paths, bare names) of the shared objects the loader mapped in the traced runs."""
    paths: set[str] = set()
    names: set[str] = set()
    for log in trace.iterdir():
        for line in log.read_text(errors="replace").splitlines():
            init = re.search(r"calling init: (\S+)", line)
            if init:
                paths.add(str(Path(init.group(1)).resolve()))
            found = re.search(
                r"\sfile=(\S+) \[\d+\];\s+(generating link map|dynamically loaded)", line
            )
            if found:
                target = found.group(1)
                if "/" in target:
                    paths.add(str(Path(target).resolve()))
                else:
                    names.add(target)
    return paths, names


def report(bundle: Path, trace: Path | None, *, top: int) -> str:
    files = inventory(bundle)
    total = sum(size for _rel, size in files)
    out = [f"**{bundle}**: {total / MB:.1f} MiB in {len(files)} files", ""]
    groups: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for rel, size in files:
        group = groups[part_of(rel)]
        group[0] += size
        group[1] += 1
    out += ["| part | MiB | files |", "| --- | ---: | ---: |"]
    for name, (size, count) in sorted(groups.items(), key=lambda g: -g[1][0]):
        out.append(f"| {name} | {size / MB:.1f} | {count} |")
    if trace is None:
        return "\n".join(out) + "\n"
    paths, names = loaded_objects(trace)
    never: list[tuple[PurePosixPath, int]] = []
    loaded_size = 0
    for rel, size in files:
        path = bundle / Path(*rel.parts)
        if not is_elf(path) or rel.parts[0] != "_internal":
            continue
        real = str(path.resolve())
        if real in paths or (
            rel.name in names and not any(p.endswith("/" + rel.name) for p in paths)
        ):
            loaded_size += size
        else:
            never.append((rel, size))
    never_size = sum(size for _rel, size in never)
    out += [
        "",
        f"Shared libraries loaded in the traced runs: {loaded_size / MB:.1f} MiB; "
        f"**never loaded: {len(never)} files, {never_size / MB:.1f} MiB**"
        f" ({len(list(trace.iterdir()))} process logs).",
        "",
        "| never loaded | part | MiB |",
        "| --- | --- | ---: |",
    ]
    for rel, size in sorted(never, key=lambda item: -item[1])[:top]:
        out.append(f"| `{rel.name}` | {part_of(rel)} | {size / MB:.2f} |")
    if len(never) > top:
        rest = sum(size for _rel, size in sorted(never, key=lambda item: -item[1])[top:])
        out.append(f"| ({len(never) - top} more) | | {rest / MB:.2f} |")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle", type=Path, help="the one-folder bundle (dist/Deskbell)")
    parser.add_argument("--trace", type=Path, help="LD_DEBUG=files logs (smoke_test.py --trace)")
    parser.add_argument("--top", type=int, default=25, help="never-loaded files to list")
    args = parser.parse_args(argv)
    sys.stdout.write(report(args.bundle, args.trace, top=args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
