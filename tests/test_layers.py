"""The package's imports go one way: from the notebook's layer down to data, never back up, no cycle."""

import ast
from pathlib import Path

from conftest import ROOT
from mnistkit import codebase

PACKAGE = ROOT / "mnistkit"
# Bottom up; a module may import its own layer and those below it (the report shows the same table).
LAYERS = [set(modules) for _, modules, _ in codebase.LAYERS]


def _name(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts)


def imports() -> dict[str, set]:
    """Every module of the package and the package modules it imports, at the top or inside a function."""
    graph = {}
    for path in PACKAGE.rglob("*.py"):
        name, found = _name(path), set()
        package = name.split(".")[:-1] if path.name != "__init__.py" else name.split(".")[:-1]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level:
                base = package[: len(package) - (node.level - 1)] if node.level > 1 else package
                target = ".".join([*base, *(node.module.split(".") if node.module else [])])
                for alias in node.names:
                    full = f"{target}.{alias.name}" if target else alias.name
                    found.add(full if (PACKAGE / (full.replace(".", "/") + ".py")).exists() else target)
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("mnistkit"):
                found.add(node.module.removeprefix("mnistkit").lstrip(".") or "__init__")
        graph[name] = {f.removesuffix(".__init__") for f in found if f} - {name}
    return graph


def layer(module: str) -> int:
    top = module.split(".")[0]
    return next(i for i, names in enumerate(LAYERS) if top in names)


def test_every_module_has_a_layer_and_imports_only_its_own_or_lower_ones():
    upward = [f"{a} -> {b}" for a, targets in imports().items() for b in targets if layer(b) > layer(a)]
    assert upward == []


def test_no_import_cycle():
    graph = imports()
    state: dict = {}
    cycles = []

    def visit(node, path):
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                cycles.append(" -> ".join([*path[path.index(nxt):], nxt]))
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert cycles == []


def test_the_walk_sees_imports_inside_functions_and_from_subpackages():
    graph = imports()
    assert "config" in graph["params"]  # imported inside Base.__post_init__
    assert {"questions.q2_study", "errors"} <= graph["questions.q2"] and {"executor", "runs"} <= graph["questions.plan"]
    assert {"questions.common", "data", "stats"} <= graph["questions.q2"] | graph["questions.common"]
    assert "questions.plan" in graph["report"]


LOADERS = {"load", "train_split", "validation_split", "validation_indices", "prepare_raw"}  # check_available only checks


def loads(source: str) -> list[str]:
    """The data loaders ``source`` calls or imports by name, with their lines."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and node.attr in LOADERS and getattr(node.value, "id", "") == "data":
            found.append(f"{node.lineno} data.{node.attr}")
        if isinstance(node, ast.ImportFrom) and (node.module or "").endswith("data"):
            found += [f"{node.lineno} {a.name}" for a in node.names if a.name in LOADERS]
    return found


def test_no_question_loads_images_itself():
    """A question's reader gets test images only through the run it reads (``Run.test_set``), so that it
    scores each model on that run's own dataset."""
    assert [f"{path.name}:{hit}" for path in (PACKAGE / "questions").glob("*.py") for hit in loads(path.read_text())] == []


def test_the_guard_sees_a_load_by_attribute_or_by_name():
    assert loads("from .. import data\nx, y = data.load('mnist', False)\n") == ["2 data.load"]
    assert loads("from ..data import train_split, batches\n") == ["1 train_split"]
    assert loads("x = run.test_set()\n") == []


def test_no_line_of_the_package_is_over_120_characters():
    from pathlib import Path

    import mnistkit

    long = [f"{path.name}:{n}" for path in Path(mnistkit.__file__).parent.rglob("*.py")
            for n, line in enumerate(path.read_text().splitlines(), 1) if len(line) > 120]
    assert not long, long
