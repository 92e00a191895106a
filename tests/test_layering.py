"""Layering of the package: the lower layers import nothing from the upper ones, no two modules import each other
(directly or round a cycle), and the method and prior registries answer without importing torch or deepinv.

Read statically from the source (every ``import`` statement, also those inside functions), so that a lazy import
counts as much as a top-level one. The layers are written out in docs/architecture.md."""

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "recon"

LOWER = ("recon.physics", "recon.io", "recon.models")
UPPER = ("recon.solvers", "recon.cli", "recon_napari", "recon.pipeline", "recon.batch", "recon.methods", "recon.priors")
"""Nothing in a LOWER package may import from an UPPER one."""
LOW_MODULES = ("recon.errors", "recon.params", "recon.specs", "recon.progress", "recon.plugins",
               "recon.shrinkage", "recon.proximal_gradient", "recon.weights")
"""Shared foundations: they may import only each other (and third-party packages)."""


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """The absolute names of everything ``path`` imports, at any depth of its code."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


MODULES = {module_name(path): path for path in PACKAGE.rglob("*.py")}
GRAPH = {name: {other for other in imports(path) if other in MODULES and other != name}
         for name, path in MODULES.items()}


def inside(name: str, packages: tuple[str, ...]) -> bool:
    return any(name == package or name.startswith(package + ".") for package in packages)


@pytest.mark.parametrize("lower", LOWER)
def test_lower_layers_import_nothing_from_the_upper_ones(lower):
    offending = {name: sorted(other for other in imports(MODULES[name]) if inside(other, UPPER))
                 for name in MODULES if inside(name, (lower,))}
    assert not {name: found for name, found in offending.items() if found}


def test_low_modules_import_only_each_other():
    offending = {name: sorted(other for other in GRAPH[name] if other not in LOW_MODULES) for name in LOW_MODULES}
    assert not {name: found for name, found in offending.items() if found}


def test_no_import_cycles():
    """Tarjan's strongly connected components of the import graph: each must be a single module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in GRAPH[node]:
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in GRAPH:
        if node not in index:
            visit(node)
    assert not cycles


def imports_of_torch(code: str) -> list[str]:
    """Which of torch and deepinv a fresh interpreter has imported after running ``code``."""
    probe = code + "\nimport json, sys\nprint(json.dumps(sorted(k for k in ('torch', 'deepinv') if k in sys.modules)))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_listing_methods_and_priors_imports_neither_torch_nor_deepinv():
    assert imports_of_torch(
        "import recon.methods as m\n"
        "for method in m.all_methods():\n"
        "    [p.describe() for p in method.params]\n"
        "    [m.compatible_priors(method, spec) for spec in method.specs]\n"
        "assert [x.name for x in m.methods_for_spec('mimo-nearfield/1')]") == []


def test_validation_errors_import_neither_torch_nor_deepinv():
    assert imports_of_torch(
        "from recon.errors import UserError\n"
        "from recon.methods import get_method\n"
        "errors = []\n"
        "for attempt in (lambda: get_method('nope'), lambda: get_method('tv').parse_params({'lam': 'x'}),\n"
        "                lambda: get_method('pnp-admm').parse_params({}, prior='l1'),\n"
        "                lambda: get_method('lpn').parse_params({}, prior='lpn-ct', spec='mri-cartesian/1')):\n"
        "    try:\n"
        "        attempt()\n"
        "    except UserError as error:\n"
        "        errors.append(str(error))\n"
        "assert len(errors) == 4, errors") == []
