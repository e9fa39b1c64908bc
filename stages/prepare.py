"""prepare: parse the raw IDX files, scale to float32 in [0, 1] with shape (N, 28, 28, 1), and carve a stratified
validation split out of the training set. The test set is only ever read by evaluate."""

from pathlib import Path

from mnist_pipeline import artifacts, cli, data, params


def main():
    args = cli.parse_paths(__doc__, "raw", "out", "metrics", "timing")
    settings = params.load()["prepare"]
    clock = cli.Stopwatch()
    train_images, train_labels = data.read_raw_split(args.raw, "train")
    test_images, test_labels = data.read_raw_split(args.raw, "test")
    train_idx, val_idx = data.stratified_split(train_labels, settings["val_fraction"], settings["seed"])

    splits = {
        "train": (train_images[train_idx], train_labels[train_idx]),
        "val": (train_images[val_idx], train_labels[val_idx]),
        "test": (test_images, test_labels),
    }
    for name, (images, labels) in splits.items():
        artifacts.save_arrays(Path(args.out, f"{name}.npz"), x=data.normalize(images), y=labels.astype("int64"))
        print(f"{name}: {len(labels)} examples")
    artifacts.write_json(args.metrics, {
        name: {"count": int(len(labels)), "per_class": data.class_counts(labels)}
        for name, (_, labels) in splits.items()
    })
    clock.mark("prepare_seconds")
    clock.write(args.timing)


if __name__ == "__main__":
    cli.run(main)
