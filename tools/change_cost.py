"""What a change costs: for every library module and every params key, the stages a one-line change to it makes
stale (their declared deps, as DVC resolves dvc.yaml) and the seconds those stages took in the committed run
(metrics/timing/<stage>.json), and the library's line-weighted share of the pipeline's stage time.

    python tools/change_cost.py            the tables and the share
    python tools/change_cost.py --check    exit 1, one line each, where a dependency breaks the budget below

A stage reruns when any declared dep changes, even if its output would not; stages after it rerun only if an output's
hash changes, so a comment or a moved function costs exactly the stages listed here. The tables in docs/design.md are
generated from this module by `make report`.
"""

import argparse
import fnmatch
import json
import re
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
LIBRARY = "src/mnist_pipeline"

# The budget. The share: a one-line edit of a random library line reruns, on average, at most this part of the
# pipeline's committed stage time. Then what each kind of module may make stale: downloading reaches only the
# download stages, and what uses a trained model (serving, predict, reports) reaches no stage at all.
SHARE_LIMIT = 0.28
MAY_STALE = {
    "sources.py": {"download", "transfer_download"},
    "guarded.py": {"download", "transfer_download", "prepare", "transfer_prepare", "evaluate", "transfer", "export",
                   "explain"},
    "serve*.py": set(),
    "predict.py": set(),
    "calibration_report.py": {"evaluate"},
}
# Params keys (fnmatch patterns) and the stages that must not read them.
PARAMS_MAY_NOT = {
    "recipes.*.retrain_epochs": {"tune"},
    "recipes.*.space*": {"retrain", "transfer", "baseline"},
    "download*": {"prepare", "baseline", "tune", "retrain", "evaluate", "transfer", "export", "explain"},
}


def stages(repo=REPO) -> dict:
    """{stage: (file deps, params keys)} as DVC resolves dvc.yaml (templated keys filled in from params.yaml). A
    params key that fills in a template of the stage's definition (`recipes.${data.dataset}.space`) counts as read
    too: changing it changes what the stage depends on."""
    from dvc.repo import Repo

    templated = {name: set(re.findall(r"\$\{([\w.]+)\}", yaml.safe_dump(stage)))
                 for name, stage in yaml.safe_load(Path(repo, "dvc.yaml").read_text())["stages"].items()}
    found = {}
    with Repo(str(repo)) as dvc:
        for stage in dvc.index.stages:
            files = {dep.def_path for dep in stage.deps if type(dep).__name__ != "ParamsDependency"}
            keys = [key for dep in stage.deps if type(dep).__name__ == "ParamsDependency" for key in dep.params]
            found[stage.name] = (files, [*keys, *sorted(templated.get(stage.name, ()))])
    return found


def seconds(stage, repo=REPO) -> float:
    """The stage's committed wall time: the last mark of its clock (0 for a stage that writes none)."""
    path = Path(repo, "metrics/timing", f"{stage}.json")
    if not path.exists():
        return 0.0
    marks = [value for key, value in json.loads(path.read_text()).items()
             if key.endswith("_seconds") and isinstance(value, (int, float))]
    return max(marks, default=0.0)


def modules(repo=REPO) -> dict:
    """{path relative to the repository: lines} of every Python module of the library."""
    return {str(path.relative_to(repo)): len(path.read_text().splitlines())
            for path in sorted(Path(repo, LIBRARY).rglob("*.py"))}


def stale_by(path, graph) -> list:
    return [name for name, (files, _) in graph.items()
            if any(path == dep or path.startswith(dep.rstrip("/") + "/") for dep in files)]


def leaves(tree, prefix=""):
    """Dotted keys of every value of params.yaml that is not a mapping."""
    if not isinstance(tree, dict):
        yield prefix
        return
    for key, value in tree.items():
        yield from leaves(value, f"{prefix}.{key}" if prefix else str(key))


def reads(key, declared) -> bool:
    return any(key == d or key.startswith(d + ".") for d in declared)


