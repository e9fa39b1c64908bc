"""From raw IDX files to the arrays the models train on."""

from pathlib import Path

import numpy as np

from . import idx
from .artifacts import load_arrays

IMAGE_SHAPE = (28, 28, 1)
NUM_CLASSES = 10
RAW_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
SPLITS = ("train", "val", "test")


def read_raw_split(raw_dir, split):
    """uint8 images (N, 28, 28) and labels (N,) of one raw split, checked for agreement with each other."""
    images_name, labels_name = RAW_FILES[split]
    images = idx.parse_images(Path(raw_dir, images_name).read_bytes(), images_name)
    labels = idx.parse_labels(Path(raw_dir, labels_name).read_bytes(), labels_name)
    if images.shape[1:] != IMAGE_SHAPE[:2]:
        raise idx.IdxFormatError(f"{images_name}: images are {images.shape[1]}x{images.shape[2]}, expected 28x28")
    if len(images) != len(labels):
        raise idx.IdxFormatError(f"{images_name} has {len(images)} images but {labels_name} has {len(labels)} labels")
    if labels.size and labels.max() >= NUM_CLASSES:
        raise idx.IdxFormatError(f"{labels_name}: label {labels.max()} is outside 0-{NUM_CLASSES - 1}")
    return images, labels


def normalize(images: np.ndarray) -> np.ndarray:
    """uint8 (N, 28, 28) to float32 (N, 28, 28, 1) in [0, 1]."""
    return (images.astype(np.float32) / 255.0).reshape((-1, *IMAGE_SHAPE))


def stratified_split(labels: np.ndarray, val_fraction: float, seed: int):
    """Indices (train, val), sorted, with each class split in the same proportion."""
    rng = np.random.default_rng(seed)
    train, val = [], []
    for label in range(NUM_CLASSES):
        members = rng.permutation(np.flatnonzero(labels == label))
        n_val = int(round(len(members) * val_fraction))
        val.append(members[:n_val])
        train.append(members[n_val:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(val))


def class_counts(labels: np.ndarray) -> dict:
    counts = np.bincount(labels, minlength=NUM_CLASSES)
    return {str(label): int(count) for label, count in enumerate(counts)}


def take_subset(x, y, size: int, seed: int):
    """A random, class-mixed subset of `size` examples (all of them when size is 0 or too large)."""
    if size == 0 or size >= len(y):
        return x, y
    keep = np.sort(np.random.default_rng(seed).choice(len(y), size=size, replace=False))
    return x[keep], y[keep]


def load_prepared(prepared_dir, split):
    """(x, y) of one prepared split: float32 images (N, 28, 28, 1) and int64 labels (N,)."""
    return load_arrays(Path(prepared_dir, f"{split}.npz"), ("x", "y"))
