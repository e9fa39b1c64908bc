"""dvc.yaml must declare, for each stage, its script and every library module the script imports (directly or
through other modules): otherwise a code change would not rerun the stage. And no more: a module a stage does not
run must not rerun it (tools/change_cost.py weighs what each costs)."""

import json
from pathlib import Path

import pytest
import stage_deps
import yaml

REPO = Path(__file__).resolve().parents[1]
STAGES = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]


@pytest.mark.parametrize("stage", list(STAGES))
def test_every_imported_module_is_a_declared_dependency_and_nothing_else_is(stage):
    declared = {dep for dep in STAGES[stage]["deps"] if isinstance(dep, str) and dep.startswith(("stages/", "src/"))}
    needed = set(stage_deps.needed(STAGES[stage]))
    assert sorted(needed - declared) == [], f"{stage}: imported but not in deps (python tools/stage_deps.py --write)"
    assert sorted(declared - needed) == [], f"{stage}: in deps but never imported"


def test_the_deps_tool_rewrites_dvc_yaml_to_what_it_holds():
    text = (REPO / "dvc.yaml").read_text()
    assert stage_deps.rewrite(text, STAGES) == text


def numbers(tree):
    if isinstance(tree, dict):
        return sum(numbers(value) for value in tree.values())
    return int(isinstance(tree, (int, float)) and not isinstance(tree, bool))


def test_the_declared_metrics_are_the_few_numbers_a_person_compares():
    """`dvc metrics show` on the committed outputs: at most 25 numbers; counts and clock readings stay out."""
    declared = yaml.safe_load((REPO / "dvc.yaml").read_text())["metrics"]
    assert not any("timing" in path or path.endswith("data.json") for path in declared)
    assert numbers({path: json.loads((REPO / path).read_text()) for path in declared}) <= 25
