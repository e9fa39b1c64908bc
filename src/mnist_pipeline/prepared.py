"""The prepared dataset every stage after prepare reads: for each split (train, val, test) a .npy of uint8 images
(N, height, width, channels), read a few rows at a time (Rows) so that a dataset of any size is never loaded whole,
and a .npy of int64 labels; and dataset.json, the description of what they hold (name, title, image shape, class
names). Stages know the data from that description, not from constants."""

import io
import json
import math
import os
from pathlib import Path
from typing import NamedTuple

import numpy as np

from . import outputs
from .errors import PipelineError, quote

DESCRIPTION_FILE = "dataset.json"
DESCRIPTION_LIMIT = 1 << 20  # bytes: a description names at most 10 000 classes of 200 characters each


class DescriptionError(PipelineError, ValueError):
    """A dataset.json that does not describe a dataset as this project writes one."""


class RowsError(PipelineError, ValueError):
    """A split's images file that is not the array its header describes."""


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
    """(x, y) of one prepared split: uint8 images (N, height, width, channels) as Rows on disk, and int64 labels."""
    images, labels = split_files(prepared_dir, split)
    return Rows(images), np.load(labels, allow_pickle=False)


def npy_header(shape, dtype=np.uint8) -> bytes:
    """The header np.save writes before a C-ordered array of this shape: followed by the rows' bytes, it makes the
    file np.save would write, so that images can be written a row or a chunk at a time."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)),
                                                  "fortran_order": False, "shape": tuple(shape)})
    return header.getvalue()


class Rows:
    """The images of a .npy file as they lie on disk, read with pread only as rows are asked for: `rows[i]`,
    `rows[a:b]` and `rows[indices]` give arrays; a dataset of any size costs the memory of the rows asked for. (A
    memory map serves the same reads, but the process keeps every page it has touched: an epoch over a dataset would
    count the whole of it as the process's memory.)"""

    def __init__(self, path):
        self.path = Path(path)
        self._file = open(self.path, "rb")  # noqa: SIM115 (open while the object lives)
        version = np.lib.format.read_magic(self._file)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
            np.lib.format.read_array_header_2_0
        self.shape, fortran_order, self.dtype = read_header(self._file)
        self._offset = self._file.tell()
        self._row_bytes = math.prod(self.shape[1:]) * self.dtype.itemsize
        size = os.fstat(self._file.fileno()).st_size
        if fortran_order or self.dtype.hasobject or not self.shape or \
                size != self._offset + len(self) * self._row_bytes:
            raise RowsError(f"{self.path}: not a C-ordered array of {self.shape} as its header says")

    ndim = property(lambda self: len(self.shape))
    size = property(lambda self: math.prod(self.shape))

    def __len__(self):
        return self.shape[0]

    def __getitem__(self, index):
        if isinstance(index, (int, np.integer)):
            return self[[index]][0]
        if isinstance(index, slice):
            rows = np.arange(*index.indices(len(self)))
        else:
            rows = np.asarray(index)
            rows = np.flatnonzero(rows) if rows.dtype == bool else rows.astype(np.int64).reshape(-1)
        rows = np.where(rows < 0, rows + len(self), rows)
        out = np.empty((len(rows), *self.shape[1:]), self.dtype)
        if not len(rows):
            return out
        if rows.min() < 0 or rows.max() >= len(self):
            raise IndexError(f"{self.path}: row index out of range for {len(self)} rows")
        flat = out.reshape(len(rows), -1).view(np.uint8)
        runs = np.flatnonzero(np.diff(rows) != 1) + 1  # rows that follow each other are read in one call
        for start, stop in zip([0, *runs], [*runs, len(rows)]):
            wanted = (stop - start) * self._row_bytes
            if os.preadv(self._file.fileno(), [flat[start:stop]], self._offset + int(rows[start]) * self._row_bytes) \
                    != wanted:
                raise RowsError(f"{self.path}: shorter than its header says")
        return out

    def __array__(self, dtype=None, copy=None):
        return self[:] if dtype is None else self[:].astype(dtype)


def take_subset(x, y, size: int, seed: int):
    """A random, class-mixed subset of `size` examples (all of them when size is 0 or too large)."""
    if size == 0 or size >= len(y):
        return x, y
    keep = np.sort(np.random.default_rng(seed).choice(len(y), size=size, replace=False))
    return x[keep], y[keep]
