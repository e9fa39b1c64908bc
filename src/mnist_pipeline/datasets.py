"""The image sets the pipeline can train on. Each public one is described once, here: its raw files with their pinned
sha256, the shape of one image, the names of its classes, and how its raw files are read. A folder of your own images
is the dataset named FOLDER, described by params data.images and read by folders.py. Nothing after prepare assumes
28x28 greyscale digits: the stages read the description prepare writes (prepared.Description).
"""

import tarfile
from pathlib import Path
from typing import NamedTuple

import numpy as np

from . import idx
from .errors import PipelineError, quote
from .prepared import Description
from .settings import Float, Int, ListOf, ParamsError, Section, Str

FOLDER = "images"  # data.dataset for a folder of your own images (params data.images)
# download and prepare: work on the transfer target of data.dataset (params transfer.targets) instead of it.
TRANSFER_TARGET = {"transfer-target": "the dataset params transfer.targets names for data.dataset"}


class Pinned(NamedTuple):
    """What one uncompressed raw file must be: its sha256 and its size in bytes."""
    sha256: str
    size: int


class RawFormatError(PipelineError, ValueError):
    """Raw files that do not hold what the dataset's description says."""


class Dataset(NamedTuple):
    name: str
    title: str
    image_shape: tuple  # (height, width, channels)
    class_names: tuple
    files: dict  # raw file name -> Pinned: what download delivers and prepare reads
    gzipped_on_mirrors: bool  # mirrors serve <file>.gz, unpacked on arrival; otherwise <file> as it is
    format: str  # "idx" or "cifar": which reader below
    # predict: the side of the square box the object of a photo is scaled into, inside the image, as the dataset's
    # own images were made (MNIST: digits in 20x20 of 28x28). None: photos cannot be prepared like its images.
    photo_box: int | None
    drawn: bool  # its images are strokes drawn on a plain ground (digits): the server's page offers a canvas

    def describe(self) -> Description:
        return Description(self.name, self.title, tuple(self.image_shape), tuple(self.class_names))

    def read_split(self, raw_dir, split):
        """uint8 images (N, height, width, channels) and labels (N,) of the raw `split` ("train" or "test")."""
        images, labels = READERS[self.format](self, Path(raw_dir), split)
        if images.shape[1:] != self.image_shape:
            raise RawFormatError(f"{self.title} {split}: images are {'x'.join(map(str, images.shape[1:]))}, "
                                 f"expected {'x'.join(map(str, self.image_shape))}")
        if len(images) != len(labels):
            raise RawFormatError(f"{self.title} {split}: {len(images)} images but {len(labels)} labels")
        if labels.size and labels.max() >= len(self.class_names):
            raise RawFormatError(f"{self.title} {split}: label {labels.max()} is outside 0-{len(self.class_names) - 1}")
        return images, labels


# The IDX file names of MNIST and Fashion-MNIST, which share the format and the names.
IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def _read_idx(dataset, raw_dir, split):
    images_name, labels_name = IDX_FILES[split]
    images = idx.parse_images(Path(raw_dir, images_name).read_bytes(), images_name)
    labels = idx.parse_labels(Path(raw_dir, labels_name).read_bytes(), labels_name)
    return images[..., np.newaxis], labels


CIFAR_ARCHIVE = "cifar-10-binary.tar.gz"
CIFAR_MEMBERS = {
    "train": tuple(f"cifar-10-batches-bin/data_batch_{n}.bin" for n in range(1, 6)),
    "test": ("cifar-10-batches-bin/test_batch.bin",),
}
CIFAR_RECORD = 1 + 32 * 32 * 3  # a label byte, then the red, green and blue planes, each 32x32 row by row


def _read_cifar(dataset, raw_dir, split):
    """The records of the split's batch files, read from the archive by exact member name (nothing is extracted)."""
    path = raw_dir / CIFAR_ARCHIVE
    chunks = []
    try:
        with tarfile.open(path, "r:gz") as archive:
            for name in CIFAR_MEMBERS[split]:
                try:
                    chunks.append(archive.extractfile(name).read())
                except (KeyError, AttributeError):  # no such member; a member that is not a file
                    raise RawFormatError(f"{path.name}: {name} is missing") from None
    except (tarfile.TarError, EOFError, OSError) as error:
        raise RawFormatError(f"{path.name}: not a readable tar.gz archive ({error})") from None
    for name, chunk in zip(CIFAR_MEMBERS[split], chunks):
        if len(chunk) % CIFAR_RECORD:
            raise RawFormatError(f"{path.name}: {name} has {len(chunk)} bytes, not a whole number of "
                                 f"{CIFAR_RECORD}-byte records")
    records = np.frombuffer(b"".join(chunks), dtype=np.uint8).reshape(-1, CIFAR_RECORD)
    images = records[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), records[:, 0].copy()


