"""prepare: read the raw files of params `data.dataset` (or, with --transfer-target, of its transfer target), scale
the images to float32 in [0, 1] with shape (N, height, width, channels), carve a stratified validation split out of
the training set, and write the dataset's description (image shape, class names) beside the arrays. The test set is
only ever read after training: by evaluate, transfer, export and explain."""

from pathlib import Path

from mnist_pipeline import artifacts, cli, data, datasets, params


def main():
    args = cli.parse_paths(__doc__, "raw", "out", "metrics", "timing", flags=cli.TRANSFER_TARGET)
    all_params = params.load()
    settings = all_params["prepare"]
    dataset = datasets.DATASETS[params.dataset_name(all_params, args.transfer_target)]
    clock = cli.Stopwatch()
    train_images, train_labels = dataset.read_split(args.raw, "train")
    test_images, test_labels = dataset.read_split(args.raw, "test")
    train_idx, val_idx = data.stratified_split(train_labels, settings["val_fraction"], settings["seed"])

    splits = {
        "train": (train_images[train_idx], train_labels[train_idx]),
        "val": (train_images[val_idx], train_labels[val_idx]),
        "test": (test_images, test_labels),
    }
    for name, (images, labels) in splits.items():
        artifacts.save_arrays(Path(args.out, f"{name}.npz"), x=data.normalize(images), y=labels.astype("int64"))
        print(f"{dataset.title} {name}: {len(labels)} examples")
    data.save_description(args.out, data.describe(dataset))
    artifacts.write_json(args.metrics, {
        name: {"count": int(len(labels)), "per_class": data.class_counts(labels, dataset.class_names)}
        for name, (_, labels) in splits.items()
    })
    clock.mark("prepare_seconds")
    clock.write(args.timing)


if __name__ == "__main__":
    cli.run(main)
