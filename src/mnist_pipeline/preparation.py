"""From raw files (or a folder of your own images) to the prepared dataset (prepared.py): uint8 images split
stratified by class into train, validation and test, and the description beside them (params prepare)."""

from pathlib import Path

import numpy as np

from . import datasets, outputs, prepared, splitting
from .settings import SEED, Float, Section


class Prepare(Section):
    val_fraction = Float(min=0, max=0.5, min_exclusive=True)  # of the training images, stratified by class
    seed = SEED


def save_arrays(path, **arrays):
    """An uncompressed .npz; its zip entries carry a fixed date, so the bytes depend only on the arrays."""
    outputs.write_atomically(path, lambda temp: np.savez(temp, **arrays), suffix=".npz")


def read(name, raw_dir, images: datasets.Images, seed):
    """(description, train, test, what was skipped) of dataset `name`: uint8 images and their labels, from the raw
    files download fetched, or from the folder `images` describes."""
    if name != datasets.FOLDER:
        dataset = datasets.DATASETS[name]
        return dataset.describe(), dataset.read_split(raw_dir, "train"), dataset.read_split(raw_dir, "test"), {}
    from . import folders

    shape = tuple(images.image_shape)
    found = folders.read(images.folder, shape, images.max_pixels, images.bad_images)
    train = found.splits["train"]
    if "test" in found.splits:
        test = found.splits["test"]
    else:  # the folder gives no split: a stratified part of each class, drawn with prepare's seed
        kept, held = splitting.stratified_split(train[1], images.test_fraction, seed)
        test = train[0][held], train[1][held]
        train = splitting.keep_rows(*train, kept)
    return prepared.Description(datasets.FOLDER, images.title, shape, found.class_names), train, test, found.skipped


def write(out, description, train, test, settings: Prepare) -> dict:
    """The three splits and the description in `out`; returns the counts (per split, per class). One split at a
    time, so that a big folder of images needs memory for itself and one copy of a split."""
    train_images, train_labels = train
    train_rows, val_rows = splitting.stratified_split(train_labels, settings.val_fraction, settings.seed)
    splits = {"train": (train_images, train_labels, train_rows), "val": (train_images, train_labels, val_rows),
              "test": (*test, None)}
    counts = {}
    for split, (images, labels, rows) in splits.items():
        labels = labels if rows is None else labels[rows]
        save_arrays(Path(out, f"{split}.npz"), x=images if rows is None else images[rows],
                            y=labels.astype("int64"))
        counts[split] = {"count": int(len(labels)),
                         "per_class": splitting.class_counts(labels, description.class_names)}
        print(f"{description.title} {split}: {len(labels)} examples")
    prepared.save_description(out, description)
    return counts
