"""Model directories: saved byte-stably, loaded without params.yaml, and nothing executable loaded from them."""

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import h5py
import keras
import numpy as np
import pytest
import smoke
from helpers import start_runtime
from PIL import Image

from mnist_pipeline import model_files, model_loading, outputs, prepared
from mnist_pipeline.errors import PipelineError

start_runtime()
from mnist_pipeline import baseline_model, cnn  # noqa: E402

PREDICT = Path(sys.executable).with_name("mnist-predict")  # the entry point pyproject.toml declares

DESCRIPTION = prepared.Description("mnist", "MNIST", (28, 28, 1), tuple(str(d) for d in range(10)))
HP = {"batch_norm": True, "conv1_filters": 8, "conv1_kernel": 3, "conv2_filters": 8, "conv2_kernel": 3,
      "extra_conv": True, "conv3_filters": 8, "conv3_kernel": 3, "dense_units": 16, "dropout": 0.1,
      "learning_rate": 0.001}


@pytest.mark.parametrize("build", [
    lambda: cnn.build_from_description(HP, DESCRIPTION),
    lambda: baseline_model.build_baseline(baseline_model.Baseline(conv_filters=(8, 16), kernel_size=3, dense_units=16,
                                                                  dropout=0.2, learning_rate=0.001), DESCRIPTION),
], ids=["tuned", "baseline"])
def test_a_saved_model_loads_without_its_builder_and_predicts_the_same(tmp_path, build):
    model = build()
    images = np.random.default_rng(0).random((16, 28, 28, 1), dtype=np.float32)
    model_files.save(tmp_path / "model", model, DESCRIPTION)
    loaded, description = model_loading.load(tmp_path / "model")
    assert description == DESCRIPTION
    # Keras' own layers: the project's BatchNormalization only trains differently, and is saved as Keras' own.
    assert [type(layer).__name__ for layer in loaded.layers] == [type(layer).__name__ for layer in model.layers]
    assert {type(layer).__module__.split(".")[0] for layer in loaded.layers} == {"keras"}
    np.testing.assert_array_equal(loaded.predict(images, verbose=0), model.predict(images, verbose=0))
    assert "compile_config" not in (tmp_path / "model" / model_files.ARCHITECTURE_FILE).read_text()


def test_saving_the_same_model_twice_gives_the_same_bytes(tmp_path):
    model = cnn.build_from_description(HP, DESCRIPTION)
    for name in ("a", "b"):
        model_files.save(tmp_path / name, model, DESCRIPTION)
    for file in (model_files.ARCHITECTURE_FILE, model_files.WEIGHTS_FILE, prepared.DESCRIPTION_FILE):
        assert (tmp_path / "a" / file).read_bytes() == (tmp_path / "b" / file).read_bytes()


def test_an_architecture_that_would_run_code_is_refused(tmp_path):
    """A model directory from elsewhere whose architecture holds a Lambda layer, i.e. Python bytecode."""
    model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Lambda(lambda x: x * 2), keras.layers.Flatten(),
                              keras.layers.Dense(10)])
    (tmp_path / "model").mkdir()
    outputs.write_json(tmp_path / "model" / model_files.ARCHITECTURE_FILE, keras.saving.serialize_keras_object(model))
    model.save_weights(tmp_path / "model" / model_files.WEIGHTS_FILE)
    # Its dataset.json records the files' hashes as the project's own do: only safe mode stands in the way.
    model_files.describe(tmp_path / "model", DESCRIPTION, [model_files.ARCHITECTURE_FILE, model_files.WEIGHTS_FILE])
    with pytest.raises(model_loading.ModelFileError, match="model.json: cannot build the model: .*safe_mode"):
        model_loading.load(tmp_path / "model")


def test_a_directory_without_a_model_is_one_clear_error(tmp_path):
    with pytest.raises(model_loading.ModelFileError, match="is not a model directory: it has no model.json"):
        model_loading.load(tmp_path)
    (tmp_path / model_files.ARCHITECTURE_FILE).write_text("{not json")
    with pytest.raises(model_loading.ModelFileError, match="no dataset.json"):
        model_loading.load(tmp_path)


def test_a_model_trained_on_other_data_is_refused_where_data_is_given(tmp_path):
    model_files.save(tmp_path / "model", cnn.build_from_description(HP, DESCRIPTION), DESCRIPTION)
    fashion = DESCRIPTION._replace(name="fashion_mnist", title="Fashion-MNIST")
    with pytest.raises(model_loading.ModelFileError, match="was trained on MNIST .* not on Fashion-MNIST"):
        model_loading.load(tmp_path / "model", expected=fashion)
    assert model_loading.load(tmp_path / "model", expected=DESCRIPTION)[1] == DESCRIPTION


