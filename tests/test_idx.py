import struct

import numpy as np
import pytest

from mnist_pipeline import datasets, idx


def sample_images(count=3):
    return np.arange(count * 28 * 28, dtype=np.uint8).reshape(count, 28, 28)


def test_round_trip_images_and_labels():
    images, labels = sample_images(), np.array([0, 9, 4], dtype=np.uint8)
    np.testing.assert_array_equal(idx.parse_images(idx.encode_images(images)), images)
    np.testing.assert_array_equal(idx.parse_labels(idx.encode_labels(labels)), labels)


def test_header_is_big_endian_with_the_standard_magic_numbers():
    encoded = idx.encode_labels(np.array([7], dtype=np.uint8))
    assert encoded[:8] == bytes([0, 0, 8, 1, 0, 0, 0, 1])


@pytest.mark.parametrize("parse, encoded, message", [
    (idx.parse_images, idx.encode_labels(np.zeros(4, np.uint8)), "magic number 2049, expected 2051"),
    (idx.parse_labels, idx.encode_images(sample_images()), "magic number 2051, expected 2049"),
    (idx.parse_images, idx.encode_images(sample_images())[:-1], "truncated"),
    (idx.parse_images, idx.encode_images(sample_images()) + b"\0", "trailing bytes"),
    (idx.parse_labels, b"\0\0\x08", "shorter than the 8-byte IDX header"),
])
def test_malformed_files_are_rejected_with_the_reason(parse, encoded, message):
    with pytest.raises(idx.IdxFormatError, match=message) as error:
        parse(encoded, "some-file")
    assert "some-file" in str(error.value)


MNIST = datasets.DATASETS["mnist"]


def write_raw_train(directory, images, labels):
    images_name, labels_name = datasets.IDX_FILES["train"]
    (directory / images_name).write_bytes(idx.encode_images(images))
    (directory / labels_name).write_bytes(idx.encode_labels(labels))


def test_image_and_label_counts_must_agree(tmp_path):
    write_raw_train(tmp_path, sample_images(3), np.array([1, 2], dtype=np.uint8))
    with pytest.raises(datasets.RawFormatError, match="MNIST train: 3 images but 2 labels"):
        MNIST.read_split(tmp_path, "train")


def test_images_must_be_28_by_28(tmp_path):
    write_raw_train(tmp_path, np.zeros((2, 27, 28), np.uint8), np.array([1, 2], dtype=np.uint8))
    with pytest.raises(datasets.RawFormatError, match="images are 27x28x1, expected 28x28x1"):
        MNIST.read_split(tmp_path, "train")


def test_labels_must_be_digits(tmp_path):
    write_raw_train(tmp_path, sample_images(2), np.array([1, 12], dtype=np.uint8))
    with pytest.raises(datasets.RawFormatError, match="label 12 is outside 0-9"):
        MNIST.read_split(tmp_path, "train")


def test_header_dimensions_too_large_to_multiply_are_a_format_error():
    # 2**22 * 2**21 * 2**21 = 2**64: a 64-bit product wraps to 0 and would match this header-only file.
    huge = struct.pack(">4I", idx.IMAGES_MAGIC, 2**22, 2**21, 2**21)
    with pytest.raises(idx.IdxFormatError, match="truncated: header promises 4194304x2097152x2097152 values"):
        idx.parse_images(huge, "huge")
