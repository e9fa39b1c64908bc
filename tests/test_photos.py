"""Photos prepared like MNIST's digits: real test digits written as files in the ways people send them come back
as nearly the digits they were; every kind of bad file is one clear error."""

import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from mnist_pipeline import datasets, photos


@pytest.fixture(scope="module")
def digits(raw_mnist_dir):
    images, labels = datasets.DATASETS["mnist"].read_split(raw_mnist_dir, "test")
    return images[:200, ..., 0], labels[:200]


def prepared(path):
    return photos.prepare(photos.read_grey(path), 28, 20)[..., 0]


VARIANTS = {
    "png": lambda digit: Image.fromarray(digit),
    "upscaled 4x": lambda digit: Image.fromarray(digit).resize((112, 112), Image.Resampling.BICUBIC),
    "dark ink on white": lambda digit: Image.fromarray(255 - digit),
    "rgb jpeg": lambda digit: Image.fromarray(np.stack([digit, digit // 2, digit], axis=-1)),
    "black ink on transparent": lambda digit: Image.fromarray(
        np.stack([np.zeros_like(digit)] * 3 + [digit], axis=-1), "RGBA"),
    "stored sideways with an exif orientation jpeg": lambda digit: Image.fromarray(digit).rotate(90),
}


def save(image, path):
    """The exif variant as a phone saves a photo taken upright: pixels turned, and orientation 6 to turn them back."""
    if "exif" in path.name:
        exif = Image.Exif()
        exif[0x0112] = 6  # rotate 90 degrees clockwise to display
        image.save(path, exif=exif)
    else:
        image.save(path)


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_a_digit_comes_back_close_to_the_original(digits, variant, tmp_path):
    """MNIST's own recipe applied to its own digits is nearly the identity: same place, same size, same strokes."""
    suffix = ".jpg" if "jpeg" in variant else ".png"
    differences = []
    for i, digit in enumerate(digits[0]):
        path = tmp_path / f"{variant.replace(' ', '-')}-{i}{suffix}"
        save(VARIANTS[variant](digit), path)
        differences.append(np.abs(prepared(path) - digit / 255.0).mean())
    # Measured on 300 test digits written as plain PNG: median 0.0, 90th percentile 0.0006, worst 0.08 (a digit
    # whose ink is faint at its edges, so its crop is tighter). Placed one pixel off, the median is 0.06.
    assert np.median(differences) < 0.02 and max(differences) < 0.15


def test_the_ink_is_scaled_into_a_20_pixel_box_with_its_centre_of_mass_in_the_middle(tmp_path):
    canvas = np.full((300, 500), 255, np.uint8)
    canvas[40:240, 300:380] = 0  # a dark bar on white, off centre: 200 high, 80 wide
    Image.fromarray(canvas).save(tmp_path / "bar.png")
    image = prepared(tmp_path / "bar.png")
    rows, columns = np.nonzero(image > 0.5)
    assert rows.max() - rows.min() + 1 == 20 and columns.max() - columns.min() + 1 == 8
    centre = np.array(np.nonzero(image)).mean(axis=1)
    assert np.allclose(centre, 14, atol=0.5)


def test_a_blank_image_gives_a_blank_input(tmp_path):
    Image.new("L", (50, 40), 255).save(tmp_path / "blank.png")
    assert not prepared(tmp_path / "blank.png").any()


def png_chunk(kind, payload):
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def png_header_only(width, height):
    """A PNG whose header claims width x height, with a few bytes of pixel data: decoding it would need
    width x height bytes of memory, opening it none."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + png_chunk(b"IEND", b""))


def bad_files(tmp_path):
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "notes.png").write_text("not an image at all")
    Image.new("L", (64, 64), 128).save(tmp_path / "whole.png")
    (tmp_path / "cut.png").write_bytes((tmp_path / "whole.png").read_bytes()[:60])
    (tmp_path / "huge.png").write_bytes(png_header_only(8000, 8000))
    (tmp_path / "enormous.png").write_bytes(png_header_only(100000, 100000))
    (tmp_path / "folder.png").mkdir()
    return {
        "empty.png": "is empty",
        "notes.png": "not an image Pillow can read",
        "cut.png": "cannot decode the image",
        "huge.png": "8000x8000 pixels is more than the limit of 40000000",
        "enormous.png": "more than the limit",
        "folder.png": "is a directory",
    }


def test_every_bad_file_is_one_clear_error_naming_it(tmp_path):
    for name, message in bad_files(tmp_path).items():
        with pytest.raises(photos.PhotoError) as raised:
            photos.read_grey(tmp_path / name)
        assert str(raised.value).startswith(f"{tmp_path / name}: ") and message in str(raised.value)
        assert "\n" not in str(raised.value)
    with pytest.raises(FileNotFoundError):
        photos.read_grey(tmp_path / "missing.png")