TRAIN_AND_SAVE = """
import json, sys
import numpy as np
from mnist_pipeline import model_files, prepared, runtime
runtime.start(runtime.Runtime(threads=2, deterministic=True, precision=sys.argv[2], backend=sys.argv[4]))
runtime.seed(3)
from mnist_pipeline import cnn
description = prepared.Description("mnist", "MNIST", (28, 28, 1), tuple(str(d) for d in range(10)))
model = cnn.build_from_description(json.loads(sys.argv[3]), description)
rng = np.random.default_rng(0)
model.fit(rng.random((256, 28, 28, 1), dtype=np.float32), rng.integers(0, 10, 256), batch_size=64, verbose=0)
model_files.save(sys.argv[1], model, description)
probe = np.random.default_rng(1).random((32, 28, 28, 1), dtype=np.float32)
np.save(sys.argv[1] + ".npy", model.predict(probe, verbose=0))
print(model.layers[0].compute_dtype)
"""


def train_in_a_fresh_process(directory, precision, backend="tensorflow") -> str:
    """Train a small CNN one epoch with runtime.precision `precision` on `backend`, save it, and its predictions on
    32 random images (seed 1) as `directory`.npy; the compute dtype it trained in."""
    result = subprocess.run([sys.executable, "-c", TRAIN_AND_SAVE, str(directory), precision, json.dumps(HP),
                             backend], env=smoke.environment(), capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout.split()[-1]


def model_bytes(directory):
    return [(Path(directory) / f).read_bytes() for f in (model_files.ARCHITECTURE_FILE, model_files.WEIGHTS_FILE)]


@pytest.mark.pipeline  # trains in three fresh processes
def test_mixed_bfloat16_training_repeats_to_the_same_bytes_and_saves_a_float32_model(tmp_path):
    assert train_in_a_fresh_process(tmp_path / "bf16-a", "mixed_bfloat16") == "bfloat16"
    assert train_in_a_fresh_process(tmp_path / "bf16-b", "mixed_bfloat16") == "bfloat16"
    assert train_in_a_fresh_process(tmp_path / "fp32", "float32") == "float32"

    assert model_bytes(tmp_path / "bf16-a") == model_bytes(tmp_path / "bf16-b")
    # The same architecture file whichever precision trained it; the weights differ, as the arithmetic did.
    bf16, fp32 = model_bytes(tmp_path / "bf16-a"), model_bytes(tmp_path / "fp32")
    assert bf16[0] == fp32[0] and bf16[1] != fp32[1]
    loaded, _ = model_loading.load(tmp_path / "bf16-a")
    assert {layer.dtype_policy.name for layer in loaded.layers} == {"float32"}


@pytest.mark.pipeline  # trains in a fresh process
def test_a_model_trained_under_jax_runs_on_tensorflow_with_the_same_predictions(tmp_path):
    pytest.importorskip("jax", reason="the JAX backend is optional: make setup-jax")
    train_in_a_fresh_process(tmp_path / "jax", "float32", backend="jax")  # its reruns: test_backends.py

    # This process runs TensorFlow: the files JAX wrote give JAX's predictions here.
    loaded, _ = model_loading.load(tmp_path / "jax")
    probe = np.random.default_rng(1).random((32, 28, 28, 1), dtype=np.float32)  # as the training script drew it
    np.testing.assert_allclose(loaded.predict(probe, verbose=0), np.load(tmp_path / "jax.npy"), atol=1e-5)


def test_the_weights_file_holds_the_layers_weights_only_with_the_trained_values(tmp_path):
    model = cnn.build_from_description(HP, DESCRIPTION)
    rng = np.random.default_rng(0)
    model.fit(rng.random((64, 28, 28, 1), dtype=np.float32), rng.integers(0, 10, 64), batch_size=32, verbose=0)
    model_files.save(tmp_path / "model", model, DESCRIPTION)
    with h5py.File(tmp_path / "model" / model_files.WEIGHTS_FILE) as weights:
        assert "optimizer" not in weights  # Adam's two moments would triple the file
    loaded, _ = model_loading.load(tmp_path / "model")
    for saved, trained in zip(loaded.get_weights(), model.get_weights(), strict=True):
        np.testing.assert_array_equal(saved, trained)


SERVE_AND_WRITE = """
import sys
import tensorflow as tf

class Planted(tf.Module):
    @tf.function(input_signature=[tf.TensorSpec([None, 28, 28, 1], tf.float32)])
    def serve(self, images):
        tf.io.write_file(sys.argv[2], "the graph ran")
        return tf.ones([tf.shape(images)[0], 10]) / 10

module = Planted()
tf.saved_model.save(module, sys.argv[1], signatures={"serving_default": module.serve})
"""


@pytest.fixture
def planted(tmp_path):
    """A real model directory into which a SavedModel was planted whose graph writes a file when it runs."""
    model_files.save(tmp_path / "model", cnn.build_from_description(HP, DESCRIPTION), DESCRIPTION)
    marker = tmp_path / "written-by-the-graph"
    subprocess.run([sys.executable, "-c", SERVE_AND_WRITE, str(tmp_path / "model"), str(marker)], check=True,
                   env=smoke.environment(), capture_output=True)
    assert (tmp_path / "model" / "saved_model.pb").is_file() and not marker.exists()
    return tmp_path / "model", marker


def test_a_directory_holding_a_saved_model_is_refused_and_its_graph_never_runs(planted, tmp_path):
    directory, marker = planted
    with pytest.raises(model_loading.ModelFileError, match="holds a SavedModel .* refused"):
        model_loading.load(directory)
    digit = np.zeros((28, 28), np.uint8)
    digit[6:22, 12:16] = 255
    Image.fromarray(digit).save(tmp_path / "one.png")
    result = subprocess.run([str(PREDICT), "--model", str(directory), str(tmp_path / "one.png")],
                            capture_output=True, text=True)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr == (f"mnist-predict: error: {directory} holds a SavedModel (saved_model.pb), whose graph "
                             "may run any code when loaded: refused; give a model directory (model.json) or a "
                             ".tflite file\n")
    assert not marker.exists()


@pytest.fixture
def saved(tmp_path):
    model_files.save(tmp_path / "model", cnn.build_from_description(HP, DESCRIPTION), DESCRIPTION)
    return tmp_path / "model"


def rewrite_description(directory, **fields):
    path = directory / prepared.DESCRIPTION_FILE
    path.write_text(json.dumps({**json.loads(path.read_text()), **fields}))


@pytest.mark.parametrize("name, replacement", [("model.weights.h5", "a FIFO"), ("dataset.json", "/dev/zero"),
                                               ("model.json", "/proc/self/status")])
def test_model_files_that_are_fifos_or_devices_are_one_line_not_a_hang(saved, name, replacement):
    (saved / name).unlink()
    if replacement == "a FIFO":
        os.mkfifo(saved / name)
    else:
        (saved / name).symlink_to(replacement)
    start = time.monotonic()
    with pytest.raises(PipelineError, match=re.escape(str(saved / name))) as error:
        model_loading.load(saved)
    assert "\n" not in str(error.value) and time.monotonic() - start < 10


@pytest.mark.parametrize("damage, message", [
    (lambda d: (d / "dataset.json").write_text("{'name': 'mnist'"), r"dataset.json: not JSON \(Expecting property"),
    (lambda d: rewrite_description(d, class_names=None), r"dataset.json: class_names: expected a list of at least 2"),
    (lambda d: (d / "dataset.json").write_text('{"name": "mnist"}'), "dataset.json: no title"),
    (lambda d: rewrite_description(d, image_shape=[28, 28]), r"dataset.json: image_shape: expected \[height, width"),
    (lambda d: model_files.describe(d, DESCRIPTION._replace(class_names=("a", "b", "c")),
                                    [model_files.ARCHITECTURE_FILE, model_files.WEIGHTS_FILE]),
     "model: the network scores 10 classes, but its dataset.json names 3"),
    (lambda d: model_files.describe(d, DESCRIPTION._replace(image_shape=(32, 32, 3)),
                                    [model_files.ARCHITECTURE_FILE, model_files.WEIGHTS_FILE]),
     "model: the network takes 28x28x1 images, but its dataset.json describes 32x32x3 ones"),
    (lambda d: (d / model_files.WEIGHTS_FILE).write_bytes((d / model_files.WEIGHTS_FILE).read_bytes()[:5000]),
     r"model.weights.h5: not the file .*dataset.json records \(its sha256 differs\)"),
    (lambda d: prepared.save_description(d, DESCRIPTION._replace(name="fashion_mnist", title="Fashion-MNIST")),
     "dataset.json does not describe model.json .*: it belongs to another model"),
], ids=["not JSON", "class names missing", "a field missing", "a 2-d shape", "3 classes for a 10-way output",
        "a shape the network does not take", "a truncated weights file", "another dataset's description"])
def test_model_files_that_do_not_fit_are_one_line_naming_the_file(saved, damage, message):
    damage(saved)
    with pytest.raises(PipelineError, match=message) as error:
        model_loading.load(saved)
    assert str(saved) in str(error.value) and "\n" not in str(error.value)
