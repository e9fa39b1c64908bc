"""Which library modules each stage of dvc.yaml imports, directly or through other modules: what its `deps` must name,
no more and no less, so that a code change reruns exactly the stages that run that code.

    python tools/stage_deps.py           print each stage's modules
    python tools/stage_deps.py --write   rewrite the library lines of each stage's deps in dvc.yaml to match
(tests/test_dvc_yaml.py fails while they differ)."""

import argparse
import ast
import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
LIBRARY = Path("src/mnist_pipeline")


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
        elif isinstance(node, ast.Import):
            names.update(alias.name.split(".", 1)[1] for alias in node.names
                         if alias.name.startswith("mnist_pipeline."))
    return names


def closure(script: Path, repo=REPO) -> set:
    """Every library module `script` runs: its imports, theirs, and the package's __init__."""
    seen, todo = {"__init__"}, imported_library_modules(script)
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo |= imported_library_modules(repo / LIBRARY / f"{name}.py")
    return seen


def script_of(stage: dict) -> str:
    """The stage script its command runs, e.g. stages/download.py (transfer_download runs it too)."""
    return next(word for word in stage["cmd"].split() if word.startswith("stages/") and word.endswith(".py"))


def needed(stage: dict, repo=REPO) -> list:
    """The deps a stage's code needs: its script, then its library modules in name order."""
    script = script_of(stage)
    return [script, *(str(LIBRARY / f"{name}.py") for name in sorted(closure(repo / script, repo)))]


def rewrite(text: str, stages: dict, repo=REPO) -> str:
    """dvc.yaml's text with each stage's code deps (the lines naming stages/ and src/) replaced by what it needs,
    where the first of them stood; every other line kept as it is."""
    out, stage, pending = [], None, {}
    for line in text.splitlines(keepends=True):
        found = re.match(r"^  (\w+):\s*$", line)
        if found and found.group(1) in stages:
            stage = found.group(1)
            pending[stage] = needed(stages[stage], repo)
        dep = re.match(r"^(\s+)- (stages/|src/mnist_pipeline/)", line)
        if dep and stage:
            if pending.get(stage) is not None:
                out += [f"{dep.group(1)}- {path}\n" for path in pending[stage]]
                pending[stage] = None
            continue
        out.append(line)
    return "".join(out)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write", action="store_true", help="rewrite dvc.yaml's code deps to match the imports")
    args = parser.parse_args()
    path = REPO / "dvc.yaml"
    stages = yaml.safe_load(path.read_text())["stages"]
    if args.write:
        path.write_text(rewrite(path.read_text(), stages))
        print("dvc.yaml: each stage's deps name its script and the library modules it imports")
        return
    for name, stage in stages.items():
        print(f"{name}: {' '.join(Path(dep).stem for dep in needed(stage)[1:])}")


if __name__ == "__main__":
    main()
