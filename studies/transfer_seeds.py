"""The transfer comparison of docs/datasets.md over several seeds: the `transfer` stage's comparison (params transfer,
but both rules whatever transfer.rules says, both methods, every subset size) rerun with each seed for the subset,
the split and the training, on the committed tuned model and target data. Writes studies/transfer_seeds.csv, which
`make report` turns into the table of gains with their spread.

Run from the repository root with the environment active, after `make repro` (it needs models/tuned and
data/transfer/prepared): `python studies/transfer_seeds.py [--seeds 5 6 7]`. About five minutes a seed on 2 cores."""

import argparse
from pathlib import Path

from mnist_pipeline import cli, outputs, prepared, runtime, settings

OUT = Path(__file__).with_name("transfer_seeds.csv")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[5, 6, 7])
    parser.add_argument("--model", default="models/tuned")
    parser.add_argument("--best", default="models/best_hyperparameters.json")
    parser.add_argument("--data", default="data/transfer/prepared")
    args = parser.parse_args()
    runtime.start(settings.load(runtime=runtime.Runtime))
    runtime.seed(args.seeds[0])
    from mnist_pipeline import cnn, model_loading, transfer

    comparison, hp = settings.load(transfer=transfer.Transfer), cnn.load_hyperparameters(args.best)
    comparison = transfer.Transfer(**{**vars(comparison), "rules": ("to_its_best", "same_epochs")})
    source, _ = model_loading.load(args.model)
    target = prepared.load_description(args.data)
    x_train, y_train = prepared.load_split(args.data, "train")
    test = prepared.load_split(args.data, "test")
    rows = []
    for seed in args.seeds:
        for size in comparison.subsets:
            x, y = prepared.take_subset(x_train, y_train, size, seed)
            rows += [{"seed": seed, "images": len(y), **row}
                     for row in transfer.compare(source, hp, target, x, y, test, comparison, seed)]
            print(f"seed {seed}, {len(y)} images: {rows[-4:]}", flush=True)
    outputs.write_table(OUT, outputs.table(rows, ["seed", "images", "rule", "method", "test_accuracy", "steps"]))


if __name__ == "__main__":
    cli.run(main)
