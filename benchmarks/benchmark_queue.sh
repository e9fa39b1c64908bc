#!/usr/bin/env bash
# Four baseline experiments (3 epochs, seeds 21-24): one after another with runtime.threads 2, then queued and run two
# at a time with runtime.threads 1. Prints both wall times, the same-run matmul peak before and after, and each
# experiment's training seconds. Run it in a clone that has data/prepared (e.g. `git clone . ../bench && cd ../bench &&
# dvc cache dir --local <this clone>/.dvc/cache && dvc checkout data/prepared`), never in a workspace you are using:
# it adds experiments. Usage: benchmarks/benchmark_queue.sh  (with the environment's bin first on PATH)
set -euo pipefail
seeds=(21 22 23 24)
python benchmarks/matmul_peak.py

start=$(date +%s.%N)
for seed in "${seeds[@]}"; do
  dvc exp run -q baseline -S baseline.epochs=3 -S baseline.seed="$seed"
done
echo "one after another, 2 threads each: $(echo "$(date +%s.%N) - $start" | bc) s"

for seed in "${seeds[@]}"; do
  dvc exp run --queue -q baseline -S baseline.epochs=3 -S baseline.seed="$seed" -S runtime.threads=1
done
start=$(date +%s.%N)
dvc queue start --jobs 2
while dvc queue status 2>/dev/null | grep -E "Running|Queued" >/dev/null; do sleep 2; done
echo "queued, --jobs 2, 1 thread each: $(echo "$(date +%s.%N) - $start" | bc) s"

python benchmarks/matmul_peak.py
dvc exp show --no-pager --csv 2>/dev/null | python -c '
import csv, sys
for row in csv.DictReader(sys.stdin):
    if row["baseline.epochs"] == "3":
        print(row["Experiment"], "seed", row["baseline.seed"], "threads", row["runtime.threads"],
              "train_seconds", row["metrics/timing/baseline.json:train_seconds"], "val_accuracy", row["val_accuracy"])'
