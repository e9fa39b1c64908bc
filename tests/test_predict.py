"""The predict command as a user runs it: a subprocess on real files, text or JSON out, one error line per bad file."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mnist_pipeline import data, datasets, model_files, runtime

runtime.configure(seed=1, threads=2, deterministic=True)
from mnist_pipeline import export, models  # noqa: E402

from test_photos import bad_files  # noqa: E402

PREDICT = Path(__file__).resolve().parents[1] / "stages" / "predict.py"


def build_and_save(directory, dataset):
    description = data.describe(datasets.DATASETS[dataset])
    model = models.build_baseline_model([4], 3, 8, 0.0, 0.001, image_shape=description.image_shape,
                                        num_classes=description.num_classes)
    model_files.save(directory, model, description)
    return model


@pytest.fixture(scope="module")
def tflite(tmp_path_factory):
    """An untrained Fashion-MNIST model as a float32 .tflite, with its dataset description beside it as export
    writes it. (The pipeline tests run predict on trained models, in Keras and as int8.)"""
    root = tmp_path_factory.mktemp("predict")
    model = build_and_save(root / "model", "fashion_mnist")
    export.write_saved_model(model, root / "serving")
    (root / "export").mkdir()
    (root / "export" / "float32.tflite").write_bytes(export.tflite_float32(root / "serving"))
    data.save_description(root / "export", data.describe(datasets.DATASETS["fashion_mnist"]))
    return root / "export" / "float32.tflite"


def predict(*args):
    """The command's result, less the one line LiteRT's runtime prints on its own ("INFO: Created TensorFlow Lite
    XNNPACK delegate for CPU.")."""
    result = subprocess.run([sys.executable, str(PREDICT), *map(str, args)], capture_output=True, text=True)
    result.stderr = "".join(line for line in result.stderr.splitlines(keepends=True) if not line.startswith("INFO: "))
    return result


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
        assert f"predict: error: {tmp_path / name}: " in result.stderr and message in result.stderr


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
                           (tmp_path, "no dataset.json"),
                           (tmp_path / "missing.tflite", "missing.tflite: no such file or directory")):
        result = predict("--model", model, tmp_path / "shirt.png")
        assert result.returncode == 1 and result.stdout == ""
        assert result.stderr.startswith("predict: error: ") and message in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
