"""Is the committed dvc.lock true to the code, params and commands it records? Run in a checkout with or without the
data: `dvc status` may report data and outputs that are missing, never a code or params change. Otherwise a change
to a library module or to params.yaml could land without the rerun that dvc.lock claims. Usage (repository root):
    .venv/bin/python tools/check_lock.py [REPO]
Exit status 1, with one line per stale stage, when dvc.lock is out of date."""

import json
import subprocess
import sys
from pathlib import Path

import yaml

MISSING = {"deleted", "not in cache"}  # what a checkout without data reports for data and outputs


def stage_outputs(repo: Path) -> set:
    """Every path a stage of dvc.yaml writes: only these may be missing."""
    stages = yaml.safe_load(Path(repo, "dvc.yaml").read_text())["stages"]
    return {next(iter(out)) if isinstance(out, dict) else out
            for stage in stages.values() for out in stage.get("outs", [])}


def stale_stages(repo) -> dict:
    """{stage: [why, ...]} for every stage whose recorded code, params or command no longer match the checkout."""
    repo = Path(repo)
    result = subprocess.run([sys.executable, "-m", "dvc", "status", "--json"], cwd=repo, capture_output=True,
                            text=True, check=True)
    outputs = stage_outputs(repo)
    stale = {}
    for stage, changes in json.loads(result.stdout or "{}").items():
        reasons = []
        for change in changes:
            if isinstance(change, str):  # "changed command", "always changed"
                reasons.append(change)
                continue
            for kind, paths in change.items():
                for path, status in paths.items():
                    if isinstance(status, dict):  # a params file: {param: "modified" | "new" | "deleted"}
                        reasons += [f"param {name} {how}" for name, how in sorted(status.items())]
                    elif status not in MISSING or (kind == "changed deps" and path not in outputs):
                        reasons.append(f"{path} {status}")
        if reasons:
            stale[stage] = reasons
    return stale


def main():
    repo = Path(sys.argv[1] if len(sys.argv) > 1 else ".")
    stale = stale_stages(repo)
    for stage, reasons in stale.items():
        print(f"dvc.lock is stale for stage {stage}: {', '.join(reasons)} (rerun `dvc repro` and commit dvc.lock)",
              file=sys.stderr)
    if stale:
        sys.exit(1)
    print("dvc.lock matches the code, params and commands of every stage")


if __name__ == "__main__":
    main()
