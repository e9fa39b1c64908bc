"""The search-algorithm comparison of docs/tuning.md, from experiments named `<algorithm>-seed<seed>` (the search) and
`<algorithm>-seed<seed>-retrained` (the whole pipeline: the winner retrained and tested).

Run them first, from the repository root with the environment active (the second loop took 15 to 25 minutes an
experiment here, 6 where the winner had already been retrained and DVC skipped the retrain):
  for seed in 7 8; do for algorithm in random hyperband bayesian; do
    dvc exp run --temp tune -n $algorithm-seed$seed -S tune.algorithm=$algorithm -S tune.seed=$seed; done; done
  for seed in 7 8; do for algorithm in random hyperband bayesian; do
    dvc exp run --temp -n $algorithm-seed$seed-retrained -S tune.algorithm=$algorithm -S tune.seed=$seed; done; done
(the committed run counts as both experiments its params name). `python studies/tuning_search_comparison.py` then
prints the table: best validation accuracy, epochs spent, the epochs each search had spent when it first reached
the random search's best (same seed), the search's wall time, and the test accuracy of its winner after the full
retrain.
"""

import csv
import io
import json
import subprocess
import sys

import yaml

ALGORITHMS = ("random", "hyperband", "bayesian")


def read(rev, path):
    return subprocess.run(["git", "show", f"{rev}:{path}"], capture_output=True, text=True, check=True).stdout


def experiments():
    """Experiment name to its git revision, on any commit; the committed run (HEAD) counts under the names its params
    give it."""
    shown = json.loads(subprocess.run([sys.executable, "-m", "dvc", "exp", "show", "--json", "--all-commits"],
                                      capture_output=True, text=True, check=True).stdout)
    revs = {rev["name"]: rev["rev"] for entry in shown for exp in entry.get("experiments") or []
            for rev in exp.get("revs", []) if rev.get("name")}
    tune = yaml.safe_load(read("HEAD", "params.yaml"))["tune"]
    for name in (f"{tune['algorithm']}-seed{tune['seed']}", f"{tune['algorithm']}-seed{tune['seed']}-retrained"):
        revs.setdefault(name, "HEAD")
    return revs


def tested(revs, algorithm, seed):
    rev = revs.get(f"{algorithm}-seed{seed}-retrained")
    if not rev:
        return "not run"
    return f"{json.loads(read(rev, 'metrics/evaluate.json'))['tuned']['test_accuracy'] * 100:.2f} %"


def epochs_to_reach(progress, target):
    for row in progress:
        if row["best_val_accuracy"] and float(row["best_val_accuracy"]) >= target:
            return row["epochs_spent"]
    return "not reached"


def main():
    revs = experiments()
    print("| algorithm | seed | best val accuracy | epochs spent | epochs to reach random's best | search wall time | "
          "test accuracy, winner retrained |")
    print("|---|---|---|---|---|---|---|")
    for seed in sorted({int(name.split("-seed")[1].split("-")[0]) for name in revs if "-seed" in name}):
        results = {}
        for algorithm in ALGORITHMS:
            rev = revs.get(f"{algorithm}-seed{seed}")
            if rev:
                results[algorithm] = (json.loads(read(rev, "metrics/tune.json")),
                                      json.loads(read(rev, "metrics/timing/tune.json")),
                                      list(csv.DictReader(io.StringIO(read(rev, "metrics/search_progress.csv")))))
        target = results["random"][0]["best_val_accuracy"] if "random" in results else None
        for algorithm, (tune, timing, progress) in results.items():
            reach = epochs_to_reach(progress, target) if target is not None else "-"
            print(f"| {algorithm} | {seed} | {tune['best_val_accuracy']:.4f} | {tune['epochs_spent']} | {reach} | "
                  f"{timing['search_seconds']:.0f} s | {tested(revs, algorithm, seed)} |")


if __name__ == "__main__":
    main()
