"""The package's layers import only downward (checked on every module's source, lazy imports included).

core <- train | inference <- eval <- cv | bench | serve <- cli. Modules of one layer that are
listed apart (train and inference; cv, bench and serve) do not import each other either.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FOLDERS = {"arner": REPO / "src" / "arner", "arner.train": REPO / "train", "arner.eval": REPO / "eval"}
LAYERS = [["arner.core"], ["arner.train", "arner.inference"], ["arner.eval"], ["arner.cv", "arner.bench", "arner.serve"], ["arner.cli"]]


def component(module: str) -> str | None:
    """The layer component a module belongs to (None: the root package, which only re-exports lazily)."""
    for layer in LAYERS:
        for name in layer:
            if module == name or module.startswith(name + "."):
                return name
    return None


def rank(name: str) -> int:
    return next(i for i, layer in enumerate(LAYERS) if name in layer)


def modules() -> dict[str, Path]:
    found = {}
    for package, folder in FOLDERS.items():
        for path in folder.rglob("*.py"):
            if package == "arner" and any(part in ("train", "eval") for part in path.relative_to(folder).parts[:1]):
                continue
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join([package, *parts])] = path
    return found


def imported(path: Path, module: str) -> list[tuple[int, str]]:
    """`arner` modules imported anywhere in the file, with their line."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            base = node.module
            if node.level:  # relative: resolve against the importing module's package
                base = ".".join(module.split(".")[: -node.level] + [node.module])
            out += [(node.lineno, f"{base}.{a.name}") for a in node.names] if base == "arner" else [(node.lineno, base)]
    return [(line, name) for line, name in out if name == "arner" or name.startswith("arner.")]


def violations() -> list[str]:
    problems = []
    for module, path in sorted(modules().items()):
        source = component(module)
        if source is None:
            continue
        for line, target in imported(path, module):
            dest = component(target)
            if dest is None or dest == source:
                continue
            if rank(dest) >= rank(source):
                where = path.relative_to(REPO) if path.is_relative_to(REPO) else path
                problems.append(f"{where}:{line}: {source} imports {target} ({dest} is not below {source})")
    return problems


def test_every_module_is_in_a_layer():
    unplaced = [m for m in modules() if m != "arner" and component(m) is None]
    assert unplaced == []


def test_layers_import_only_downward():
    assert violations() == []


def test_the_checker_catches_an_upward_import(tmp_path, monkeypatch):
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from arner.cli import app\n")
    monkeypatch.setitem(FOLDERS, "arner.train", tmp_path)
    assert any("bad.py:2: arner.train imports arner.cli" in v for v in violations())


@pytest.mark.parametrize("module", ["arner.train.config", "arner.cli"])
def test_loading_configs_and_the_cli_imports_no_torch(module):
    code = f"import sys, {module}; print(sorted(m for m in ('torch', 'transformers', 'fastapi') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"
