"""What TensorFlow op determinism costs on this machine: one epoch of the baseline CNN and of a BatchNorm CNN with
augmentation (the retrain recipe) on 20 000 real digits, with `runtime.deterministic` on and off, alternating runs
in fresh processes. Prints seconds per run and the median ratio. Usage (from the repository root):

    .venv/bin/python benchmarks/benchmark_determinism.py PREPARED_DIR [--repeats 3]
"""

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RETRAIN_LIKE = {"conv1_filters": 32, "conv1_kernel": 3, "conv2_filters": 64, "conv2_kernel": 3, "extra_conv": True,
                "conv3_filters": 128, "conv3_kernel": 3, "batch_norm": True, "dense_units": 128, "dropout": 0.3,
                "learning_rate": 0.001, "batch_size": 128}


def one_epoch(data_dir, model_kind, deterministic):
    from mnist_pipeline import prepared, runtime

    runtime.start(runtime.Runtime(threads=2, deterministic=deterministic, precision="float32", backend="tensorflow"))
    runtime.seed(1)
    from mnist_pipeline import augmentation, baseline_model, cnn, inputs, training

    x, y = prepared.take_subset(*prepared.load_split(data_dir, "train"), 20000, seed=1)
    x = inputs.scaled(x)
    if model_kind == "baseline":
        settings = baseline_model.Baseline(conv_filters=(32, 64), kernel_size=3, dense_units=128, dropout=0.0,
                                           learning_rate=1e-3)
        model = baseline_model.build_baseline(settings, prepared.load_description(data_dir))
    else:
        distortion = augmentation.Augmentation(shift_fraction=0.1, rotation_degrees=10, zoom_fraction=0.1,
                                               flip=False, erasing=0.0)
        model = augmentation.with_augmentation(cnn.build_cnn_model(RETRAIN_LIKE),
                                               augmentation.layers_for(distortion))
        training.compile_model(model, 1e-3)
    model.fit(x[:256], y[:256], batch_size=128, epochs=1, verbose=0)  # build and trace outside the clock
    start = time.perf_counter()
    model.fit(x, y, batch_size=128, epochs=1, verbose=0)
    print(time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("prepared")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--child", nargs=2, metavar=("MODEL", "DETERMINISTIC"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        one_epoch(args.prepared, args.child[0], args.child[1] == "on")
        return
    for model_kind in ("baseline", "retrain-like"):
        seconds = {"on": [], "off": []}
        for _ in range(args.repeats):
            for mode in ("on", "off"):
                out = subprocess.run([sys.executable, __file__, args.prepared, "--child", model_kind, mode],
                                     check=True, capture_output=True, text=True).stdout
                seconds[mode].append(float(out.strip().splitlines()[-1]))
        on, off = statistics.median(seconds["on"]), statistics.median(seconds["off"])
        print(f"{model_kind}: deterministic {on:.1f} s, free {off:.1f} s per epoch of 20 000 "
              f"(median of {args.repeats}); ratio {on / off:.2f}")


if __name__ == "__main__":
    main()
