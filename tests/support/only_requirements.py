"""Runs Python code with only a requirements file's packages importable, as in a container image.

    python tests/support/only_requirements.py REQUIREMENTS [--extra NAME ...] [--no-deps NAME ...]
        [--local PKG ...] -c CODE

The allowed packages are the requirements (with their extras) and everything they depend on,
resolved from the installed distributions' metadata, plus ``--extra`` distributions (what the
Dockerfile installs besides the file, such as torch), ``--no-deps`` distributions (installed
without their dependencies, such as the musicnn wheel) and ``--local`` top-level packages (the
project code the image copies). Any other top-level import fails as if it were not installed,
so an image whose requirements miss something fails here instead of at its first job.
Exits 0 when CODE ran; prints the modules it refused either way.
"""
from __future__ import annotations

import argparse
import importlib.abc
import importlib.machinery
import importlib.metadata as metadata
import os
import re
import sys
from pathlib import Path

from packaging.requirements import Requirement


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_lines(path: Path) -> list[str]:
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return [line for line in lines if line]


def closure(requirements: list[str]) -> set[str]:
    """Normalised names of the distributions these requirements pull in, transitively."""
    seen: set[tuple[str, frozenset[str]]] = set()
    names: set[str] = set()
    todo = [Requirement(r) for r in requirements]
    while todo:
        req = todo.pop()
        key = (_norm(req.name), frozenset(req.extras))
        if key in seen:
            continue
        seen.add(key)
        names.add(key[0])
        try:
            dist = metadata.distribution(req.name)
        except metadata.PackageNotFoundError:
            sys.exit(f"{req.name} is required but not installed here, so it cannot be checked")
        for raw in dist.requires or []:
            sub = Requirement(raw)
            if sub.marker is None:
                todo.append(sub)
            elif any(sub.marker.evaluate({"extra": extra}) for extra in (req.extras or {""})):
                todo.append(sub)
    return names


# The interpreter's own library (and its compiled modules, some not named in
# sys.stdlib_module_names) is in every image: the folder of os.py, less its site-packages.
# (sysconfig's paths will not do: in a virtual environment "platstdlib" is the venv's lib/.)
_STDLIB = Path(os.__file__).resolve().parent


def _in_stdlib(name: str) -> bool:
    if name in sys.stdlib_module_names or name in sys.builtin_module_names:
        return True
    spec = importlib.machinery.PathFinder.find_spec(name)
    if not (spec and spec.origin):
        return False
    origin = Path(spec.origin).resolve()
    return origin.is_relative_to(_STDLIB) and "site-packages" not in origin.relative_to(_STDLIB).parts


class _Refuse(importlib.abc.MetaPathFinder):
    def __init__(self, allowed: set[str]):
        self.allowed = allowed
        self.refused: set[str] = set()

    def find_spec(self, fullname, path, target=None):
        top = fullname.partition(".")[0]
        if path is not None or top in self.allowed or _in_stdlib(top):
            return None
        self.refused.add(top)
        raise ModuleNotFoundError(f"No module named {top!r} (not in the image's requirements)", name=top)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("requirements", type=Path)
    parser.add_argument("--extra", action="append", default=[], help="distribution installed besides the file")
    parser.add_argument("--no-deps", action="append", default=[], help="distribution installed with --no-deps")
    parser.add_argument("--local", action="append", default=[], help="top-level package the image copies")
    parser.add_argument("-c", dest="code", required=True)
    args = parser.parse_args()

    dists = closure(requirement_lines(args.requirements) + args.extra) | {_norm(n) for n in args.no_deps}
    modules = {module for module, owners in metadata.packages_distributions().items()
               if any(_norm(owner) in dists for owner in owners)}
    guard = _Refuse(modules | set(args.local))
    sys.meta_path.insert(0, guard)
    try:
        exec(compile(args.code, "<image check>", "exec"), {"__name__": "__image_check__"})
    finally:
        print("refused imports:", " ".join(sorted(guard.refused)) or "none", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
