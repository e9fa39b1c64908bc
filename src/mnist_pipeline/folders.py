"""Your own images: a folder of class folders (`<folder>/<class>/*`, or `<folder>/train/<class>/*` and
`<folder>/test/<class>/*` to give the test split), read image by image into rows of one uint8 .npy written as it
goes, so that a folder of any size needs memory for one image at a time. The class names are the folder names, in
sorted order.

Every file is read through guarded.py: regular files only, at most guarded.IMAGE_BYTES, within a deadline; hidden
files (names starting with a dot: .DS_Store, Thumbs.db's kin) are passed over, and a file or class folder that is a
link leading outside the folder is not followed. Each file is then checked on its own: what is not a PNG, JPEG, GIF,
BMP, TIFF or WebP image, cannot be decoded, has more pixels than the limit, repeats another file byte for byte, or is
the same file as one in another class, is a bad image; a class folder left with none is an empty class. `on_bad` says
what happens: "error" stops at the first with one line naming it, "skip" leaves it out and reports it (prepare writes
the report into metrics/data.json). Every image is converted to one shape (photos.to_pixels); an animated GIF gives
its first frame."""

import hashlib
import io
import math
import os
from collections import Counter
from pathlib import Path
from typing import NamedTuple

import numpy as np

from . import guarded, photos, prepared
from .errors import PipelineError

SPLITS = ("train", "test")
LISTED = 20  # skipped files named in the report; the rest are counted


class FolderError(PipelineError):
    pass


class Scan(NamedTuple):
    class_names: tuple
    paths: list  # every candidate image file
    labels: np.ndarray  # its class, an index into class_names
    given: list  # the split its folder gives it ("train" or "test"), or None where the folder gives none
    bad: list  # (path, reason, kind) of what was left out while looking


class Decoded(NamedTuple):
    """What read() found, row by row of the array it wrote (row i holds the pixels of scan.paths[i])."""
    scan: Scan
    kept: np.ndarray  # bool: the row holds a usable image
    digests: list  # sha256 of each file's bytes (None where it could not be read)
    bad: list


def scan(folder, on_bad) -> Scan:
    folder = Path(folder)
    if not folder.is_dir():
        raise FolderError(f"{folder}: no such folder (put your images in <folder>/<class>/, then `dvc add` it)")
    root = folder.resolve()
    bad = []
    layout = _layout(folder, root, bad, on_bad)
    classes = sorted({path.name for _, class_dirs in layout.values() for path in class_dirs})
    paths, labels, given = [], [], []
    for split, (split_dir, _) in layout.items():
        for label, name in enumerate(classes):
            for path in _files(split_dir / name, root, bad, on_bad):
                paths.append(path)
                labels.append(label)
                given.append(split if len(layout) > 1 else None)
        for path in sorted(split_dir.iterdir()):
            if not path.name.startswith(".") and not path.is_dir():
                _bad(bad, on_bad, path, "not in a class folder", "not in a class folder")
    return Scan(tuple(classes), paths, np.array(labels, np.int64), given, bad)


def read(folder, image_shape, max_pixels, on_bad, rows_path) -> Decoded:
    """Decode every image of `folder` into rows_path, a new .npy of shape (candidate files, *image_shape), written
    row by row (a row of zeros where a file is left out)."""
    found = scan(folder, on_bad)
    kept, digests, seen, bad = np.zeros(len(found.paths), bool), [None] * len(found.paths), {}, list(found.bad)
    blank = bytes(math.prod(image_shape))
    with open(rows_path, "wb") as rows:
        rows.write(prepared.npy_header((len(found.paths), *image_shape)))
        for index, (path, label) in enumerate(zip(found.paths, found.labels)):
            try:
                content = guarded.read_bytes(path, guarded.IMAGE_BYTES)
                pixels = photos.decode(io.BytesIO(content), path,
                                       lambda image: photos.to_pixels(image, image_shape), max_pixels)
            except (photos.PhotoError, OSError) as error:
                rows.write(blank)
                reason = str(error).removeprefix(f"{path}: ")
                _bad(bad, on_bad, path, reason,
                     "over the pixel limit" if "more than the limit" in reason else "unreadable")
                continue
            rows.write(np.ascontiguousarray(pixels, np.uint8).data)
            digest = hashlib.sha256(content).digest()
            digests[index] = digest
            if digest in seen:
                first = seen[digest]
                if found.labels[first] != label:  # one image, two labels: neither can be trusted
                    kept[first] = False
                    _bad(bad, on_bad, found.paths[first], f"the same file as {path}, in another class",
                         "conflicting labels")
                    _bad(bad, on_bad, path, f"the same file as {found.paths[first]}, in another class",
                         "conflicting labels")
                else:
                    _bad(bad, on_bad, path, f"the same file as {found.paths[first]}", "duplicate")
                continue
            seen[digest] = index
            kept[index] = True
    return Decoded(found, kept, digests, bad)


def _layout(folder: Path, root: Path, bad, on_bad) -> dict:
    """{split: (its folder, its class folders)}: train and test when the folder gives the split, else train alone
    (split by prepare)."""
    subdirectories = _subdirectories(folder, root, bad, on_bad)
    names = {path.name for path in subdirectories}
    if names & set(SPLITS):
        if names != set(SPLITS):
            raise FolderError(f"{folder}: holds {', '.join(sorted(names))}; with a train or test folder it must "
                              "hold exactly train/ and test/, each with the class folders")
        return {split: (folder / split, _subdirectories(folder / split, root, bad, on_bad)) for split in SPLITS}
    return {"train": (folder, subdirectories)}


def _inside(path: Path, root: Path, bad, on_bad) -> bool:
    """Whether `path` may be read: a link that leads outside the folder is not followed (and is a bad image)."""
    if path.is_symlink() and not guarded.inside(path, root):
        _bad(bad, on_bad, path, "a link to something outside the folder: not followed", "a link outside the folder")
        return False
    return True


def _subdirectories(directory: Path, root: Path, bad, on_bad):
    return sorted(path for path in directory.iterdir()
                  if not path.name.startswith(".") and path.is_dir() and _inside(path, root, bad, on_bad))


def _files(directory: Path, root: Path, bad, on_bad):
    """The image files under a class folder, in sorted order, its subfolders included (links to folders are not
    followed; hidden files and folders are passed over)."""
    if not directory.is_dir():
        return []
    found = []
    for parent, folders, files in os.walk(directory):
        for name in folders:  # os.walk does not follow links: one that leads outside is named as such
            if Path(parent, name).is_symlink():
                _inside(Path(parent, name), root, bad, on_bad)
        folders[:] = sorted(name for name in folders if not name.startswith("."))
        found += [Path(parent, name) for name in files if not name.startswith(".")]
    return sorted(path for path in found if _inside(path, root, bad, on_bad))


def _bad(bad, on_bad, path, reason, kind):
    if on_bad == "error":
        raise FolderError(f"{path}: {reason}")
    bad.append((str(path), reason, kind))


def report(bad, empty) -> dict:
    """The report of what was left out, for metrics/data.json (empty when nothing was)."""
    if not bad and not empty:
        return {}
    return {"files": len(bad), "named": [f"{path}: {reason}" for path, reason, _ in bad[:LISTED]],
            "by_reason": dict(Counter(kind for _, _, kind in bad)), "classes": empty}
