"""Layout rules of the project's packages (vtn, registry, ven_sim), read with ``ast``:

* no import circles between modules (imports inside functions count, since a lazy import
  only hides a circle; imports under ``if TYPE_CHECKING:`` do not, since they never run);
* no module over ``MAX_LINES`` lines.

Importing a submodule from an ancestor package (``from registry.api import common``
inside ``registry.api.ders``) only initialises the package, so it is not an edge to the
package; importing any other name from it (``from registry.api import mount_api``) is.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("vtn", "registry", "ven_sim")
MAX_LINES = 500

# Known exceptions (none today): a module allowed over MAX_LINES, a circle allowed as is.
# A circle must match an entry exactly, so a module joining an allowed circle fails.
ALLOWED_OVERSIZE: set[str] = set()
ALLOWED_CIRCLES: list[set[str]] = []


def find_modules(root: Path, packages: tuple[str, ...]) -> dict[str, Path]:
    mods: dict[str, Path] = {}
    for pkg in packages:
        for path in sorted((root / pkg).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            mods[".".join(parts)] = path
    return mods


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    """ids of the nodes in the bodies of ``if TYPE_CHECKING:`` (or typing.TYPE_CHECKING)."""
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If):
            test = node.test
            name = test.id if isinstance(test, ast.Name) else (
                test.attr if isinstance(test, ast.Attribute) else None)
            if name == "TYPE_CHECKING":
                for stmt in node.body:
                    skip.update(id(sub) for sub in ast.walk(stmt))
    return skip


def _owner(name: str, mods: dict[str, Path]) -> str | None:
    """The longest project module that ``name`` is or lies in."""
    while name and name not in mods:
        name = name.rpartition(".")[0]
    return name or None


def imports_of(module: str, path: Path, mods: dict[str, Path]) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    skip = _type_checking_nodes(tree)
    is_pkg = path.name == "__init__.py"
    ancestors = {".".join(module.split(".")[:i]) for i in range(1, module.count(".") + 1)}
    out: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                target = _owner(alias.name, mods)
                if target:
                    out.add(target)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = module.split(".") if is_pkg else module.split(".")[:-1]
                parts = parts[: len(parts) - (node.level - 1)]
                base = ".".join(parts + ([base] if base else []))
            pkg = _owner(base, mods)
            if pkg is None:
                continue
            only_submodules = True
            for alias in node.names:
                full = f"{base}.{alias.name}"
                if full in mods:
                    out.add(full)
                else:
                    only_submodules = False
            if pkg != base or not (only_submodules and pkg in ancestors):
                out.add(pkg)
    out.discard(module)
    return out


def import_graph(root: Path = ROOT, packages: tuple[str, ...] = PACKAGES
                 ) -> dict[str, set[str]]:
    mods = find_modules(root, packages)
    return {name: imports_of(name, path, mods) for name, path in mods.items()}


def circles(graph: dict[str, set[str]]) -> list[set[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            v, edges = work[-1]
            for w in edges:
                if w not in graph:
                    continue
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[v])
                if low[v] == index[v]:
                    comp = set()
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        comp.add(w)
                        if w == v:
                            break
                    if len(comp) > 1:
                        found.append(comp)
    return found


def test_no_new_import_circles() -> None:
    new = [c for c in circles(import_graph()) if c not in ALLOWED_CIRCLES]
    assert not new, "import circles: " + "; ".join(" <-> ".join(sorted(c)) for c in new)


def test_no_new_oversize_modules() -> None:
    big = {}
    for name, path in find_modules(ROOT, PACKAGES).items():
        n = len(path.read_text(encoding="utf-8").splitlines())
        if n > MAX_LINES and name not in ALLOWED_OVERSIZE:
            big[name] = n
    assert not big, f"modules over {MAX_LINES} lines: {big}"


def test_checker_sees_circles(tmp_path: Path) -> None:
    """The checker itself: relative and lazy imports count, TYPE_CHECKING ones do not."""
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    files = {
        "__init__.py": "from pkg import sub\n",
        "a.py": "def f():\n    from .b import g\n",
        "b.py": "from pkg.a import f\n",
        "c.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import d\n",
        "d.py": "import pkg.c\n",
        "sub/__init__.py": "from pkg.sub import leaf\n",
        "sub/leaf.py": "from .. import sub as _\nfrom . import __name__ as _n\n",
        "e.py": "from pkg import f\n",
        "f.py": "def x(): pass\n",
    }
    for rel, text in files.items():
        (pkg / rel).write_text(text)
    graph = import_graph(tmp_path, ("pkg",))
    assert {"pkg.a", "pkg.b"} in circles(graph)
    assert graph["pkg.c"] == set() and graph["pkg.d"] == {"pkg.c"}
    assert graph["pkg.e"] == {"pkg.f"}
    # a submodule importing a name that is not a module from its own package: an edge
    assert graph["pkg.sub.leaf"] == {"pkg.sub"}
    assert {"pkg.sub", "pkg.sub.leaf"} in circles(graph)
    assert len(circles(graph)) == 2
