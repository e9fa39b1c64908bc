"""The whole pipeline of two revisions side by side on this machine, for MNIST (the default) or another dataset
through its recipe: `dvc repro --force` of each in a clean clone of its own, alternating (base, head, base, head,
...), each stage's seconds from its metrics/timing/ file, the tuned model's test accuracy, and the fp32 matmul peak
before and after every run. Only ratios measured this way mean anything: the same work reads up to 2.4x apart
between machines of one kind.

Both revisions run with this environment's packages (the pins they share) and their own code (PYTHONPATH), on the
raw files this checkout's download stages fetched (data/raw, data/transfer/raw), so the network plays no part.
`--dataset` sets data.dataset in both clones' params.yaml before they run. Writes benchmarks/results/pipeline_time.csv
(the rows of the other datasets are kept), which `make report` turns into the table of docs/results.md. Usage
(repository root, environment active, after `make repro`; each round takes the two pipelines' time, 30 minutes on 2
cores for MNIST, 55 for Fashion-MNIST):

    python benchmarks/pipeline_time.py --base c5a4e69 [--head HEAD] [--rounds 1] [--dataset mnist]
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import matmul_peak  # beside this script
import yaml

from mnist_pipeline import sources

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "benchmarks" / "results" / "pipeline_time.csv"
DOWNLOAD_STAGES = {"mnist": "download", "fashion_mnist": "transfer_download"}  # under the default params


def raw_directories() -> dict:
    """Each dataset's raw files as `make repro` of the default params leaves them: its download stage's output."""
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    return {name: REPO / stages[stage]["outs"][0] for name, stage in DOWNLOAD_STAGES.items()}


def local_data() -> dict:
    """The variables that point the download stages at this checkout's raw files."""
    return {sources.local_dir_variable(name): str(path) for name, path in raw_directories().items()}


def run_pipeline(clone: Path) -> dict:
    """Seconds of `dvc repro --force` in `clone`, of each stage as its timing file has them, and the tuned model's
    test accuracy (metrics/evaluate.json)."""
    env = {**os.environ, "PYTHONPATH": str(clone / "src"),  # `python` of the stages: this interpreter
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
           **local_data()}
    env.pop("KERAS_BACKEND", None)
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "dvc", "repro", "--force"], cwd=clone, env=env,
                            capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"pipeline_time: dvc repro --force failed in {clone}:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
    stages = {}
    for timing in sorted((clone / "metrics" / "timing").glob("*.json")):
        found = json.loads(timing.read_text())
        # marks from the stage's start (a dict such as the search's seconds per trial is not one)
        marks = [value for name, value in found.items() if name.endswith("_seconds") and isinstance(value, float | int)]
        stages[timing.stem] = round(max(marks), 1) if marks else None
    accuracy = json.loads((clone / "metrics" / "evaluate.json").read_text())["tuned"]["test_accuracy"]
    return {"seconds": round(seconds, 1), "stages": stages, "tuned_test_accuracy": accuracy}


def set_dataset(clone: Path, dataset: str):
    """data.dataset in the clone's params.yaml (its one `dataset:` line under `data:`), comments kept."""
    params = clone / "params.yaml"
    text, count = re.subn(r"(?m)^(data:\n(?:  .*\n)*?  dataset: )\w+", rf"\g<1>{dataset}", params.read_text())
    if count != 1:
        sys.exit(f"pipeline_time: no data.dataset line in {params}")
    params.write_text(text)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", required=True, help="the revision to compare with (e.g. c5a4e69)")
    parser.add_argument("--head", default="HEAD")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--dataset", choices=list(DOWNLOAD_STAGES), default="mnist",
                        help="data.dataset of both pipelines (the other dataset is the transfer stage's)")
    args = parser.parse_args()
    for path in raw_directories().values():
        if not (path / "train-images-idx3-ubyte").exists():
            sys.exit(f"pipeline_time: no raw files in {path.relative_to(REPO)}: run `make repro` first")
    revisions = {label: subprocess.run(["git", "rev-parse", "--short", rev], cwd=REPO, capture_output=True,
                                       text=True, check=True).stdout.strip()
                 for label, rev in (("base", args.base), ("head", args.head))}
    rows = []
    with tempfile.TemporaryDirectory(prefix="pipeline-time-") as scratch:
        for label, commit in revisions.items():
            subprocess.run(["git", "clone", "--quiet", "--no-checkout", str(REPO), str(Path(scratch, label))],
                           check=True)
            subprocess.run(["git", "checkout", "--quiet", commit], cwd=Path(scratch, label), check=True)
            set_dataset(Path(scratch, label), args.dataset)
        for round_ in range(1, args.rounds + 1):
            for label, commit in revisions.items():
                before = matmul_peak.measured()
                found = run_pipeline(Path(scratch, label))
                print(f"round {round_}, {label} ({commit}): {found['seconds']:.0f} s", flush=True)
                rows += matmul_peak.with_machine([{"dataset": args.dataset, "round": round_, "revision": label,
                                                   "commit": commit, "seconds": found["seconds"],
                                                   "tuned_test_accuracy": found["tuned_test_accuracy"],
                                                   "stages": json.dumps(found["stages"], sort_keys=True)}], before)
    matmul_peak.write_rows(OUT, rows, ["dataset", "round", "revision", "commit", "seconds", "tuned_test_accuracy",
                                       "stages", "cpu", "matmul_peak_before", "matmul_peak_after"],
                           key=["dataset"])  # another dataset's rows are kept
    print(f"pipeline_time: wrote {OUT.relative_to(REPO)}")


if __name__ == "__main__":
    main()
