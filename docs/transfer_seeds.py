"""The transfer comparison of docs/datasets.md over several seeds: the `transfer` stage's comparison (params transfer,
both rules, both methods, every subset size) rerun with each seed for the subset, the split and the training, on
the committed tuned model and target data. Writes docs/transfer_seeds.csv, which `make report` turns into the table
of gains with their spread.

Run from the repository root with the environment active, after `make repro` (it needs models/tuned and
data/transfer/prepared): `python docs/transfer_seeds.py [--seeds 5 6 7]`. About five minutes a seed on 2 cores."""

import argparse
from pathlib import Path

from mnist_pipeline import artifacts, cli, data, model_files, params, runtime

OUT = Path(__file__).with_name("transfer_seeds.csv")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[5, 6, 7])
    parser.add_argument("--model", default="models/tuned")
    parser.add_argument("--best", default="models/best_hyperparameters.json")
    parser.add_argument("--data", default="data/transfer/prepared")
    args = parser.parse_args()
    all_params = params.load()
    settings, hp = all_params["transfer"], params.load_hyperparameters(args.best)
    runtime.configure(args.seeds[0], **all_params["runtime"])
    from mnist_pipeline import transfer

    source, _ = model_files.load(args.model)
    target = data.load_description(args.data)
    x_train, y_train = data.load_prepared(args.data, "train")
    test = data.load_prepared(args.data, "test")
    rows = []
    for seed in args.seeds:
        for size in settings["subsets"]:
            x, y = data.take_subset(x_train, y_train, size, seed)
            rows += [{"seed": seed, "images": len(y), **row}
                     for row in transfer.compare(source, hp, target, x, y, test, settings, seed)]
            print(f"seed {seed}, {len(y)} images: {rows[-4:]}", flush=True)
    artifacts.write_table(OUT, artifacts.table(rows, ["seed", "images", "rule", "method", "test_accuracy", "steps"]))


if __name__ == "__main__":
    cli.run(main)
