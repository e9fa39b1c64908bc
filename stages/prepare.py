"""prepare: read the images of params `data.dataset` (or, with --transfer-target, of its transfer target): the raw
files download fetched, or a folder of your own images (data.dataset: images, data.images). Keep them as uint8 with
shape (N, height, width, channels), split them stratified by class (a validation split out of the training images;
a test split too where a folder gives none), and write the dataset's description (image shape, class names) beside
the arrays. The test set is only ever read after training: by evaluate, transfer, export and explain."""

from pathlib import Path

from mnist_pipeline import artifacts, cli, data, datasets, params


def main():
    args = cli.parse_paths(__doc__, "raw", "images", "out", "metrics", "timing", flags=cli.TRANSFER_TARGET)
    all_params = params.load()
    settings = all_params["prepare"]
    name = params.dataset_name(all_params, args.transfer_target)
    if name is None:
        artifacts.empty_directory(args.out)
        artifacts.write_json(args.metrics, {})
        print("prepare: nothing to prepare (no transfer target for data.dataset)")
        return
    clock = cli.Stopwatch()
    description, (train_images, train_labels), (test_images, test_labels), skipped = read(name, args, all_params)
    train_idx, val_idx = data.stratified_split(train_labels, settings["val_fraction"], settings["seed"])
    # One split at a time, so that a big folder of images needs memory for itself and one copy of a split.
    splits = {"train": (train_images, train_labels, train_idx), "val": (train_images, train_labels, val_idx),
              "test": (test_images, test_labels, None)}
    counts = {}
    for split, (images, labels, rows) in splits.items():
        labels = labels if rows is None else labels[rows]
        artifacts.save_arrays(Path(args.out, f"{split}.npz"), x=images if rows is None else images[rows],
                              y=labels.astype("int64"))
        counts[split] = {"count": int(len(labels)), "per_class": data.class_counts(labels, description.class_names)}
        print(f"{description.title} {split}: {len(labels)} examples")
    data.save_description(args.out, description)
    artifacts.write_json(args.metrics, {**counts, **({"skipped": skipped} if skipped else {})})
    if skipped:
        kinds = ", ".join(f"{count} {kind}" for kind, count in skipped["by_reason"].items())
        print(f"prepare: {skipped['files']} file(s) left out ({kinds}), named in {args.metrics}")
    clock.mark("prepare_seconds")
    clock.write(args.timing)


def read(name, args, all_params):
    """(description, train, test, what was skipped) of dataset `name`: uint8 images and their labels."""
    if name != datasets.FOLDER:
        dataset = datasets.DATASETS[name]
        return data.describe(dataset), dataset.read_split(args.raw, "train"), dataset.read_split(args.raw, "test"), {}
    from mnist_pipeline import folders

    settings = all_params["data"]["images"]
    shape = tuple(settings["image_shape"])
    found = folders.read(args.images, shape, settings["max_pixels"], settings["bad_images"])
    train = found.splits["train"]
    if "test" in found.splits:
        test = found.splits["test"]
    else:  # the folder gives no split: a stratified part of each class, drawn with prepare's seed
        kept, held = data.stratified_split(train[1], settings["test_fraction"], all_params["prepare"]["seed"])
        test = train[0][held], train[1][held]
        train = data.keep_rows(*train, kept)
    return data.Description(datasets.FOLDER, settings["title"], shape, found.class_names), train, test, found.skipped


if __name__ == "__main__":
    cli.run(main)
