"""Splitting labelled images, stratified by class: a validation split out of the training images, a test split out of
a folder that gives none, the held-out part of transfer's few labelled images."""

import numpy as np


def stratified_split(labels: np.ndarray, fraction: float, seed: int):
    """Indices (kept, held out), sorted, with each class split in the same proportion."""
    rng = np.random.default_rng(seed)
    kept, held = [], []
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        n_held = int(round(len(members) * fraction))
        held.append(members[:n_held])
        kept.append(members[n_held:])
    return np.sort(np.concatenate(kept)), np.sort(np.concatenate(held))


def keep_rows(images: np.ndarray, labels: np.ndarray, rows: np.ndarray):
    """(images[rows], labels[rows]) for sorted `rows`, moved down within `images` itself rather than copied: a big
    folder of images needs no second copy of itself to lose a few."""
    for target, source in enumerate(rows):
        if target != source:
            images[target] = images[source]
    return images[:len(rows)], labels[rows]


def class_counts(labels: np.ndarray, class_names) -> dict:
    counts = np.bincount(labels, minlength=len(class_names))
    return {name: int(count) for name, count in zip(class_names, counts)}
