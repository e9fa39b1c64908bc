"""Photos prepared like MNIST's digits: real test digits written as files in the ways people send them come back
as nearly the digits they were; every kind of bad file is one clear error."""

import os
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


@pytest.mark.parametrize("image", [
    Image.new("L", (50, 40), 255),
    Image.new("RGB", (50, 40), (90, 120, 200)),
    Image.new("RGBA", (50, 40), (0, 0, 0, 0)),
    Image.fromarray(np.full((40, 50), 30000, np.uint16)),
    Image.fromarray(np.random.default_rng(0).integers(120, 130, (40, 50), dtype=np.uint8)),
], ids=["blank", "uniform colour", "fully transparent", "uniform 16-bit", "faint noise"])
def test_an_image_with_no_ink_is_refused_rather_than_made_an_empty_input(image, tmp_path):
    image.save(tmp_path / "no-ink.png")
    with pytest.raises(photos.NoInkError, match="no ink found"):
        prepared(tmp_path / "no-ink.png")


def test_sixteen_bit_grey_levels_are_scaled_not_clipped(digits, tmp_path):
    digit = digits[0][0]
    Image.fromarray(digit.astype(np.uint16) * 257).save(tmp_path / "sixteen.png")
    assert Image.open(tmp_path / "sixteen.png").mode == "I;16"
    np.testing.assert_allclose(photos.read_grey(tmp_path / "sixteen.png"), digit, atol=1e-3)
    np.testing.assert_allclose(prepared(tmp_path / "sixteen.png"), digit / 255.0, atol=0.02)


def png_chunk(kind, payload):
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def png_header_only(width, height):
    """A PNG whose header claims width x height, with a few bytes of pixel data: decoding it would need
    width x height bytes of memory, opening it none."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + png_chunk(b"IEND", b""))


def odd_dds():
    """A DDS header with a pixel format Pillow's DDS decoder does not know: it raises NotImplementedError."""
    header = struct.pack("<4s7I44x", b"DDS ", 124, 0x1007, 8, 8, 0, 0, 0)
    pixel_format = struct.pack("<2I4s5I", 32, 0x4, b"XXXX", 0, 0, 0, 0, 0)
    return header + pixel_format + struct.pack("<5I", 0x1000, 0, 0, 0, 0) + bytes(256)


def bad_files(tmp_path):
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "notes.png").write_text("not an image at all")
    Image.new("L", (64, 64), 128).save(tmp_path / "whole.png")
    (tmp_path / "cut.png").write_bytes((tmp_path / "whole.png").read_bytes()[:60])
    (tmp_path / "huge.png").write_bytes(png_header_only(8000, 8000))
    (tmp_path / "enormous.png").write_bytes(png_header_only(100000, 100000))
    (tmp_path / "folder.png").mkdir()
    Image.new("RGB", (8, 8), "red").save(tmp_path / "texture.dds")
    (tmp_path / "odd.dds").write_bytes(odd_dds())
    Image.fromarray(np.zeros((8, 8), np.float32), "F").save(tmp_path / "scan.spi", format="SPIDER")
    os.mkfifo(tmp_path / "pipe.png")  # a read would wait for a writer for ever
    (tmp_path / "link.png").symlink_to(tmp_path / "pipe.png")
    return {
        "pipe.png": "is a FIFO, not a regular file",
        "link.png": "is a FIFO, not a regular file",
        "empty.png": "is empty",
        "notes.png": "not a PNG, JPEG, GIF, BMP, TIFF or WebP image",
        "texture.dds": "not a PNG, JPEG, GIF, BMP, TIFF or WebP image",
        "odd.dds": "not a PNG, JPEG, GIF, BMP, TIFF or WebP image",
        "scan.spi": "not a PNG, JPEG, GIF, BMP, TIFF or WebP image",
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


def page_with_marks(marks, size=(1500, 2000)):
    """A white page (a scan at about 200 dpi) with dark square marks (row, column, side)."""
    page = np.full(size, 255, np.uint8)
    for row, column, side in marks:
        page[row:row + side, column:column + side] = 20
    return page


@pytest.mark.parametrize("marks, message", [
    ([(5, 5, 5), (1490, 1990, 5)], r"only 2 speck\(s\) of dust"),
    ([(750, 1000, 5)], r"only 1 speck\(s\) of dust"),
    ([(5, 5, 20), (1470, 1970, 20)], "too thin or too faint to survive scaling"),
], ids=["two specks in opposite corners", "one speck in the middle", "two blots far apart"])
def test_a_blank_page_with_dust_is_not_classified(tmp_path, marks, message):
    Image.fromarray(page_with_marks(marks)).save(tmp_path / "dust.png")
    with pytest.raises(photos.NoInkError, match=message):
        prepared(tmp_path / "dust.png")


def test_a_digit_on_a_dusty_page_is_cropped_to_the_digit_not_to_the_dust(digits, tmp_path):
    digit = digits[0][0]
    page = page_with_marks([(5, 5, 4), (1490, 1990, 4)])
    page[600:712, 900:1012] = 255 - np.asarray(Image.fromarray(digit).resize((112, 112)))
    Image.fromarray(page).save(tmp_path / "digit.png")
    assert np.abs(prepared(tmp_path / "digit.png") - digit / 255.0).mean() < 0.03


@pytest.mark.parametrize("image", [Image.new("RGB", (40, 40), "white"), Image.new("RGB", (40, 40), "black"),
                                   Image.new("RGB", (40, 40), (30, 120, 200)),
                                   Image.fromarray(page_with_marks([(5, 5, 5), (1490, 1990, 5)]))],
                         ids=["white", "black", "one colour", "a dusty page"])
def test_for_a_folder_model_a_uniform_image_is_nothing_to_classify(image):
    pixels = photos.to_pixels(image, (32, 32, 3))
    with pytest.raises(photos.NoInkError, match="nothing to classify: the image is uniform"):
        photos.check_content(pixels)
