"""After a full `dvc repro` with the default params: does the tuned model still reach the target, and do the test
metrics agree with the ones committed in git (HEAD) within a tolerance? Exits non-zero, saying why, if not."""

import argparse
import json
import subprocess
import sys
from pathlib import Path

import yaml


def evaluate_metrics_path() -> str:
    """The evaluate stage's --metrics, as dvc.yaml passes it."""
    command = yaml.safe_load(Path("dvc.yaml").read_text())["stages"]["evaluate"]["cmd"].split()
    return command[command.index("--metrics") + 1]


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--min-tuned-accuracy", type=float, required=True)
    parser.add_argument("--tolerance", type=float, required=True, help="absolute, e.g. 0.002 for 0.2 points")
    args = parser.parse_args()
    metrics = evaluate_metrics_path()
    fresh = json.loads(Path(metrics).read_text())
    committed = json.loads(subprocess.run(["git", "show", f"HEAD:{metrics}"], check=True, capture_output=True,
                                          text=True).stdout)
    problems = []
    if fresh["tuned"]["test_accuracy"] < args.min_tuned_accuracy:
        problems.append(f"tuned test accuracy {fresh['tuned']['test_accuracy']:.4f} < {args.min_tuned_accuracy}")
    for model in ("baseline", "tuned"):
        gap = abs(fresh[model]["test_accuracy"] - committed[model]["test_accuracy"])
        print(f"{model}: test accuracy {fresh[model]['test_accuracy']:.4f} here, "
              f"{committed[model]['test_accuracy']:.4f} committed")
        if gap > args.tolerance:
            problems.append(f"{model} test accuracy differs from the committed run by {gap:.4f} > {args.tolerance}")
    if problems:
        sys.exit("\n".join(problems))


if __name__ == "__main__":
    main()