def params_rows(graph, repo=REPO):
    """(key, stages) for each params key, at the highest level at which every value under it stales the same
    stages."""
    tree = yaml.safe_load(Path(repo, "params.yaml").read_text())

    def stale(key):
        return tuple(name for name, (_, keys) in graph.items() if reads(key, keys))

    def walk(node, prefix):
        below = {stale(leaf) for leaf in leaves(node, prefix)}
        if len(below) == 1 or not isinstance(node, dict):
            return [(prefix, below.pop())]
        return [row for key, value in node.items() for row in walk(value, f"{prefix}.{key}" if prefix else key)]

    return walk(tree, "")


def summary(repo=REPO):
    graph = stages(repo)
    cost = {name: seconds(name, repo) for name in graph}
    total = sum(cost.values())
    rows = []
    for path, lines in modules(repo).items():
        hit = stale_by(path, graph)
        rows.append({"module": path.removeprefix(LIBRARY + "/"), "lines": lines, "stages": hit,
                     "seconds": sum(cost[name] for name in hit)})
    lines = sum(row["lines"] for row in rows)
    share = sum(row["lines"] * row["seconds"] for row in rows) / (lines * total) if lines and total else 0.0
    return {"graph": graph, "cost": cost, "total": total, "modules": rows, "share": share,
            "params": params_rows(graph, repo)}


def problems(found) -> list:
    out = []
    if found["share"] > SHARE_LIMIT:
        out.append(f"a one-line library edit reruns {found['share']:.1%} of the committed stage time, line-weighted; "
                   f"the budget is {SHARE_LIMIT:.0%}")
    for row in found["modules"]:
        for pattern, allowed in MAY_STALE.items():
            extra = sorted(set(row["stages"]) - allowed)
            if fnmatch.fnmatch(row["module"], pattern) and extra:
                out.append(f"{row['module']} makes {', '.join(extra)} stale; the budget allows "
                           f"{', '.join(sorted(allowed)) or 'no stage'}")
    for key, hit in found["params"]:
        for pattern, forbidden in PARAMS_MAY_NOT.items():
            bad = sorted(set(hit) & forbidden)
            if fnmatch.fnmatch(key, pattern) and bad:
                out.append(f"params {key} makes {', '.join(bad)} stale; the budget forbids it")
    return out


def names(stage_list, cost):
    return ", ".join(f"{name} ({cost[name]:.0f} s)" if cost[name] >= 1 else name for name in stage_list) or "none"


def module_table(found) -> str:
    """Markdown: each library module, its lines, the stages an edit makes stale and their seconds."""
    lines = ["| module | lines | stages made stale | seconds |", "|:---|---:|:---|---:|"]
    for row in found["modules"]:
        lines.append(f"| `{row['module']}` | {row['lines']} | {names(row['stages'], found['cost'])} | "
                     f"{row['seconds']:.0f} |")
    return "\n".join(lines) + (f"\n\nA one-line edit of a random library line reruns {found['share']:.1%} of the "
                               f"committed run's {found['total']:.0f} s of stage time (line-weighted; the budget is "
                               f"{SHARE_LIMIT:.0%}).\n")


def params_table(found) -> str:
    lines = ["| params key | stages made stale | seconds |", "|:---|:---|---:|"]
    for key, hit in found["params"]:
        lines.append(f"| `{key}` | {names(hit, found['cost'])} | {sum(found['cost'][n] for n in hit):.0f} |")
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="exit 1 where a dependency breaks the budget")
    args = parser.parse_args()
    found = summary()
    if args.check:
        broken = problems(found)
        for line in broken:
            print(f"change_cost: {line}", file=sys.stderr)
        if broken:
            sys.exit(1)
        print(f"change_cost: within budget ({found['share']:.1%} of stage time per library line, limit "
              f"{SHARE_LIMIT:.0%})")
        return
    print(module_table(found))
    print(params_table(found))


if __name__ == "__main__":
    main()
