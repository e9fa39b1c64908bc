"""Model directories: saved byte-stably, loaded without params.yaml, and nothing executable loaded from them."""

import json
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from mnist_pipeline import artifacts, data, model_files, runtime

import smoke

runtime.configure(seed=1, threads=2, deterministic=True)
from mnist_pipeline import models  # noqa: E402

DESCRIPTION = data.Description("mnist", "MNIST", (28, 28, 1), tuple(str(d) for d in range(10)))
HP = {"batch_norm": True, "conv1_filters": 8, "conv1_kernel": 3, "conv2_filters": 8, "conv2_kernel": 3,
      "extra_conv": True, "conv3_filters": 8, "conv3_kernel": 3, "dense_units": 16, "dropout": 0.1,
      "learning_rate": 0.001}


@pytest.mark.parametrize("build", [
    lambda: models.build_cnn_from_description(HP, DESCRIPTION),
    lambda: models.build_baseline_model([8, 16], 3, 16, 0.2, 0.001, image_shape=(28, 28, 1), num_classes=10),
], ids=["tuned", "baseline"])
def test_a_saved_model_loads_without_its_builder_and_predicts_the_same(tmp_path, build):
    model = build()
    images = np.random.default_rng(0).random((16, 28, 28, 1), dtype=np.float32)
    model_files.save(tmp_path / "model", model, DESCRIPTION)
    loaded, description = model_files.load(tmp_path / "model")
    assert description == DESCRIPTION
    # Keras' own layers: the project's BatchNormalization only trains differently, and is saved as Keras' own.
    assert [type(layer).__name__ for layer in loaded.layers] == [type(layer).__name__ for layer in model.layers]
    assert {type(layer).__module__.split(".")[0] for layer in loaded.layers} == {"keras"}
    np.testing.assert_array_equal(loaded.predict(images, verbose=0), model.predict(images, verbose=0))
    assert "compile_config" not in (tmp_path / "model" / model_files.ARCHITECTURE_FILE).read_text()


def test_saving_the_same_model_twice_gives_the_same_bytes(tmp_path):
    model = models.build_cnn_from_description(HP, DESCRIPTION)
    for name in ("a", "b"):
        model_files.save(tmp_path / name, model, DESCRIPTION)
    for file in (model_files.ARCHITECTURE_FILE, model_files.WEIGHTS_FILE, data.DESCRIPTION_FILE):
        assert (tmp_path / "a" / file).read_bytes() == (tmp_path / "b" / file).read_bytes()


def test_an_architecture_that_would_run_code_is_refused(tmp_path):
    """A model directory from elsewhere whose architecture holds a Lambda layer, i.e. Python bytecode."""
    model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Lambda(lambda x: x * 2), keras.layers.Flatten(),
                              keras.layers.Dense(10)])
    (tmp_path / "model").mkdir()
    artifacts.write_json(tmp_path / "model" / model_files.ARCHITECTURE_FILE, keras.saving.serialize_keras_object(model))
    model.save_weights(tmp_path / "model" / model_files.WEIGHTS_FILE)
    data.save_description(tmp_path / "model", DESCRIPTION)
    with pytest.raises(model_files.ModelFileError, match="cannot load the model: .*safe_mode"):
        model_files.load(tmp_path / "model")


def test_a_directory_without_a_model_is_one_clear_error(tmp_path):
    with pytest.raises(model_files.ModelFileError, match="is not a model directory: it has no model.json"):
        model_files.load(tmp_path)
    (tmp_path / model_files.ARCHITECTURE_FILE).write_text("{not json")
    with pytest.raises(model_files.ModelFileError, match="cannot load the model"):
        model_files.load(tmp_path)


def test_a_model_trained_on_other_data_is_refused_where_data_is_given(tmp_path):
    model_files.save(tmp_path / "model", models.build_cnn_from_description(HP, DESCRIPTION), DESCRIPTION)
    fashion = DESCRIPTION._replace(name="fashion_mnist", title="Fashion-MNIST")
    with pytest.raises(model_files.ModelFileError, match="was trained on MNIST .* not on Fashion-MNIST"):
        model_files.load(tmp_path / "model", expected=fashion)
    assert model_files.load(tmp_path / "model", expected=DESCRIPTION)[1] == DESCRIPTION


TRAIN_AND_SAVE = """
import json, sys
import numpy as np
from mnist_pipeline import data, model_files, runtime
runtime.configure(seed=3, threads=2, deterministic=True, precision=sys.argv[2], backend=sys.argv[4])
from mnist_pipeline import models
description = data.Description("mnist", "MNIST", (28, 28, 1), tuple(str(d) for d in range(10)))
model = models.build_cnn_from_description(json.loads(sys.argv[3]), description)
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
    stages = Path(model_files.__file__).resolve().parents[1]
    result = subprocess.run([sys.executable, "-c", TRAIN_AND_SAVE, str(directory), precision, json.dumps(HP),
                             backend], env=smoke.environment({"PYTHONPATH": str(stages)}), capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout.split()[-1]


def model_bytes(directory):
    return [(Path(directory) / f).read_bytes() for f in (model_files.ARCHITECTURE_FILE, model_files.WEIGHTS_FILE)]


def test_mixed_bfloat16_training_repeats_to_the_same_bytes_and_saves_a_float32_model(tmp_path):
    assert train_in_a_fresh_process(tmp_path / "bf16-a", "mixed_bfloat16") == "bfloat16"
    assert train_in_a_fresh_process(tmp_path / "bf16-b", "mixed_bfloat16") == "bfloat16"
    assert train_in_a_fresh_process(tmp_path / "fp32", "float32") == "float32"

    assert model_bytes(tmp_path / "bf16-a") == model_bytes(tmp_path / "bf16-b")
    # The same architecture file whichever precision trained it; the weights differ, as the arithmetic did.
    bf16, fp32 = model_bytes(tmp_path / "bf16-a"), model_bytes(tmp_path / "fp32")
    assert bf16[0] == fp32[0] and bf16[1] != fp32[1]
    loaded, _ = model_files.load(tmp_path / "bf16-a")
    assert {layer.dtype_policy.name for layer in loaded.layers} == {"float32"}


def test_a_model_trained_under_jax_runs_on_tensorflow_with_the_same_predictions(tmp_path):
    pytest.importorskip("jax", reason="the JAX backend is optional: make setup-jax")
    train_in_a_fresh_process(tmp_path / "jax", "float32", backend="jax")  # its reruns: test_backends.py

    # This process runs TensorFlow: the files JAX wrote give JAX's predictions here.
    loaded, _ = model_files.load(tmp_path / "jax")
    probe = np.random.default_rng(1).random((32, 28, 28, 1), dtype=np.float32)  # as the training script drew it
    np.testing.assert_allclose(loaded.predict(probe, verbose=0), np.load(tmp_path / "jax.npy"), atol=1e-5)