READERS = {"idx": _read_idx, "cifar": _read_cifar}


def _idx_pins(train_images, train_labels, test_images, test_labels):
    names = IDX_FILES["train"] + IDX_FILES["test"]
    return dict(zip(names, (train_images, train_labels, test_images, test_labels)))


DATASETS = {dataset.name: dataset for dataset in (
    Dataset(
        name="mnist", title="MNIST", image_shape=(28, 28, 1), class_names=tuple(str(digit) for digit in range(10)),
        files=_idx_pins(
            Pinned("ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db", 47040016),
            Pinned("65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5", 60008),
            Pinned("0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7", 7840016),
            Pinned("ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2", 10008)),
        gzipped_on_mirrors=True, format="idx", photo_box=20, drawn=True),
    Dataset(
        name="fashion_mnist", title="Fashion-MNIST", image_shape=(28, 28, 1),
        class_names=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                     "Ankle boot"),
        files=_idx_pins(
            Pinned("c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888", 47040016),
            Pinned("bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9", 60008),
            Pinned("5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b", 7840016),
            Pinned("0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34", 10008)),
        gzipped_on_mirrors=True, format="idx", photo_box=28, drawn=False),
    Dataset(
        name="cifar10", title="CIFAR-10", image_shape=(32, 32, 3),
        class_names=("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
        # The official binary archive, kept as it is (the pin is of the archive; prepare reads it directly).
        files={CIFAR_ARCHIVE: Pinned("c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd", 170052171)},
        gzipped_on_mirrors=False, format="cifar", photo_box=None, drawn=False),
)}
DATASET_NAMES = [*DATASETS, FOLDER]


class Images(Section):
    """A folder of your own images (params data.images; folders.py reads it)."""
    folder = Str()  # inside the repository, versioned with `dvc add`
    title = Str()
    image_shape = ListOf(Int(min=1, max=1024), min_length=3)  # height, width, 1 (grey) or 3 (RGB) channels
    test_fraction = Float(min=0, max=0.5, min_exclusive=True)
    bad_images = Str(choices=["skip", "error"])
    max_pixels = Int(min=1, max=1_000_000_000)

    def fits(self, key):
        parts = Path(self.folder).parts
        if not parts or Path(self.folder).is_absolute() or ".." in parts:
            raise ParamsError(f"{key}.folder: {self.folder!r} is not a folder inside the repository: give a path "
                              "relative to it (data/images, say), versioned with `dvc add`")
        shape = self.image_shape
        if len(shape) != 3 or shape[2] not in (1, 3) or min(shape[:2]) < 8:
            raise ParamsError(f"{key}.image_shape: expected [height, width, channels], at least 8x8, with 1 (grey) "
                              f"or 3 (RGB) channels, got {list(shape)}")


class Data(Section):
    dataset = Str(choices=DATASET_NAMES)
    images = Images


class Targets:
    """params transfer.targets: for each dataset a model may be trained on, the dataset it is fine-tuned on."""

    def check(self, value, key):
        if not isinstance(value, dict):
            raise ParamsError(f"{key}: expected a mapping of dataset to dataset, got {quote(value)}")
        names = Str(choices=DATASET_NAMES)
        for source, target in value.items():
            names.check(source, key)
            names.check(target, f"{key}.{source}")
        return dict(value)


TARGETS = Targets()


def image_shape(data: Data, name: str) -> tuple:
    """(height, width, channels) of the images of dataset `name`: as DATASETS pins them, or for a folder of your own
    as data.images converts them."""
    return tuple(data.images.image_shape) if name == FOLDER else DATASETS[name].image_shape


def chosen(data: Data, targets, transfer_target=False) -> str | None:
    """data.dataset, or with `transfer_target` the dataset a model trained on it is fine-tuned on (None when
    transfer.targets names none: the transfer stages then say so and write empty results). Every target must be
    another dataset with images of the same shape, so that a convolutional base fits it."""
    for source, target in targets.items():
        if target == source:
            raise ParamsError(f"transfer.targets.{source}: a dataset cannot be its own transfer target")
        if image_shape(data, target) != image_shape(data, source):
            raise ParamsError(f"transfer.targets.{source}: {target} images are {_shape(image_shape(data, target))}, "
                              f"{source} images {_shape(image_shape(data, source))}; they must be the same")
    return targets.get(data.dataset) if transfer_target else data.dataset


def _shape(shape):
    return "x".join(map(str, shape))
