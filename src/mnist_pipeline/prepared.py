"""The prepared dataset every stage after prepare reads: for each split (train, val, test) a .npy of uint8 images
(N, height, width, channels), read memory-mapped so that a dataset of any size is never loaded whole, and a .npy of
int64 labels; and dataset.json, the description of what they hold (name, title, image shape, class names). Stages
know the data from that description, not from constants."""

import json
from pathlib import Path
from typing import NamedTuple

import numpy as np

from . import outputs
from .errors import PipelineError, quote

DESCRIPTION_FILE = "dataset.json"
DESCRIPTION_LIMIT = 1 << 20  # bytes: a description names at most 10 000 classes of 200 characters each


class DescriptionError(PipelineError, ValueError):
    """A dataset.json that does not describe a dataset as this project writes one."""


class Description(NamedTuple):
    name: str
    title: str
    image_shape: tuple  # (height, width, channels)
    class_names: tuple

    @property
    def num_classes(self):
        return len(self.class_names)


def save_description(directory, description: Description, model_files: dict | None = None, **card):
    """dataset.json in `directory`. Beside a model's files, `model_files` ({file name: sha256}) says which files it
    describes (model_files.describe writes it so), and `card` what is known of the model (model_loading.Card)."""
    fields = description._asdict()
    if model_files:
        fields["model_files"] = dict(sorted(model_files.items()))
    card = {name: value for name, value in card.items() if value is not None}
    outputs.write_json(Path(directory, DESCRIPTION_FILE), {**fields, **card})


def load_description(directory) -> Description:
    return parse_description(Path(directory, DESCRIPTION_FILE).read_bytes(), Path(directory, DESCRIPTION_FILE))[0]


def parse_description(content: bytes, path):
    """(Description, {file name: sha256} of the model files it describes, empty beside data) from the bytes of a
    dataset.json, every field checked: a hand-edited or foreign file is one line naming it and the field."""
    try:
        fields = json.loads(content.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise DescriptionError(f"{path}: not JSON ({str(error)[:200]})") from None
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


def split_files(prepared_dir, split):
    """The images and the labels file of one split."""
    return Path(prepared_dir, f"{split}_images.npy"), Path(prepared_dir, f"{split}_labels.npy")


def data_files(prepared_dir, *splits) -> list:
    """The files of the splits named, and the description: what a run that reads them depends on."""
    return [*(path for split in splits for path in split_files(prepared_dir, split)),
            Path(prepared_dir, DESCRIPTION_FILE)]


def load_split(prepared_dir, split):
    """(x, y) of one prepared split: uint8 images (N, height, width, channels), memory-mapped, and int64 labels."""
    images, labels = split_files(prepared_dir, split)
    return np.load(images, mmap_mode="r", allow_pickle=False), np.load(labels, allow_pickle=False)


def take_subset(x, y, size: int, seed: int):
    """A random, class-mixed subset of `size` examples (all of them when size is 0 or too large)."""
    if size == 0 or size >= len(y):
        return x, y
    keep = np.sort(np.random.default_rng(seed).choice(len(y), size=size, replace=False))
    return x[keep], y[keep]
