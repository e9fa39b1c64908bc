"""Time to accuracy: test accuracy after every epoch against training seconds and training FLOPs (3x the forward
FLOPs of every image trained on, which do not depend on the machine), for five recipes, three seeds each,
beside the same-run fp32 matmul peak:

    baseline            the notebook's CNN (params baseline) on MNIST's train split
    mnist               the tuned network (models/best_hyperparameters.json) through MNIST's recipe (params
                        retrain, recipes.mnist), as the retrain stage trains it
    mnist_three_blocks  the same recipe on the tuned network with a third block of 128 filters added (a point of
                        MNIST's search space): what more capacity buys, and at what cost
    mnist_three_blocks_long  the same with twice the recipe's epochs: what longer training adds to the capacity
    fashion_mnist       Fashion-MNIST's recipe (recipes.fashion_mnist) on data/transfer/prepared, with the network
                        of benchmarks/fashion_hyperparameters.json (a point of that recipe's search space, fixed so
                        that the benchmark needs no search)

Each (recipe, seed) trains in a process of its own with the stages' code; the seed replaces the stage's training
seed. Evaluating on the test set after an epoch is not counted in its seconds. With a cosine schedule the points
before the last are not what a shorter run would reach (its rate would have decayed sooner): the last point of a
curve is the recipe's result, the others show where its time goes. Writes benchmarks/results/time_to_accuracy.csv,
which `make report` turns into the table and figure of docs/results.md. Usage (repository root, environment active,
after `make repro`; over two hours on 2 cores, two fifths of it Fashion-MNIST's and a third the long three-block
runs'; the runs asked for replace their own rows only):

    python benchmarks/time_to_accuracy.py [--recipes baseline mnist mnist_three_blocks mnist_three_blocks_long
                                           fashion_mnist] [--seeds 1 2 3]
"""

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import NamedTuple

import matmul_peak  # beside this script
from benchmark_training import forward_flops

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "benchmarks" / "results" / "time_to_accuracy.csv"
COLUMNS = ["recipe", "seed", "epoch", "train_seconds", "train_tflop", "test_accuracy"]


class Recipe(NamedTuple):
    data: str  # the prepared data it trains and is scored on
    hyperparameters: str | None = None  # the tuned network's file; None: the notebook's baseline (params baseline)
    changes: dict = {}  # over the file's hyperparameters
    epochs_times: int = 1  # the dataset recipe's epochs times this


TUNED, THIRD_BLOCK = "models/best_hyperparameters.json", {"extra_conv": True, "conv3_filters": 128}
RECIPES = {"baseline": Recipe("data/prepared"),
           "mnist": Recipe("data/prepared", TUNED),
           "mnist_three_blocks": Recipe("data/prepared", TUNED, THIRD_BLOCK),
           "mnist_three_blocks_long": Recipe("data/prepared", TUNED, THIRD_BLOCK, epochs_times=2),
           "fashion_mnist": Recipe("data/transfer/prepared", "benchmarks/fashion_hyperparameters.json")}


def train(recipe, seed):
    """Train one recipe with `seed`, printing one JSON row per epoch."""
    from mnist_pipeline import prepared, runtime, settings

    runtime.start(settings.load(REPO / "params.yaml", runtime=runtime.Runtime))
    runtime.seed(seed)
    import keras

    from mnist_pipeline import baseline_model, cnn, inputs, retraining, training

    spec = RECIPES[recipe]
    data = REPO / spec.data
    description = prepared.load_description(data)
    test = prepared.load_split(data, "test")
    if spec.hyperparameters is None:
        baseline = settings.load(REPO / "params.yaml", baseline=baseline_model.Baseline)
        x, y = prepared.take_subset(*prepared.load_split(data, "train"), baseline.train_subset, seed)
        model = baseline_model.build_baseline(baseline, description)
        epochs = baseline.epochs

        def fit(callbacks):
            training.fit(model, x, y, batch_size=baseline.batch_size, epochs=epochs, callbacks=callbacks, seed=seed,
                         verbose=0)
    else:
        hp = cnn.load_hyperparameters(REPO / spec.hyperparameters)
        hp = cnn.Hyperparameters.check({**vars(hp), **spec.changes}, "")
        retrain, distortion, epochs = settings.load(REPO / "params.yaml", retrain=retraining.Retrain,
                                                    **retraining.recipe_keys(description.name))
        retrain = retraining.Retrain(**{**vars(retrain), "seed": seed})
        epochs *= spec.epochs_times
        x, y = retraining.training_images(data, retrain)
        model = cnn.build_from_description(hp, description)  # to count its FLOPs: train() builds its own

        def fit(callbacks):
            retraining.train(x, y, None, hp, description, retrain, distortion, epochs, callbacks)

    flop_per_epoch = 3 * forward_flops(model) * len(y)

    class Timer(keras.callbacks.Callback):
        """Training seconds epoch by epoch, and the test accuracy after each (the augmentation of the model being
        trained, if any, is off outside training)."""

        def on_train_begin(self, logs=None):
            self.seconds = 0.0

        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds += time.perf_counter() - self.start
            accuracy = float((inputs.predict(self.model, test[0], 1000).argmax(axis=1) == test[1]).mean())
            print(json.dumps({"recipe": recipe, "seed": seed, "epoch": epoch + 1,
                              "train_seconds": round(self.seconds, 1),
                              "train_tflop": round(flop_per_epoch * (epoch + 1) / 1e12, 2),
                              "test_accuracy": round(accuracy, 4)}), flush=True)

    fit([Timer()])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipes", nargs="+", choices=list(RECIPES), default=list(RECIPES))
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--child", nargs=2, metavar=("RECIPE", "SEED"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        train(args.child[0], int(args.child[1]))
        return
    for recipe in args.recipes:
        if not (REPO / RECIPES[recipe].data / "dataset.json").exists():
            sys.exit(f"time_to_accuracy: no prepared data in {RECIPES[recipe].data}: run `make repro` first")
    before, rows = matmul_peak.measured(), []
    for recipe in args.recipes:
        for seed in args.seeds:
            result = subprocess.run([sys.executable, __file__, "--child", recipe, str(seed)], capture_output=True,
                                    text=True)
            if result.returncode != 0:
                sys.exit(f"time_to_accuracy: {recipe}, seed {seed} failed:\n{result.stderr[-3000:]}")
            found = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
            print(f"{recipe}, seed {seed}: {found[-1]['test_accuracy']:.4f} after {found[-1]['train_seconds']} s",
                  flush=True)
            rows += found
    rows = matmul_peak.with_machine(rows, before)
    # the rows of the (recipe, seed) runs not rerun are kept: seeds may be added one at a time
    matmul_peak.write_rows(OUT, rows, [*COLUMNS, "cpu", "matmul_peak_before", "matmul_peak_after"],
                           key=["recipe", "seed"])
    print(f"time_to_accuracy: wrote {OUT.relative_to(REPO)}")


if __name__ == "__main__":
    main()
