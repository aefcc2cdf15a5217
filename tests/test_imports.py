"""The import graph: no module-level import cycle among gpubk's modules (imports inside
functions do not count), so that nothing depends on the order modules are imported in."""
import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {"gpubk": ROOT / "gpubk", "gpubk.kernels": ROOT / "kernels"}


def _modules() -> dict:
    """Module name -> source path, for every module of the package (kernels included)."""
    found = {}
    for package, folder in PACKAGES.items():
        for path in folder.rglob("*.py"):
            parts = [package, *path.relative_to(folder).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _top_level_imports(tree: ast.Module):
    """The import statements a module runs when imported: at its top level, including inside
    top-level if/try/with blocks, not inside functions or classes."""
    pending = list(tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, (ast.If, ast.Try, ast.With)):
            for field in ("body", "orelse", "finalbody"):
                pending.extend(getattr(node, field, []))
            for handler in getattr(node, "handlers", []):
                pending.extend(handler.body)


def import_graph() -> dict:
    """Module -> the package modules it imports at module level. `from package import module`
    is an edge to the module only (the package is already being imported)."""
    modules = _modules()
    graph = {}
    for name, path in modules.items():
        here = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        edges = set()
        for node in _top_level_imports(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                edges.update(a.name for a in node.names if a.name in modules)
                continue
            base = here[:len(here) - node.level + 1] if node.level else []
            target = ".".join(base + ([node.module] if node.module else []))
            submodules = {f"{target}.{a.name}" for a in node.names} & modules.keys()
            if len(submodules) < len(node.names) and target in modules:
                edges.add(target)  # a name defined in the module itself
            edges.update(submodules)
        graph[name] = edges - {name}
    return graph


def cycles(graph: dict) -> list:
    """The strongly connected components of more than one module (Tarjan, iteratively)."""
    index, low, on_stack, stack, found = {}, {}, set(), [], []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return found


def test_no_module_level_import_cycle():
    assert cycles(import_graph()) == []


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_gpubk_imports_in_a_fresh_interpreter_whatever_module_comes_first():
    """Importing any one module first works (no hidden order)."""
    import subprocess
    for name in sorted(_modules()):
        if ".cuda" in name or name.endswith(("__main__", "audit", "generate")):
            continue  # CUDA modules need numba-cuda; __main__ runs the CLI
        code = f"import importlib; importlib.import_module({name!r})"
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                timeout=60, cwd=ROOT.parent)
        assert result.returncode == 0, f"{name}: {result.stderr[-800:]}"
