"""Fashion-MNIST through its recipe, two ways, for docs/datasets.md: the whole pipeline on the raw files
(`-S data.dataset=fashion_mnist`, timed, beside the same-run matmul peak), then the same images written out as PNG
class folders (tools/idx_to_folders.py) and run as a folder of your own images (data.dataset: images) with the same
split seed and the Fashion-MNIST recipe, up to `evaluate`. Both run with real DVC in a scratch clone of this
checkout that shares its DVC cache; the results go to studies/fashion_parity.csv, which `make report` turns into the
table of docs/datasets.md.

Run from the repository root with the environment active: `python studies/fashion_parity.py [--routes raw folders]`
(about 40 minutes on 2 cores for both; a route left out keeps its row of studies/fashion_parity.csv)."""

import argparse
import copy
import csv
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from mnist_pipeline import cli, outputs

REPO = Path(__file__).resolve().parents[1]
OUT = Path(__file__).with_name("fashion_parity.csv")


def run(cwd, *command):
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"{' '.join(map(str, command))} failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    return result.stdout


def peak():
    return int(re.search(r"(\d+) GFLOP/s", run(REPO, sys.executable, "benchmarks/matmul_peak.py")).group(1))


def set_params(repo, change):
    settings = yaml.safe_load(Path(repo, "params.yaml").read_text())
    change(settings)
    Path(repo, "params.yaml").write_text(yaml.safe_dump(settings, sort_keys=False))


def route(repo, name, change, *targets):
    """studies/fashion_parity.csv's row for one route: `dvc repro` of `targets` (all: none named) after `change` to the
    params, timed between two readings of the matmul peak."""
    set_params(repo, change)
    before, start = peak(), time.monotonic()
    output = run(repo, "dvc", "repro", *targets)
    seconds, after = time.monotonic() - start, peak()
    evaluate = json.loads(Path(repo, "metrics/evaluate.json").read_text())
    row = {"route": name, "stages": " ".join(sorted(set(re.findall(r"Running stage '(\w+)'", output)))),
           "tuned_test_accuracy": evaluate["tuned"]["test_accuracy"],
           "baseline_test_accuracy": evaluate["baseline"]["test_accuracy"],
           "seconds": round(seconds), "peak_before": before, "peak_after": after}
    print(row, flush=True)
    return row


def fashion(settings):
    settings["data"]["dataset"] = "fashion_mnist"


def fashion_folders(settings):
    settings["data"]["dataset"] = "images"
    settings["data"]["images"].update({"folder": "data/fashion-png", "title": "Fashion-MNIST as PNG files",
                                       "image_shape": [28, 28, 1]})
    settings["recipes"]["images"] = copy.deepcopy(settings["recipes"]["fashion_mnist"])  # not a YAML alias


ROUTES = {"raw": "raw files (data.dataset: fashion_mnist)", "folders": "PNG class folders (data.dataset: images)"}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--routes", nargs="+", choices=list(ROUTES), default=list(ROUTES))
    args = parser.parse_args()
    kept = {row["route"]: row for row in csv.DictReader(OUT.open(newline=""))} if OUT.exists() else {}
    found = {}
    with tempfile.TemporaryDirectory(prefix="fashion-parity-") as scratch:
        repo = Path(scratch, "repo")
        run(REPO, "git", "clone", "--quiet", str(REPO), str(repo))
        run(repo, "dvc", "cache", "dir", "--local", str(REPO / ".dvc" / "cache"))
        if "raw" in args.routes:
            found["raw"] = route(repo, ROUTES["raw"], fashion)
        else:  # the raw files only, for the folders
            set_params(repo, fashion)
            run(repo, "dvc", "repro", "download")
        if "folders" in args.routes:
            run(repo, sys.executable, str(REPO / "tools/idx_to_folders.py"), "fashion_mnist", "data/raw",
                "data/fashion-png")
            run(repo, "dvc", "add", "data/fashion-png")
            found["folders"] = route(repo, ROUTES["folders"], fashion_folders, "evaluate")
    rows = [found[key] if key in found else kept[name] for key, name in ROUTES.items() if key in found or name in kept]
    outputs.write_table(OUT, outputs.table(rows))


if __name__ == "__main__":
    cli.run(main)
