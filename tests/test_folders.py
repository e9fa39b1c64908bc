"""A folder of your own images read as prepare reads it: class folders, a given or a drawn split, every kind of bad
file either one line naming it or left out and counted, and mixed image modes converted to one shape."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import make_shapes
import numpy as np
import pytest
import yaml
from PIL import Image

from mnist_pipeline import folders

REPO = Path(__file__).resolve().parents[1]
SHAPE = (32, 32, 3)
LIMIT = 40_000_000


@pytest.fixture
def shapes(tmp_path):
    make_shapes.make(tmp_path / "images", per_class=6, size=32)
    return tmp_path / "images"


def test_class_folders_become_sorted_class_names_and_uint8_images_of_the_configured_shape(shapes):
    found = folders.read(shapes, SHAPE, LIMIT, "error")
    assert found.class_names == ("circle", "square", "triangle") and found.skipped == {}
    images, labels = found.splits["train"]
    assert images.dtype == np.uint8 and images.shape == (18, 32, 32, 3) and list(found.splits) == ["train"]
    assert list(np.bincount(labels)) == [6, 6, 6]
    first = np.asarray(Image.open(shapes / "circle" / "circle-00000.png"))
    np.testing.assert_array_equal(images[0], first)
    grey = folders.read(shapes, (16, 16, 1), LIMIT, "error").splits["train"][0]
    assert grey.shape == (18, 16, 16, 1)


def test_a_folder_with_train_and_test_gives_the_split(tmp_path):
    make_shapes.make(tmp_path / "images", per_class=10, size=32, split=True)
    found = folders.read(tmp_path / "images", SHAPE, LIMIT, "error")
    assert [len(found.splits[split][1]) for split in ("train", "test")] == [24, 6]
    (tmp_path / "images" / "extra").mkdir()
    with pytest.raises(folders.FolderError, match="must hold exactly train/ and test/"):
        folders.read(tmp_path / "images", SHAPE, LIMIT, "error")


def sixteen_bit(path):
    Image.fromarray((np.arange(32 * 32).reshape(32, 32) * 60).astype(np.uint16)).save(path)


def bad_folder(root):
    """The shapes folder with one of each bad thing added, and the reason each is named for."""
    make_shapes.make(root, per_class=6, size=32)
    (root / "circle" / "notes.txt").write_text("not an image")
    (root / "square" / "cut.png").write_bytes((root / "square" / "square-00000.png").read_bytes()[:80])
    Image.new("L", (9000, 5000)).save(root / "triangle" / "huge.png")
    shutil.copy(root / "circle" / "circle-00001.png", root / "circle" / "copy.png")
    shutil.copy(root / "square" / "square-00001.png", root / "triangle" / "mislabelled.png")
    (root / "empty").mkdir()
    (root / "README.md").write_text("a file beside the class folders")
    return {"circle/notes.txt": "unreadable", "square/cut.png": "unreadable", "triangle/huge.png":
            "over the pixel limit", "circle/copy.png": "duplicate", "triangle/mislabelled.png": "conflicting labels",
            "square/square-00001.png": "conflicting labels", "README.md": "not in a class folder"}


def test_bad_files_are_left_out_counted_and_named_when_skipping(tmp_path):
    expected = bad_folder(tmp_path / "images")
    found = folders.read(tmp_path / "images", SHAPE, 20_000_000, "skip")
    assert found.class_names == ("circle", "square", "triangle")  # the empty class folder left out
    assert list(np.bincount(found.splits["train"][1])) == [6, 5, 6]  # square's original of the clashing copy left out
    assert found.skipped["files"] == len(expected) and found.skipped["classes"] == ["empty"]
    named = {line.split(": ")[0].removeprefix(f"{tmp_path / 'images'}/"): line for line in found.skipped["named"]}
    assert sorted(named) == sorted(expected)
    assert found.skipped["by_reason"] == {kind: list(expected.values()).count(kind) for kind in set(expected.values())}
    assert "9000x5000 pixels is more than the limit of 20000000" in named["triangle/huge.png"]


@pytest.mark.parametrize("make, message", [
    (lambda root: (root / "circle" / "notes.txt").write_text("hi"), "circle/notes.txt: not a PNG, JPEG"),
    (lambda root: (root / "empty").mkdir(), "empty: no images of class 'empty' to train on"),
    (lambda root: shutil.copy(root / "circle" / "circle-00000.png", root / "circle" / "zz-again.png"),
     "circle/zz-again.png: the same file as .*circle-00000.png"),
], ids=["not an image", "an empty class folder", "a duplicate"])
def test_in_error_mode_the_first_bad_file_stops_with_one_line_naming_it(shapes, make, message):
    make(shapes)
    with pytest.raises(folders.FolderError, match=message) as error:
        folders.read(shapes, SHAPE, LIMIT, "error")
    assert "\n" not in str(error.value)


def test_a_single_class_is_refused_either_way(tmp_path):
    make_shapes.make(tmp_path / "images", per_class=3, size=32)
    for name in ("square", "triangle"):
        shutil.rmtree(tmp_path / "images" / name)
    for mode in ("skip", "error"):
        with pytest.raises(folders.FolderError, match="1 class\\(es\\) with images; a classifier needs at least 2"):
            folders.read(tmp_path / "images", SHAPE, LIMIT, mode)


def test_mixed_modes_are_converted_to_the_same_shape(shapes):
    Image.new("RGBA", (40, 20), (255, 0, 0, 128)).save(shapes / "circle" / "rgba.png")
    Image.new("P", (32, 32), 3).save(shapes / "circle" / "palette.gif")
    sixteen_bit(shapes / "square" / "sixteen.png")
    Image.new("CMYK", (32, 32), (0, 255, 255, 0)).save(shapes / "square" / "cmyk.tiff")
    Image.new("L", (64, 64), 200).save(shapes / "triangle" / "grey.jpg")
    images, labels = folders.read(shapes, SHAPE, LIMIT, "error").splits["train"]
    assert images.shape == (23, 32, 32, 3) and folders.read(shapes, SHAPE, LIMIT, "error").skipped == {}
    files = sorted(path.relative_to(shapes) for path in shapes.rglob("*.*"))
    sixteen = images[files.index(Path("square/sixteen.png"))]
    expected = np.round((np.arange(32 * 32).reshape(32, 32) * 60) * 255 / 65535)
    np.testing.assert_allclose(sixteen[..., 0], expected, atol=1)  # 16-bit levels scaled to 8 bits, not clipped
    assert (sixteen[..., 0] == sixteen[..., 2]).all()
    grey = folders.read(shapes, (32, 32, 1), LIMIT, "error").splits["train"][0]
    assert grey.shape == (23, 32, 32, 1)


def test_prepare_on_a_bad_folder_in_error_mode_stops_with_one_line_and_writes_nothing(tmp_path):
    bad_folder(tmp_path / "images")
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["data"]["dataset"] = "images"
    params["data"]["images"].update({"folder": "images", "bad_images": "error"})
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    before = sorted(path.name for path in tmp_path.iterdir())
    result = subprocess.run([sys.executable, str(REPO / "stages" / "prepare.py"), "--raw", "raw",
                             "--out", "prepared", "--metrics", "data.json", "--timing", "t.json"],
                            cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and result.stderr.startswith("prepare: error: images/")
    assert sorted(path.name for path in tmp_path.iterdir()) == before

    params["data"]["images"]["bad_images"] = "skip"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    result = subprocess.run([sys.executable, str(REPO / "stages" / "prepare.py"), "--raw", "raw",
                             "--out", "prepared", "--metrics", "data.json", "--timing", "t.json"],
                            cwd=tmp_path, capture_output=True, text=True, check=True)
    assert "prepare: 7 file(s) left out" in result.stdout
    counts = json.loads((tmp_path / "data.json").read_text())
    assert counts["skipped"]["files"] == 7 and sum(counts[s]["count"] for s in ("train", "val", "test")) == 17
    assert np.load(tmp_path / "prepared" / "train.npz")["x"].dtype == np.uint8
