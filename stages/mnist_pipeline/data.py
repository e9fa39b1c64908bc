"""From raw files to the arrays the models train on, and the description of them that later stages read."""

import json
from pathlib import Path
from typing import NamedTuple

import numpy as np

from . import artifacts

DESCRIPTION_FILE = "dataset.json"


class Description(NamedTuple):
    """What a prepared dataset holds, as the stages after prepare know it: from its dataset.json, not from constants."""
    name: str
    title: str
    image_shape: tuple  # (height, width, channels)
    class_names: tuple

    @property
    def num_classes(self):
        return len(self.class_names)


def describe(dataset) -> Description:
    return Description(dataset.name, dataset.title, tuple(dataset.image_shape), tuple(dataset.class_names))


def save_description(prepared_dir, description: Description):
    artifacts.write_json(Path(prepared_dir, DESCRIPTION_FILE), description._asdict())


def load_description(prepared_dir) -> Description:
    with open(Path(prepared_dir, DESCRIPTION_FILE), encoding="utf-8") as f:
        fields = json.load(f)
    return Description(fields["name"], fields["title"], tuple(fields["image_shape"]), tuple(fields["class_names"]))


def normalize(images: np.ndarray) -> np.ndarray:
    """uint8 (N, height, width, channels) to float32 in [0, 1]."""
    return images.astype(np.float32) / 255.0


def stratified_split(labels: np.ndarray, val_fraction: float, seed: int):
    """Indices (train, val), sorted, with each class split in the same proportion."""
    rng = np.random.default_rng(seed)
    train, val = [], []
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        n_val = int(round(len(members) * val_fraction))
        val.append(members[:n_val])
        train.append(members[n_val:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(val))


def class_counts(labels: np.ndarray, class_names) -> dict:
    counts = np.bincount(labels, minlength=len(class_names))
    return {name: int(count) for name, count in zip(class_names, counts)}


def take_subset(x, y, size: int, seed: int):
    """A random, class-mixed subset of `size` examples (all of them when size is 0 or too large)."""
    if size == 0 or size >= len(y):
        return x, y
    keep = np.sort(np.random.default_rng(seed).choice(len(y), size=size, replace=False))
    return x[keep], y[keep]


def load_prepared(prepared_dir, split):
    """(x, y) of one prepared split: float32 images (N, height, width, channels) and int64 labels (N,)."""
    return artifacts.load_arrays(Path(prepared_dir, f"{split}.npz"), ("x", "y"))
