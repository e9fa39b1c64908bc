"""From raw files (or a folder of your own images) to the prepared dataset (prepared.py): uint8 images split by class
into train, validation and test, and the description beside them (params prepare).

The public datasets keep the split they have always had: a stratified draw of the validation split with prepare's
seed. A folder of your own images is split by content instead: each image's split is decided by a hash of its own
bytes with prepare's seed, so renaming a class folder, or adding images to a class, leaves every image already there
in the split it was in, and `dvc metrics diff` between two data versions compares models scored on the same images.
A folder is read and written image by image: prepare's memory does not grow with the folder."""

import shutil
from pathlib import Path

import numpy as np

from . import datasets, folders, outputs, prepared, splitting
from .settings import SEED, Float, Section

CHUNK_ROWS = 4096  # images copied at a time from the rows read to the split files


class Prepare(Section):
    val_fraction = Float(min=0, max=0.5, min_exclusive=True)  # of the training images, by class
    seed = SEED


def write_split(out, split, images, rows, labels):
    """The split's two .npy files in `out`, atomically: images[rows] (written a chunk at a time, so `images` may be
    prepared.Rows of any size) and `labels` (one per row)."""
    images_path, labels_path = prepared.split_files(out, split)

    def write_images(temp):
        with open(temp, "wb") as target:
            target.write(prepared.npy_header((len(rows), *images.shape[1:])))
            for start in range(0, len(rows), CHUNK_ROWS):
                target.write(np.ascontiguousarray(images[rows[start:start + CHUNK_ROWS]], np.uint8).data)

    outputs.write_atomically(images_path, write_images, suffix=".npy")
    outputs.write_atomically(labels_path, lambda temp: np.save(temp, np.asarray(labels, np.int64)), suffix=".npy")


def prepare_public(dataset: datasets.Dataset, raw_dir, settings: Prepare, out) -> tuple:
    """(description, counts) of a public dataset's raw files, prepared into `out`."""
    train_images, train_labels = dataset.read_split(raw_dir, "train")
    test_images, test_labels = dataset.read_split(raw_dir, "test")
    train_rows, val_rows = splitting.stratified_split(train_labels, settings.val_fraction, settings.seed)
    description = dataset.describe()
    counts = {}
    for split, images, labels, rows in (("train", train_images, train_labels, train_rows),
                                        ("val", train_images, train_labels, val_rows),
                                        ("test", test_images, test_labels, np.arange(len(test_labels)))):
        write_split(out, split, images, rows, labels[rows])
        counts[split] = split_counts(labels[rows], description.class_names)
    prepared.save_description(out, description)
    return description, counts


def prepare_folder(images: datasets.Images, settings: Prepare, out) -> tuple:
    """(description, counts, what was left out) of a folder of your own images, prepared into `out`."""
    out = Path(out)
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    shape = tuple(images.image_shape)
    rows_path = out / ".rows.npy"  # every candidate image, decoded; removed once the splits are written
    try:
        decoded = folders.read(images.folder, shape, images.max_pixels, images.bad_images, rows_path)
        classes = decoded.scan.class_names
        assignment = splitting.by_content(decoded.digests, decoded.scan.labels, decoded.scan.given, decoded.kept,
                                          len(classes), settings.seed, images.test_fraction, settings.val_fraction)
        dropped = [classes[label] for label in assignment.dropped]
        if dropped and images.bad_images == "error":
            raise folders.FolderError(f"{images.folder}: class {dropped[0]!r} has {assignment.reasons[0]}")
        kept_classes = [label for label in range(len(classes)) if label not in assignment.dropped]
        if len(kept_classes) < 2:
            raise folders.FolderError(f"{images.folder}: {len(kept_classes)} class(es) with enough images; a "
                                      "classifier needs at least 2 (one folder of images per class)")
        relabel = np.full(len(classes), -1)
        relabel[kept_classes] = np.arange(len(kept_classes))
        description = prepared.Description(datasets.FOLDER, images.title, shape,
                                           tuple(classes[label] for label in kept_classes))
        source = prepared.Rows(rows_path)
        counts = {}
        for split in ("train", "val", "test"):
            rows = np.flatnonzero(assignment.split == split)
            labels = relabel[decoded.scan.labels[rows]]
            write_split(out, split, source, rows, labels)
            counts[split] = split_counts(labels, description.class_names)
        del source
        prepared.save_description(out, description)
    except BaseException:
        if created:  # nothing half-written left behind, and only what this call made removed
            shutil.rmtree(out)
        raise
    finally:
        rows_path.unlink(missing_ok=True)
    return description, counts, folders.report(decoded.bad, [f"{name}: {why}" for name, why in
                                                             zip(dropped, assignment.reasons)])


def split_counts(labels, class_names) -> dict:
    counts = np.bincount(labels, minlength=len(class_names))
    return {"count": int(len(labels)), "per_class": {name: int(n) for name, n in zip(class_names, counts)}}

