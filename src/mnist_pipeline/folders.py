"""Your own images: a folder of class folders (`<folder>/<class>/*`, or `<folder>/train/<class>/*` and
`<folder>/test/<class>/*` to give the split), read into the same uint8 arrays prepare writes for every dataset. The
class names are the folder names, in sorted order.

Each file is checked on its own: what is not a PNG, JPEG, GIF, BMP, TIFF or WebP image, cannot be decoded, has more
pixels than the limit, repeats another file byte for byte, or is the same file as one in another class, is a bad
image; a class folder left with none is an empty class. `on_bad` says what happens: "error" stops at the first with
one line naming it, "skip" leaves it out and reports it (prepare writes the report into metrics/data.json). Fewer
than two classes is an error either way. Every image is converted to one shape (photos.to_pixels)."""

import hashlib
import io
from collections import Counter
from pathlib import Path
from typing import NamedTuple

import numpy as np

from . import photos, splitting
from .errors import PipelineError

SPLITS = ("train", "test")
LISTED = 20  # skipped files named in the report; the rest are counted


class FolderError(PipelineError):
    pass


class Images(NamedTuple):
    class_names: tuple
    splits: dict  # "train" (and "test", when the folder gives the split) -> (uint8 images, int64 labels)
    skipped: dict  # the report of what was left out (empty when nothing was)


def read(folder, image_shape, max_pixels, on_bad) -> Images:
    folder = Path(folder)
    layout = _layout(folder)
    classes = sorted({path.name for split_dir in layout.values() for path in _subdirectories(split_dir)})
    files = {split: [(path, label) for label, name in enumerate(classes) for path in _files(split_dir / name)]
             for split, split_dir in layout.items()}
    bad, stray = [], [path for split_dir in layout.values() for path in split_dir.iterdir()
                      if not path.is_dir() and not path.name.startswith(".")]
    for path in stray:
        _bad(bad, on_bad, path, "not in a class folder", "not in a class folder")
    count = sum(len(found) for found in files.values())
    images = np.zeros((count, *image_shape), np.uint8)
    labels, kept, seen, order = np.zeros(count, np.int64), np.zeros(count, bool), {}, []
    for index, (path, label) in enumerate(found for split in layout for found in files[split]):
        order.append(path)
        labels[index] = label
        try:
            content = path.read_bytes()
            images[index] = photos.decode(io.BytesIO(content), path, lambda image: photos.to_pixels(image, image_shape),
                                          max_pixels)
        except (photos.PhotoError, OSError) as error:
            reason = str(error).removeprefix(f"{path}: ")
            _bad(bad, on_bad, path, reason, "over the pixel limit" if "more than the limit" in reason else "unreadable")
            continue
        digest = hashlib.sha256(content).hexdigest()
        if digest in seen:
            first = seen[digest]
            if labels[first] != label:  # one image, two labels: neither can be trusted
                kept[first] = False
                _bad(bad, on_bad, order[first], f"the same file as {path}, in another class", "conflicting labels")
                _bad(bad, on_bad, path, f"the same file as {order[first]}, in another class", "conflicting labels")
            else:
                _bad(bad, on_bad, path, f"the same file as {order[first]}", "duplicate")
            continue
        seen[digest] = index
        kept[index] = True
    return _by_class(folder, layout, classes, images, labels, kept, len(files["train"]), bad, on_bad)


def _layout(folder: Path) -> dict:
    """{"train": dir, "test": dir} when the folder gives the split, else {"train": folder} (split by prepare)."""
    if not folder.is_dir():
        raise FolderError(f"{folder}: no such folder (put your images in <folder>/<class>/, then `dvc add` it)")
    names = {path.name for path in _subdirectories(folder)}
    if names & set(SPLITS):
        if names != set(SPLITS):
            raise FolderError(f"{folder}: holds {', '.join(sorted(names))}; with a train or test folder it must "
                              "hold exactly train/ and test/, each with the class folders")
        return {split: folder / split for split in SPLITS}
    return {"train": folder}


def _subdirectories(directory: Path):
    return sorted(path for path in directory.iterdir() if path.is_dir() and not path.name.startswith("."))


def _files(directory: Path):
    if not directory.is_dir():
        return []
    return sorted(path for path in directory.rglob("*") if path.is_file() and not path.name.startswith("."))


def _bad(bad, on_bad, path, reason, kind):
    if on_bad == "error":
        raise FolderError(f"{path}: {reason}")
    bad.append((str(path), reason, kind))


def _by_class(folder, layout, classes, images, labels, kept, train_count, bad, on_bad) -> Images:
    """The kept images split as the folder gives them (the first `train_count` are train's), classes with no kept
    training image left out (or refused)."""
    in_train = np.arange(len(labels)) < train_count
    counts = np.bincount(labels[kept & in_train], minlength=len(classes))
    empty = [name for name, count in zip(classes, counts) if count == 0]
    if empty and on_bad == "error":
        raise FolderError(f"{layout['train'] / empty[0]}: no images of class {empty[0]!r} to train on")
    keep_classes = [label for label, count in enumerate(counts) if count > 0]
    if len(keep_classes) < 2:
        raise FolderError(f"{folder}: {len(keep_classes)} class(es) with images; a classifier needs at least 2 (one "
                          "folder of images per class)")
    relabel = np.full(len(classes), -1)
    relabel[keep_classes] = np.arange(len(keep_classes))
    kept &= relabel[labels] >= 0
    splits = {}
    if len(layout) > 1:
        test = np.flatnonzero(kept & ~in_train)
        splits["test"] = images[test], relabel[labels[test]]
    train_images, train_labels = splitting.keep_rows(images, labels, np.flatnonzero(kept & in_train))  # no second copy
    splits = {"train": (train_images, relabel[train_labels]), **splits}
    skipped = {"files": len(bad), "named": [f"{path}: {reason}" for path, reason, _ in bad[:LISTED]],
               "by_reason": dict(Counter(kind for _, _, kind in bad)), "classes": empty} if bad or empty else {}
    return Images(tuple(classes[label] for label in keep_classes), splits, skipped)
