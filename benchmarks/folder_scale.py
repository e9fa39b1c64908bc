"""A folder of your own images at scale: generated RGB 64x64 images (tools/make_shapes.py) in folders of 10 000,
100 000 and 1 000 000, each through `prepare` and one training epoch of the baseline network (the `baseline` stage
with baseline.epochs 1), each in a fresh process, timed, with its peak resident memory (GNU time's maximum resident
set size); beside the same-run matmul peak. prepare's seconds per 1 000 images show whether it grows linearly.
Writes benchmarks/results/folder_scale.csv (the table of docs/datasets.md, by `make report`). Usage (repository
root, environment active; the default sizes take about an hour on 2 cores and 36 GB of disk at the largest, in a
scratch directory it removes: `--scratch` puts it elsewhere):

    python benchmarks/folder_scale.py [--sizes 10000 100000 1000000] [--scratch DIR]
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import matmul_peak  # beside this script
import yaml

from mnist_pipeline import outputs

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "benchmarks" / "results" / "folder_scale.csv"
GENERATORS = 2  # processes drawing the images, one a core


def run(command, cwd):
    """(seconds, peak MB) of `command`, measured by GNU time."""
    result = subprocess.run(["/usr/bin/time", "-f", "%e %M", *command], cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{result.stderr[-3000:]}")
    seconds, kilobytes = result.stderr.strip().splitlines()[-1].split()
    return float(seconds), int(kilobytes) / 1024


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--scratch", help="where the images and arrays go (default: the system's temporary folder)")
    args = parser.parse_args()
    before, rows = matmul_peak.measured(), []
    with tempfile.TemporaryDirectory(prefix="folder-scale-", dir=args.scratch) as scratch:
        scratch = Path(scratch)
        per_part = -(-max(args.sizes) // (3 * GENERATORS))
        parts = [scratch / f"all-{part}" for part in range(GENERATORS)]
        generators = [subprocess.Popen([sys.executable, str(REPO / "tools/make_shapes.py"), str(folder), "--per-class",
                                        str(per_part), "--size", "64", "--seed", str(seed)])
                      for seed, folder in enumerate(parts)]
        if any(generator.wait() for generator in generators):
            sys.exit("tools/make_shapes.py failed")
        files = {shape: [path for folder in parts for path in sorted((folder / shape).iterdir())]
                 for shape in ("circle", "square", "triangle")}
        for size in sorted(args.sizes):
            work = scratch / str(size)
            for shape, paths in files.items():  # the first size/3 of each class, linked, not copied
                (work / "images" / shape).mkdir(parents=True)
                for path in paths[:size // 3]:
                    os.link(path, work / "images" / shape / f"{path.parent.parent.name}-{path.name}")
            params = yaml.safe_load((REPO / "params.yaml").read_text())
            params["data"].update({"dataset": "images"})
            params["data"]["images"].update({"folder": "images", "image_shape": [64, 64, 3]})
            params["baseline"].update({"epochs": 1})
            (work / "params.yaml").write_text(yaml.safe_dump(params))
            prepare = run([sys.executable, str(REPO / "stages/prepare.py"), "--raw", "raw", "--out", "prepared",
                           "--metrics", "data.json", "--counts", "counts.json", "--timing", "t1.json"], work)
            epoch = run([sys.executable, str(REPO / "stages/baseline.py"), "--data", "prepared",
                         "--checkpoints", "checkpoints", "--model", "model", "--history", "h.csv",
                         "--metrics", "b.json", "--timing", "t2.json"], work)
            shutil.rmtree(work)  # this size's images and arrays: the disk the next one needs
            rows.append({"images": 3 * (size // 3), "prepare_seconds": prepare[0], "prepare_peak_mb": round(prepare[1]),
                         "epoch_seconds": epoch[0], "epoch_peak_mb": round(epoch[1])})
            print(rows[-1], flush=True)
    outputs.write_table(OUT, outputs.table(matmul_peak.with_machine(rows, before)))


if __name__ == "__main__":
    main()
