"""Splitting labelled images, stratified by class: a validation split out of the training images, a test split out of
a folder that gives none, the held-out part of transfer's few labelled images."""

import hashlib
from typing import NamedTuple

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


class Assignment(NamedTuple):
    split: np.ndarray  # "train", "val", "test", or "" for a row left out (bad, or its class dropped)
    dropped: list  # classes left out, and why (reasons, in the same order)
    reasons: list


def content_fraction(digest: bytes, seed: int, purpose: str) -> float:
    """A number in [0, 1) drawn from an image's own bytes (their sha256 `digest`), prepare's seed and what it is
    drawn for: the same image gets the same number whatever else is in the folder."""
    drawn = hashlib.sha256(seed.to_bytes(8, "big") + purpose.encode() + digest).digest()
    return int.from_bytes(drawn[:8], "big") / 2**64


def by_content(digests, labels, given, kept, num_classes, seed, test_fraction, val_fraction) -> Assignment:
    """Each kept image's split, decided by its content: test where the folder gives no split and its test draw is
    under test_fraction (else as the folder gives it), then validation, among the rest, where its validation draw is
    under val_fraction. A class needs an image in each split prepare draws: where its draws give none, its image with
    the lowest draw is lent to that split (it may go back once the class grows), and a class with too few images for
    that (three; two beside a given test split) is dropped."""
    split = np.full(len(labels), "", dtype=object)
    test_draw = np.array([content_fraction(d, seed, "test") if d else 1.0 for d in digests])
    val_draw = np.array([content_fraction(d, seed, "val") if d else 1.0 for d in digests])
    given_test = any(g is not None for g in given)
    for row in np.flatnonzero(kept):
        if given[row] == "test" or not given_test and test_draw[row] < test_fraction:
            split[row] = "test"
        else:
            split[row] = "val" if val_draw[row] < val_fraction else "train"
    dropped, reasons = [], []
    needed = ("train", "val") if given_test else ("train", "val", "test")
    for label in range(num_classes):
        members = np.flatnonzero(kept & (labels == label))
        pool = members[split[members] != "test"] if given_test else members  # what prepare may place
        if len(pool) < len(needed):
            dropped.append(label)
            reasons.append(f"{len(pool)} usable image(s){' to train on' if given_test else ''}: a class needs "
                           f"{len(needed)} at least ({', '.join(needed)})")
            split[members] = ""
            continue
        for name in needed:
            if not (split[pool] == name).any():
                donor = max(needed, key=lambda other: int((split[pool] == other).sum()))
                candidates = pool[split[pool] == donor]
                draw = test_draw if name == "test" else val_draw
                split[candidates[np.argmin(draw[candidates])]] = name
    return Assignment(split, dropped, reasons)
