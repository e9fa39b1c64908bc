"""The dataset descriptions: real Fashion-MNIST against its pins and published facts, and the CIFAR-10 reader on a
small archive built here in the official binary format (no copy of the real one is reachable offline)."""

import hashlib
import io
import tarfile

import numpy as np
import pytest

from mnist_pipeline import datasets, inputs, sources

FASHION = datasets.DATASETS["fashion_mnist"]
CIFAR = datasets.DATASETS["cifar10"]


def test_every_dataset_names_one_class_per_label_and_pins_every_file():
    for dataset in datasets.DATASETS.values():
        assert len(dataset.class_names) == len(set(dataset.class_names)) == 10, dataset.name
        for pinned in dataset.files.values():
            assert len(pinned.sha256) == 64 and int(pinned.sha256, 16) and pinned.size > 0


def test_real_fashion_mnist_matches_its_pins_and_is_balanced(raw_fashion_dir):
    for name, pinned in FASHION.files.items():
        assert hashlib.sha256((raw_fashion_dir / name).read_bytes()).hexdigest() == pinned.sha256
    train_images, train_labels = FASHION.read_split(raw_fashion_dir, "train")
    _, test_labels = FASHION.read_split(raw_fashion_dir, "test")
    assert train_images.shape == (60000, 28, 28, 1)
    assert np.bincount(train_labels).tolist() == [6000] * 10 and np.bincount(test_labels).tolist() == [1000] * 10
    assert FASHION.class_names[train_labels[0]] == "Ankle boot"  # the first training image, as published


def cifar_batch(labels, rng):
    """Records in the official layout: a label byte, then the red, green and blue planes of 32x32."""
    images = rng.integers(0, 256, (len(labels), 32, 32, 3), dtype=np.uint8)
    planes = images.transpose(0, 3, 1, 2).reshape(len(labels), -1)
    return np.concatenate([np.array(labels, np.uint8)[:, None], planes], axis=1).tobytes(), images


def cifar_archive(path, members: dict):
    with tarfile.open(path, "w:gz") as archive:
        for name, content in members.items():
            info = tarfile.TarInfo(f"cifar-10-batches-bin/{name}")
            info.size = len(content)
            archive.addfile(info, io.BytesIO(content))
    return path


@pytest.fixture
def small_cifar(tmp_path):
    """A CIFAR-10 archive with 3 images in each training batch and 2 in the test batch, and the images it holds."""
    rng = np.random.default_rng(4)
    members, images = {"batches.meta.txt": "\n".join(CIFAR.class_names).encode()}, {"train": [], "test": []}
    for n in range(1, 6):
        members[f"data_batch_{n}.bin"], batch = cifar_batch([n, n + 1, 9], rng)
        images["train"].append(batch)
    members["test_batch.bin"], batch = cifar_batch([0, 3], rng)
    images["test"].append(batch)
    raw = tmp_path / "raw"
    raw.mkdir()
    cifar_archive(raw / datasets.CIFAR_ARCHIVE, members)
    return raw, {split: np.concatenate(parts) for split, parts in images.items()}


def test_the_cifar_reader_gives_colour_images_in_height_width_channel_order(small_cifar):
    raw, expected = small_cifar
    images, labels = CIFAR.read_split(raw, "train")
    assert images.shape == (15, 32, 32, 3) and images.dtype == np.uint8
    np.testing.assert_array_equal(images, expected["train"])
    assert labels.tolist() == [1, 2, 9, 2, 3, 9, 3, 4, 9, 4, 5, 9, 5, 6, 9]
    test_images, test_labels = CIFAR.read_split(raw, "test")
    np.testing.assert_array_equal(test_images, expected["test"])
    assert inputs.scaled(test_images).shape == (2, 32, 32, 3) and test_labels.tolist() == [0, 3]


def test_a_cifar_archive_comes_from_a_local_directory_as_it_is_and_is_verified(small_cifar, tmp_path):
    raw, _ = small_cifar
    archive = raw / datasets.CIFAR_ARCHIVE
    pins = {datasets.CIFAR_ARCHIVE: datasets.Pinned(hashlib.sha256(archive.read_bytes()).hexdigest(),
                                                   archive.stat().st_size)}
    sources.download_dataset(pins, [sources.LocalDirSource(raw)], tmp_path / "delivered", timeout_seconds=10)
    assert CIFAR.read_split(tmp_path / "delivered", "test")[1].tolist() == [0, 3]
    with pytest.raises(sources.AllSourcesFailed, match="sha256"):  # the real pin does not match this archive
        sources.download_dataset(CIFAR.files, [sources.LocalDirSource(raw)], tmp_path / "real", timeout_seconds=10)


@pytest.mark.parametrize("members, message", [
    ({"test_batch.bin": b"\x00" * 3072}, "test_batch.bin has 3072 bytes, not a whole number of 3073-byte records"),
    ({"data_batch_1.bin": b"\x00" * 3073}, "cifar-10-batches-bin/test_batch.bin is missing"),
    ({"test_batch.bin": b"\x0c" + b"\x00" * 3072}, "label 12 is outside 0-9"),
])
def test_a_broken_cifar_archive_is_a_clear_error(tmp_path, members, message):
    cifar_archive(tmp_path / datasets.CIFAR_ARCHIVE, members)
    with pytest.raises(datasets.RawFormatError, match=message):
        CIFAR.read_split(tmp_path, "test")


def test_a_file_that_is_not_an_archive_is_a_clear_error(tmp_path):
    (tmp_path / datasets.CIFAR_ARCHIVE).write_bytes(b"not an archive")
    with pytest.raises(datasets.RawFormatError, match="not a readable tar.gz archive"):
        CIFAR.read_split(tmp_path, "test")
