"""dvc.yaml must declare, for each stage, its script and every library module the script imports (directly or
through other modules): otherwise a code change would not rerun the stage."""

import ast
import json
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
LIBRARY = REPO / "src" / "mnist_pipeline"
STAGES = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]


def imported_library_modules(path: Path) -> set:
    """Names of mnist_pipeline modules that the file at `path` imports, anywhere in it."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.module == "mnist_pipeline" or (node.level == 1 and node.module is None):
                names.update(alias.name for alias in node.names)
            elif node.level == 1:
                names.add(node.module)
            elif node.module and node.module.startswith("mnist_pipeline."):
                names.add(node.module.split(".", 1)[1])
    return names


def closure(script: Path) -> set:
    seen, todo = {"__init__"}, imported_library_modules(script)
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo |= imported_library_modules(LIBRARY / f"{name}.py")
    return seen


def script_of(stage) -> str:
    """The stage script its command runs, e.g. stages/download.py (transfer_download runs it too)."""
    return next(word for word in STAGES[stage]["cmd"].split() if word.startswith("stages/") and word.endswith(".py"))


@pytest.mark.parametrize("stage", list(STAGES))
def test_every_imported_module_is_a_declared_dependency(stage):
    script = script_of(stage)
    declared = {dep for dep in STAGES[stage]["deps"] if isinstance(dep, str)}
    needed = {script} | {f"src/mnist_pipeline/{name}.py" for name in closure(REPO / script)}
    assert sorted(needed - declared) == [], f"{stage}: imported but not in deps"
    library_deps = {dep for dep in declared if dep.startswith("src/mnist_pipeline/")}
    assert sorted(library_deps - needed) == [], f"{stage}: in deps but never imported"


def numbers(tree):
    if isinstance(tree, dict):
        return sum(numbers(value) for value in tree.values())
    return int(isinstance(tree, (int, float)) and not isinstance(tree, bool))


def test_the_declared_metrics_are_the_few_numbers_a_person_compares():
    """`dvc metrics show` on the committed outputs: at most 25 numbers; counts and clock readings stay out."""
    declared = yaml.safe_load((REPO / "dvc.yaml").read_text())["metrics"]
    assert not any("timing" in path or path.endswith("data.json") for path in declared)
    assert numbers({path: json.loads((REPO / path).read_text()) for path in declared}) <= 25
