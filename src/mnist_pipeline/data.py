"""From raw files to the arrays the models train on, and the description of them that later stages read."""

import json
from pathlib import Path
from typing import NamedTuple

import numpy as np

from . import artifacts
from .errors import PipelineError, quote

DESCRIPTION_FILE = "dataset.json"


class DescriptionError(PipelineError, ValueError):
    """A dataset.json that does not describe a dataset as this project writes one."""


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


def save_description(directory, description: Description, model_files: dict | None = None):
    """dataset.json in `directory`. Beside a model's files, `model_files` ({file name: sha256}) says which files it
    describes (model_files.describe_model writes it so)."""
    fields = description._asdict()
    if model_files:
        fields["model_files"] = dict(sorted(model_files.items()))
    artifacts.write_json(Path(directory, DESCRIPTION_FILE), fields)


def load_description(directory) -> Description:
    return read_description(directory)[0]


def read_description(directory):
    """(Description, {file name: sha256} of the model files it describes, empty beside data) from `directory`'s
    dataset.json, every field checked: a hand-edited or foreign file is one line naming it and the field."""
    path = Path(directory, DESCRIPTION_FILE)
    try:
        fields = json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        raise DescriptionError(f"{path}: not JSON ({error})") from None
    if not isinstance(fields, dict):
        raise DescriptionError(f"{path}: expected a JSON object, got {quote(fields)}")
    for name, (check, expected) in _FIELDS.items():
        if name not in fields:
            raise DescriptionError(f"{path}: no {name}")
        if not check(fields[name]):
            raise DescriptionError(f"{path}: {name}: expected {expected}, got {quote(fields[name])}")
    model_files = fields.get("model_files", {})
    if not isinstance(model_files, dict) or not all(isinstance(v, str) for v in model_files.values()):
        raise DescriptionError(f"{path}: model_files: expected an object of file name to sha256")
    return Description(fields["name"], fields["title"], tuple(fields["image_shape"]),
                       tuple(fields["class_names"])), model_files


def _text(value):
    return isinstance(value, str) and 0 < len(value) <= 200


def _shape(value):
    return (isinstance(value, list) and len(value) == 3 and value[2] in (1, 3)
            and all(isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 4096 for v in value))


def _class_names(value):
    return (isinstance(value, list) and 2 <= len(value) <= 10000 and all(_text(v) for v in value)
            and len(set(value)) == len(value))


_FIELDS = {
    "name": (_text, "a name"),
    "title": (_text, "a title"),
    "image_shape": (_shape, "[height, width, channels] with 1 or 3 channels"),
    "class_names": (_class_names, "a list of at least 2 distinct names"),
}


def normalize(images: np.ndarray) -> np.ndarray:
    """uint8 images (prepare stores them so, at a quarter of float32's bytes) as float32 in [0, 1]."""
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


def take_subset(x, y, size: int, seed: int):
    """A random, class-mixed subset of `size` examples (all of them when size is 0 or too large)."""
    if size == 0 or size >= len(y):
        return x, y
    keep = np.sort(np.random.default_rng(seed).choice(len(y), size=size, replace=False))
    return x[keep], y[keep]


def load_prepared(prepared_dir, split):
    """(x, y) of one prepared split: uint8 images (N, height, width, channels) and int64 labels (N,). `normalize`
    makes the images float32 in [0, 1]; training.fit takes them as they are."""
    return artifacts.load_arrays(Path(prepared_dir, f"{split}.npz"), ("x", "y"))
