"""A folder of your own images read as prepare reads it, in-process: class folders, a given or a drawn split, every
kind of bad file either one line naming it or left out and counted, mixed image modes converted to one shape, splits
decided by each image's content, and nothing outside the folder followed or read without a limit."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import make_shapes
import numpy as np
import pytest
import yaml
from PIL import Image

from mnist_pipeline import datasets, folders, preparation, prepared

REPO = Path(__file__).resolve().parents[1]
SHAPE = (32, 32, 3)
LIMIT = 40_000_000
PREPARE = preparation.Prepare(val_fraction=0.2, seed=20260101)


def images_settings(folder, shape=SHAPE, bad_images="error", max_pixels=LIMIT, test_fraction=0.2):
    return datasets.Images(folder=str(folder), title="Shapes", image_shape=tuple(shape), test_fraction=test_fraction,
                           bad_images=bad_images, max_pixels=max_pixels)


def prepare(folder, out, **settings):
    """(description, counts, skipped, {split: (images, labels)}) of prepare run on `folder` in-process."""
    description, counts, skipped = preparation.prepare_folder(images_settings(folder, **settings), PREPARE, out)
    return description, counts, skipped, {split: prepared.load_split(out, split) for split in ("train", "val", "test")}


@pytest.fixture
def shapes(tmp_path):
    make_shapes.make(tmp_path / "images", per_class=12, size=32)
    return tmp_path / "images"


def test_class_folders_become_sorted_class_names_and_uint8_images_of_the_configured_shape(shapes, tmp_path):
    description, counts, skipped, splits = prepare(shapes, tmp_path / "out")
    assert description.class_names == ("circle", "square", "triangle") and skipped == {}
    assert sum(counts[split]["count"] for split in splits) == 36
    for images, labels in splits.values():
        assert images.dtype == np.uint8 and images.shape[1:] == SHAPE
        assert sorted(set(labels)) == [0, 1, 2]  # every class in every split
    files = sorted(p for p in shapes.rglob("*.png"))
    every = np.concatenate([images for images, _ in splits.values()])
    first = np.asarray(Image.open(files[0]))
    assert any(np.array_equal(image, first) for image in every)
    grey, _ = prepare(shapes, tmp_path / "grey", shape=(16, 16, 1))[3]["train"]
    assert grey.shape[1:] == (16, 16, 1)


def test_a_folder_with_train_and_test_gives_the_test_split(tmp_path):
    make_shapes.make(tmp_path / "images", per_class=10, size=32, split=True)
    _, counts, _, _ = prepare(tmp_path / "images", tmp_path / "out")
    assert counts["test"]["count"] == 6 and counts["train"]["count"] + counts["val"]["count"] == 24
    (tmp_path / "images" / "extra").mkdir()
    with pytest.raises(folders.FolderError, match="must hold exactly train/ and test/"):
        prepare(tmp_path / "images", tmp_path / "again")


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
    os.mkfifo(root / "circle" / "pipe.png")  # a read would wait for a writer for ever
    (root / "square" / "outside.png").symlink_to(root.parent / "elsewhere.png")
    Image.new("RGB", (32, 32), "red").save(root.parent / "elsewhere.png")
    (root / "empty").mkdir()
    (root / "README.md").write_text("a file beside the class folders")
    return {"circle/notes.txt": "unreadable", "square/cut.png": "unreadable", "triangle/huge.png":
            "over the pixel limit", "circle/copy.png": "duplicate", "triangle/mislabelled.png": "conflicting labels",
            "square/square-00001.png": "conflicting labels", "README.md": "not in a class folder",
            "circle/pipe.png": "unreadable", "square/outside.png": "a link outside the folder"}


def test_bad_files_are_left_out_counted_and_named_when_skipping(tmp_path):
    expected = bad_folder(tmp_path / "images")
    description, counts, skipped, _ = prepare(tmp_path / "images", tmp_path / "out", bad_images="skip",
                                              max_pixels=20_000_000)
    assert description.class_names == ("circle", "square", "triangle")  # the empty class folder left out
    per_class = {name: sum(counts[split]["per_class"][name] for split in counts) for name in description.class_names}
    assert per_class == {"circle": 6, "square": 5, "triangle": 6}  # square's original of the clashing copy left out
    assert skipped["files"] == len(expected) and skipped["classes"][0].startswith("empty: 0 usable image(s)")
    named = {line.split(": ")[0].removeprefix(f"{tmp_path / 'images'}/"): line for line in skipped["named"]}
    assert sorted(named) == sorted(expected)
    assert skipped["by_reason"] == {kind: list(expected.values()).count(kind) for kind in set(expected.values())}
    assert "9000x5000 pixels is more than the limit of 20000000" in named["triangle/huge.png"]
    assert "is a FIFO, not a regular file" in named["circle/pipe.png"]
    assert not (tmp_path / "out" / ".rows.npy").exists()


@pytest.mark.parametrize("make, message", [
    (lambda root: (root / "circle" / "notes.txt").write_text("hi"), "circle/notes.txt: not a PNG, JPEG"),
    (lambda root: (root / "empty").mkdir(), r"class 'empty' has 0 usable image\(s\)"),
    (lambda root: shutil.copy(root / "circle" / "circle-00000.png", root / "circle" / "zz-again.png"),
     "circle/zz-again.png: the same file as .*circle-00000.png"),
    (lambda root: (root / "square" / "etc").symlink_to("/etc"), "square/etc: a link to something outside"),
], ids=["not an image", "an empty class folder", "a duplicate", "a link out of the folder"])
def test_in_error_mode_the_first_bad_file_stops_with_one_line_naming_it(shapes, tmp_path, make, message):
    make(shapes)
    with pytest.raises(folders.FolderError, match=message) as error:
        prepare(shapes, tmp_path / "out")
    assert "\n" not in str(error.value)


def test_a_class_folder_linked_outside_the_folder_is_not_walked(shapes, tmp_path):
    (shapes / "system").symlink_to("/etc", target_is_directory=True)
    description, _, skipped, _ = prepare(shapes, tmp_path / "out", bad_images="skip")
    assert "system" not in description.class_names and skipped["files"] == 1
    assert skipped["named"][0].endswith("system: a link to something outside the folder: not followed")


def test_a_single_class_is_refused_either_way(tmp_path):
    make_shapes.make(tmp_path / "images", per_class=3, size=32)
    for name in ("square", "triangle"):
        shutil.rmtree(tmp_path / "images" / name)
    for mode in ("skip", "error"):
        with pytest.raises(folders.FolderError, match="1 class\\(es\\) with enough images; a classifier needs"):
            prepare(tmp_path / "images", tmp_path / f"out-{mode}", bad_images=mode)


def test_a_small_class_gets_an_image_in_every_split_and_one_too_small_is_named(tmp_path):
    make_shapes.make(tmp_path / "images", per_class=3, size=32)
    for path in sorted((tmp_path / "images" / "triangle").iterdir())[1:]:
        path.unlink()
    description, counts, skipped, _ = prepare(tmp_path / "images", tmp_path / "out", bad_images="skip")
    assert description.class_names == ("circle", "square")  # a class of one image cannot be split: dropped, named
    assert skipped["classes"] == ["triangle: 1 usable image(s): a class needs 3 at least (train, val, test)"]
    for split in ("train", "val", "test"):  # three images each: one in every split, not an empty validation split
        assert counts[split]["per_class"] == {"circle": 1, "square": 1}


def test_mixed_modes_are_converted_to_the_same_shape(shapes, tmp_path):
    Image.new("RGBA", (40, 20), (255, 0, 0, 128)).save(shapes / "circle" / "rgba.png")
    Image.new("P", (32, 32), 3).save(shapes / "circle" / "palette.gif")
    sixteen_bit(shapes / "square" / "sixteen.png")
    Image.new("CMYK", (32, 32), (0, 255, 255, 0)).save(shapes / "square" / "cmyk.tiff")
    Image.new("L", (64, 64), 200).save(shapes / "triangle" / "grey.jpg")
    decoded = folders.read(shapes, SHAPE, LIMIT, "error", tmp_path / "rows.npy")
    rows = np.load(tmp_path / "rows.npy")
    assert rows.shape == (41, 32, 32, 3) and decoded.kept.all() and decoded.bad == []
    sixteen = rows[[str(p) for p in decoded.scan.paths].index(str(shapes / "square" / "sixteen.png"))]
    expected = np.round((np.arange(32 * 32).reshape(32, 32) * 60) * 255 / 65535)
    np.testing.assert_allclose(sixteen[..., 0], expected, atol=1)  # 16-bit levels scaled to 8 bits, not clipped
    assert (sixteen[..., 0] == sixteen[..., 2]).all()


def split_of_each_image(folder, out):
    """{file bytes: split} of a prepared folder: which split each image landed in."""
    _, _, _, splits = prepare(folder, out)
    found = {}
    for path in sorted(folder.rglob("*.png")):
        pixels = np.asarray(Image.open(path).convert("RGB"))
        [split] = [split for split, (images, _) in splits.items() if (images == pixels).all(axis=(1, 2, 3)).any()]
        found[path.read_bytes()] = split
    return found


def test_splits_hold_still_when_a_class_is_renamed_or_another_grows(tmp_path):
    make_shapes.make(tmp_path / "images", per_class=30, size=32)
    before = split_of_each_image(tmp_path / "images", tmp_path / "first")
    os.rename(tmp_path / "images" / "circle", tmp_path / "images" / "zz-round things")
    make_shapes.make(tmp_path / "more", per_class=30, size=32, seed=5)
    for path in (tmp_path / "more" / "square").iterdir():
        shutil.copy(path, tmp_path / "images" / "square" / f"new-{path.name}")
    after = split_of_each_image(tmp_path / "images", tmp_path / "second")
    assert len(after) == len(before) + 30
    assert {content: after[content] for content in before} == before  # no image already there moved
    assert {"train", "val", "test"} == set(after.values())


def test_prepare_on_a_bad_folder_in_error_mode_stops_with_one_line_and_writes_nothing(tmp_path):
    bad_folder(tmp_path / "my images; touch x")  # a name the shell would have split, had it been in the command
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["data"]["dataset"] = "images"
    params["data"]["images"].update({"folder": "my images; touch x", "bad_images": "error"})
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    before = sorted(path.name for path in tmp_path.iterdir())
    result = subprocess.run([sys.executable, str(REPO / "stages" / "prepare.py"), "--raw", "raw",
                             "--out", "prepared", "--metrics", "data.json", "--counts", "counts.json",
                             "--timing", "t.json"],
                            cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stderr.startswith("prepare: error: my images; touch x/")
    assert sorted(path.name for path in tmp_path.iterdir()) == before

    params["data"]["images"]["bad_images"] = "skip"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    result = subprocess.run([sys.executable, str(REPO / "stages" / "prepare.py"), "--raw", "raw",
                             "--out", "prepared", "--metrics", "data.json", "--counts", "counts.json",
                             "--timing", "t.json"],
                            cwd=tmp_path, capture_output=True, text=True, check=True)
    assert "prepare: 9 file(s) left out" in result.stdout and not (tmp_path / "x").exists()
    counts = json.loads((tmp_path / "data.json").read_text())
    assert counts["skipped"]["files"] == 9 and sum(counts[s]["count"] for s in ("train", "val", "test")) == 17
    assert prepared.load_split(tmp_path / "prepared", "train")[0].dtype == np.uint8


@pytest.mark.parametrize("folder", ["/proc", "../elsewhere", "data/../../etc"])
def test_a_folder_outside_the_repository_is_one_params_error(folder):
    from mnist_pipeline.settings import ParamsError

    raw = yaml.safe_load((REPO / "params.yaml").read_text())["data"]["images"]
    with pytest.raises(ParamsError, match="is not a folder inside the repository"):
        datasets.Images.check({**raw, "folder": folder}, "data.images")
