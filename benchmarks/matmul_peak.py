"""The yardstick every timing in README and docs/ stands beside: TensorFlow's fp32 (or bf16) matrix-multiply rate on
this machine, with the pipeline's thread count. Best of several timed products of two n x n matrices. Usage
(repository root):

    .venv/bin/python benchmarks/matmul_peak.py [--size 2048] [--repeats 5] [--threads 2] [--dtype float32|bfloat16]

Other benchmarks read it through `measured()`, stamp their rows with `with_machine()` (or `cpu_name()`) and save
them with `write_rows()`.
"""

import argparse
import re
import subprocess
import sys
import time
from pathlib import Path

from mnist_pipeline import cli  # importing the package pins TensorFlow's switches as the stages do


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32")
    args = parser.parse_args()
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    a = tf.cast(tf.random.stateless_normal((args.size, args.size), seed=(1, 2)), args.dtype)
    b = tf.cast(tf.random.stateless_normal((args.size, args.size), seed=(3, 4)), args.dtype)
    tf.linalg.matmul(a, b).numpy()  # warm-up
    best = min(_timed(tf, a, b) for _ in range(args.repeats))
    name = {"float32": "fp32", "bfloat16": "bf16"}[args.dtype]
    rate = 2 * args.size ** 3 / best / 1e9
    print(f"{name} matmul {args.size}x{args.size}, {args.threads} threads: {rate:.0f} GFLOP/s (best of {args.repeats})")


def measured() -> int:
    """The fp32 peak in GFLOP/s, read in a process of its own (nothing of the caller's running beside it)."""
    found = subprocess.run([sys.executable, __file__], capture_output=True, text=True, check=True)
    return int(re.search(r"(\d+) GFLOP/s", found.stdout).group(1))


def with_machine(rows, before):
    """`rows` with the CPU's name and the peak read `before` them and now, after them."""
    after = measured()
    return [{**row, "cpu": cpu_name(), "matmul_peak_before": before, "matmul_peak_after": after} for row in rows]


def write_rows(path, rows, columns, key):
    """Write `rows` to the results CSV at `path` with the rows it holds whose `key` columns match none of `rows`'
    (the other runs' results stay; theirs are kept as written)."""
    import pandas as pd

    from mnist_pipeline import outputs

    if Path(path).exists():
        replaced = {tuple(str(row[name]) for name in key) for row in rows}
        rows = [row for row in pd.read_csv(path, dtype=str, keep_default_na=False).to_dict("records")
                if tuple(row[name] for name in key) not in replaced] + rows
    outputs.write_table(path, outputs.table(rows, columns))


def cpu_name() -> str:
    return next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name"))


def _timed(tf, a, b):
    start = time.perf_counter()
    tf.linalg.matmul(a, b).numpy()
    return time.perf_counter() - start


if __name__ == "__main__":
    cli.run(main)  # as a stage runs: one-line errors, no C++ log lines
