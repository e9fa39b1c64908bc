"""The predict command as a user runs it: a subprocess on real files, text or JSON out, one error line per bad file."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import start_runtime
from PIL import Image

from mnist_pipeline import datasets, model_files

start_runtime()
import smoke  # noqa: E402
from test_photos import bad_files  # noqa: E402

from mnist_pipeline import baseline_model, export  # noqa: E402

PREDICT = Path(sys.executable).with_name("mnist-predict")  # the entry point pyproject.toml declares


def build_and_save(directory, dataset):
    description = datasets.DATASETS[dataset].describe()
    settings = baseline_model.Baseline(conv_filters=(4,), kernel_size=3, dense_units=8, dropout=0.0,
                                       learning_rate=0.001)
    model = baseline_model.build_baseline(settings, description)
    model_files.save(directory, model, description)
    return model


@pytest.fixture(scope="module")
def tflite(tmp_path_factory):
    """An untrained Fashion-MNIST model as a float32 .tflite, with its dataset description beside it as export
    writes it. (The pipeline tests run predict on trained models, in Keras and as int8.)"""
    root = tmp_path_factory.mktemp("predict")
    model = build_and_save(root / "model", "fashion_mnist")
    (root / "export").mkdir()
    with export.fresh_saved_model(model, root / "serving") as saved_model:
        (root / "export" / "float32.tflite").write_bytes(export.tflite_float32(saved_model))
    model_files.describe(root / "export", datasets.DATASETS["fashion_mnist"].describe(), ["float32.tflite"])
    return root / "export" / "float32.tflite"


def predict(*args, env=None):
    return subprocess.run([str(PREDICT), *map(str, args)], capture_output=True, text=True, env=env)


def a_shirt(path):
    image = np.full((60, 40), 255, np.uint8)
    image[10:50, 5:35] = 30
    Image.fromarray(image).save(path)
    return path


def test_each_bad_file_gets_one_line_and_the_good_ones_are_still_predicted(tflite, tmp_path):
    bad = bad_files(tmp_path)
    good = [a_shirt(tmp_path / "first.png"), a_shirt(tmp_path / "second.jpg")]
    files = [good[0], *(tmp_path / name for name in bad), tmp_path / "missing.png", good[1]]
    result = predict("--model", tflite, *files)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == [str(path) for path in good]
    names = datasets.DATASETS["fashion_mnist"].class_names
    assert all(line.split(": ", 1)[1].split(" (")[0] in names and "top 3: " in line for line in lines)
    errors = result.stderr.strip().splitlines()
    assert len(errors) == len(bad) + 1
    for name, message in [*bad.items(), ("missing.png", "No such file or directory")]:
        assert f"mnist-predict: error: {tmp_path / name}: " in result.stderr and message in result.stderr


def test_json_lists_every_file_in_order_with_its_top_classes_or_its_error(tflite, tmp_path):
    shirt = a_shirt(tmp_path / "shirt.png")
    (tmp_path / "empty.png").write_bytes(b"")
    result = predict("--json", "--top", "5", "--model", tflite, shirt, tmp_path / "empty.png")
    assert result.returncode == 1
    predicted, failed = json.loads(result.stdout)
    assert predicted["file"] == str(shirt) and len(predicted["top"]) == 5
    assert predicted["label"] == predicted["top"][0]["label"]
    probabilities = [entry["probability"] for entry in predicted["top"]]
    assert probabilities == sorted(probabilities, reverse=True) and sum(probabilities) <= 1.0001
    assert failed == {"file": str(tmp_path / "empty.png"), "error": f"{tmp_path / 'empty.png'}: is empty"}


def test_all_good_files_exit_zero(tflite, tmp_path):
    result = predict("--model", tflite, a_shirt(tmp_path / "shirt.png"))
    assert result.returncode == 0 and result.stderr == ""


def test_a_model_that_cannot_be_used_is_one_error_line(tmp_path):
    build_and_save(tmp_path / "cifar", "cifar10")
    a_shirt(tmp_path / "shirt.png")
    for model, message in ((tmp_path / "cifar", "trained on CIFAR-10; predict prepares photos only for"),
                           (tmp_path, "is not a model directory: it has no model.json"),
                           (tmp_path / "missing.tflite", "missing.tflite: no such file or directory")):
        result = predict("--model", model, tmp_path / "shirt.png")
        assert result.returncode == 1 and result.stdout == ""
        assert result.stderr.startswith("mnist-predict: error: ") and message in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1


def test_names_with_control_characters_or_undecodable_bytes_print_escaped_under_a_strict_encoding(tflite, tmp_path):
    folder = os.fsencode(tmp_path)
    odd = [folder + b"/caf\xe9-latin1.png", folder + "/line\nbreak-\x1b[31m-zwölf.png".encode()]
    for name in odd:
        a_shirt(os.fsdecode(name))
    env = {**smoke.environment(), "PYTHONIOENCODING": "ascii:strict"}
    result = predict("--model", tflite, *map(os.fsdecode, odd), tmp_path / "gone\x07.png", env=env)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    lines = result.stdout.splitlines()
    assert [line.split(": ")[0] for line in lines] == [f"{tmp_path}/caf\\xe9-latin1.png",
                                                       f"{tmp_path}/line\\nbreak-\\x1b[31m-zw\\xf6lf.png"]
    assert result.stderr == f"mnist-predict: error: {tmp_path}/gone\\x07.png: No such file or directory\n"
    rows = json.loads(predict("--json", "--model", tflite, *map(os.fsdecode, odd), env=env).stdout)
    assert [row["file"] for row in rows] == [f"{tmp_path}/caf\\xe9-latin1.png",
                                             f"{tmp_path}/line\\nbreak-\\x1b[31m-zwölf.png"]


def test_an_image_with_no_ink_is_reported_as_such_and_not_classified(tflite, tmp_path):
    Image.new("RGBA", (30, 30), (0, 0, 0, 0)).save(tmp_path / "transparent.png")
    shirt = a_shirt(tmp_path / "shirt.png")
    result = predict("--model", tflite, tmp_path / "transparent.png", shirt)
    assert result.returncode == 1 and result.stderr == ""
    blank, answered = result.stdout.splitlines()
    assert blank.startswith(f"{tmp_path / 'transparent.png'}: not classified: no ink found")
    assert answered.startswith(f"{shirt}: ")
    rows = json.loads(predict("--json", "--model", tflite, tmp_path / "transparent.png").stdout)
    assert rows == [{"file": str(tmp_path / "transparent.png"), "no_ink": rows[0]["no_ink"]}]
    assert rows[0]["no_ink"].startswith("no ink found")


def test_a_broken_dataset_json_beside_the_model_is_one_line(tflite, tmp_path):
    export_dir = tmp_path / "export"
    export_dir.mkdir()
    (export_dir / "float32.tflite").write_bytes(tflite.read_bytes())
    (export_dir / "dataset.json").write_text('{"name": "fashion_mnist", "title": ')
    result = predict("--model", export_dir / "float32.tflite", a_shirt(tmp_path / "shirt.png"))
    assert result.returncode == 1 and result.stdout == ""
    expected = rf"mnist-predict: error: {re.escape(str(export_dir))}/dataset.json: not JSON \(.*\)\n"
    assert re.fullmatch(expected, result.stderr)
