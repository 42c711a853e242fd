"""The layout's import rules, read from the source: the engine (shared/engine) and the music library
tools (shared/library) never reach Redis, Celery or Flask; the service plumbing (shared/service) and
the API never reach torch. Imports inside
functions count: a lazy import is still an import."""
from __future__ import annotations

import ast
import re
import sys
from functools import cache
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SERVICE_LIBRARIES = {"redis", "celery", "kombu", "flask", "werkzeug", "gunicorn"}


def _module_file(name: str) -> Path | None:
    base = REPO.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imported_names(path: Path) -> set[str]:
    """Every module ``path`` imports, as dotted names (``from a import b`` gives a and, where b is a
    module of ours, a.b; relative imports are resolved against the module's package)."""
    package = list(path.relative_to(REPO).parent.parts)
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            if module:
                names.add(module)
            names.update(f"{module}.{alias.name}".lstrip(".") for alias in node.names
                         if _module_file(f"{module}.{alias.name}".lstrip(".")))
    return names


@cache
def reaches(module: str) -> frozenset[str]:
    """The top-level names of every library ``module`` imports, directly or through our modules."""
    seen, libraries, todo = set(), set(), [module]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        parts = name.split(".")
        # Importing a.b.c runs a/__init__.py and a/b/__init__.py first.
        todo.extend(".".join(parts[:i]) for i in range(1, len(parts)) if _module_file(".".join(parts[:i])))
        path = _module_file(name)
        if path is None:
            libraries.add(parts[0])
            continue
        todo.extend(_imported_names(path))
    return frozenset(libraries)


def _modules(folder: str) -> list[str]:
    return sorted(".".join(p.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
                  for p in (REPO / folder).rglob("*.py"))


def test_the_rule_reader_sees_torch_behind_the_classifier():
    assert "torch" in reaches("shared.engine.inference")


def test_the_rule_reader_sees_redis_behind_the_job_store():
    assert "redis" in reaches("shared.service.jobs")


@pytest.mark.parametrize("module", _modules("shared/engine") + _modules("shared/library"))
def test_no_engine_or_library_module_reaches_redis_celery_or_flask(module):
    assert not reaches(module) & SERVICE_LIBRARIES


@pytest.mark.parametrize("module", [m for m in _modules("shared/engine") if m != "shared.engine.cli"])
def test_no_engine_module_but_its_command_imports_the_service(module):
    # The engine takes plain arguments; only genre-classify, an entry point, reads the settings.
    assert not any(name.startswith("shared.service") for name in _imported_names(_module_file(module)))


def test_the_rule_reader_resolves_relative_imports(tmp_path, monkeypatch):
    package = tmp_path / "shared" / "service"
    package.mkdir(parents=True)
    (tmp_path / "shared" / "__init__.py").write_text("")
    (package / "__init__.py").write_text("")
    (package / "sneaky.py").write_text("from ..engine.inference import GenreClassifier\nfrom . import jobs\n")
    monkeypatch.setattr(sys.modules[__name__], "REPO", tmp_path)
    assert _imported_names(package / "sneaky.py") >= {"shared.engine.inference", "shared.service"}


@pytest.mark.parametrize("module", _modules("shared/service") + _modules("api"))
def test_no_service_or_api_module_reaches_torch(module):
    assert "torch" not in reaches(module)


# Each process reads the environment once, where it starts, and passes the values down.
ENTRY_POINTS = {
    "api/__init__.py",  # create_app, the API factory (each API worker process's app)
    "api/gunicorn_conf.py",  # the API's gunicorn master
    "worker/celery_app.py",  # the Celery worker
    "shared/engine/cli.py",  # genre-classify
    "shared/service/migrate.py",  # the database's migration step
    "shared/service/admin.py",  # genre-admin (API keys)
    "training/cli.py",  # genre-train
    "training/evaluate_gtzan.py",  # its own command
    "deploy/run_local.py",  # make up
}


def test_only_entry_points_read_the_settings_from_the_environment():
    readers = {str(p.relative_to(REPO)) for folder in ("api", "worker", "shared", "training", "deploy")
               for p in (REPO / folder).rglob("*.py") if "Settings.from_env(" in p.read_text()}
    assert readers <= ENTRY_POINTS


def test_only_entry_points_make_settings():
    # Settings(...) in library code would be values nobody set: defaults, or a copy made aside.
    makers = {str(p.relative_to(REPO)) for folder in ("api", "worker", "shared", "training")
              for p in (REPO / folder).rglob("*.py") if re.search(r"\bSettings\(", p.read_text())}
    assert makers - {"shared/service/settings.py"} <= ENTRY_POINTS
