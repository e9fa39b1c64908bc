"""Export: a SavedModel and TFLite float32 / int8 models of a CNN trained on real digits, each run in its own runtime
(TensorFlow, LiteRT) and compared with the Keras model they came from."""

import numpy as np
import pytest
from helpers import start_runtime

from mnist_pipeline import datasets, inputs, model_files, model_loading
from mnist_pipeline.errors import PipelineError

start_runtime()
from mnist_pipeline import baseline_model, cnn, export, feature_maps, inference, training  # noqa: E402

HP = {"batch_norm": True, "conv1_filters": 8, "conv1_kernel": 3, "conv2_filters": 16, "conv2_kernel": 3,
      "extra_conv": False, "conv3_filters": 8, "conv3_kernel": 3, "dense_units": 64, "dropout": 0.1,
      "learning_rate": 0.002}


@pytest.fixture(scope="module")
def exported(raw_mnist_dir, tmp_path_factory):
    """A small CNN trained for one epoch on 6 000 real digits, saved, then exported as export.py does."""
    mnist = datasets.DATASETS["mnist"]
    x, y = mnist.read_split(raw_mnist_dir, "train")
    x_test, y_test = mnist.read_split(raw_mnist_dir, "test")
    x, x_test = inputs.scaled(x[:6000]), inputs.scaled(x_test[:2000])
    model = cnn.build_from_description(HP, mnist.describe())
    training.fit(model, x, y[:6000], batch_size=64, epochs=1, verbose=0)
    root = tmp_path_factory.mktemp("export")
    model_files.save(root / "tuned", model, mnist.describe())
    with export.fresh_saved_model(model, root / "serving") as saved_model:
        (root / "float32.tflite").write_bytes(export.tflite_float32(saved_model))
        (root / "int8.tflite").write_bytes(export.tflite_int8(saved_model, x[:200]))
        saved_model_runner = inference.SavedModelRunner(saved_model)
    model_files.describe(root, mnist.describe(), ["float32.tflite", "int8.tflite"])
    return root, x_test, y_test[:2000], x[:200], saved_model_runner


def test_every_format_gives_the_keras_model_s_predictions_in_its_own_runtime(exported):
    root, x_test, y_test, _, saved_model_runner = exported
    keras_probabilities = inference.open_runner(root / "tuned", threads=2)[0].predict(x_test)
    assert np.mean(keras_probabilities.argmax(1) == y_test) > 0.9
    for runner in (saved_model_runner, inference.open_runner(root / "float32.tflite", threads=2)[0]):
        np.testing.assert_allclose(runner.predict(x_test, batch_size=500), keras_probabilities, atol=1e-5)
        np.testing.assert_allclose(runner.predict_one(x_test[3]), keras_probabilities[3], atol=1e-5)
    int8, _ = inference.open_runner(root / "int8.tflite", threads=2)
    assert isinstance(int8, inference.LiteRTRunner) and int8.input["dtype"] == np.int8
    agree = np.mean(int8.predict(x_test).argmax(1) == keras_probabilities.argmax(1))
    assert agree > 0.98


def test_int8_is_about_four_times_smaller_and_conversion_is_byte_stable(exported):
    root, _, _, representative, _ = exported
    float32, int8 = (root / "float32.tflite").read_bytes(), (root / "int8.tflite").read_bytes()
    assert len(float32) / len(int8) > 3.5
    assert export.tflite_float32(root / "serving") == float32
    assert export.tflite_int8(root / "serving", representative) == int8


def test_latency_is_measured_per_single_image(exported):
    root, x_test, _, _, _ = exported
    p50, p95 = inference.latency_ms(inference.open_runner(root / "float32.tflite", threads=2)[0], x_test, runs=50)
    assert 0 < p50 <= p95


def test_a_saved_model_is_replaced_but_anything_else_is_left_alone(exported, tmp_path):
    root, _, _, _, _ = exported
    model, _ = model_loading.load(root / "tuned")
    export.write_saved_model(model, tmp_path / "serving")
    export.write_saved_model(model, tmp_path / "serving")
    assert (tmp_path / "serving" / "saved_model.pb").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["serving"]  # no temporary directory left behind
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    with pytest.raises(export.ExportError, match="exists and is not a SavedModel"):
        export.write_saved_model(model, tmp_path / "mine")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep"


def test_what_a_killed_export_left_is_removed_by_the_next_and_nothing_else(exported, tmp_path):
    root, _, _, _, _ = exported
    model, _ = model_loading.load(root / "tuned")
    left = tmp_path / ".tmp-serving-abc123"  # as mkdtemp named it, with export's marker, then kill -9
    (left / "model").mkdir(parents=True)
    (left / export.SCRATCH_MARKER).touch()
    theirs = tmp_path / ".tmp-serving-someone-else"  # the same kind of name, not export's
    theirs.mkdir()
    (theirs / "notes.txt").write_text("keep")
    export.write_saved_model(model, tmp_path / "serving")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".tmp-serving-someone-else", "serving"]
    assert (theirs / "notes.txt").read_text() == "keep"


def test_a_path_that_is_no_model_is_one_clear_error(tmp_path):
    with pytest.raises(model_loading.ModelFileError, match="is not a model directory"):
        inference.open_runner(tmp_path, threads=2)
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(inference.RunnerError, match="not a model: expected a .tflite file or a model directory"):
        inference.open_runner(tmp_path / "notes.txt", threads=2)
    (tmp_path / "fake.tflite").write_bytes(b"not a flatbuffer")
    with pytest.raises(inference.RunnerError, match="no dataset.json beside it"):
        inference.open_runner(tmp_path / "fake.tflite", threads=2)
    model_files.describe(tmp_path, datasets.DATASETS["mnist"].describe(), ["fake.tflite"])
    with pytest.raises(inference.RunnerError, match="not a LiteRT model"):
        inference.open_runner(tmp_path / "fake.tflite", threads=2)


@pytest.mark.parametrize("description, message", [
    (datasets.DATASETS["cifar10"].describe(),
     "float32.tflite: the network takes 28x28x1 images, but its dataset.json describes 32x32x3 ones"),
    (datasets.DATASETS["mnist"].describe()._replace(class_names=("odd", "even", "zero")),
     "float32.tflite: the network scores 10 classes, but its dataset.json names 3"),
    (None, "dataset.json does not describe float32.tflite .* it belongs to another model"),
], ids=["a 32x32x3 description", "3 class names", "another model's description"])
def test_a_tflite_file_that_does_not_fit_its_description_is_refused(exported, tmp_path, description, message):
    root = exported[0]
    (tmp_path / "float32.tflite").write_bytes((root / "float32.tflite").read_bytes())
    if description is None:  # Fashion-MNIST's description, beside the digit model: same shape, same class count
        (tmp_path / "other.tflite").write_bytes((root / "int8.tflite").read_bytes())
        model_files.describe(tmp_path, datasets.DATASETS["fashion_mnist"].describe(), ["other.tflite"])
    else:
        model_files.describe(tmp_path, description, ["float32.tflite"])
    with pytest.raises(PipelineError, match=message):
        inference.open_runner(tmp_path / "float32.tflite", threads=2)


def test_feature_maps_come_from_the_end_of_each_convolutional_block(exported):
    root, x_test, y_test, _, _ = exported
    model, _ = model_loading.load(root / "tuned")
    assert [layer.__class__.__name__ for layer in feature_maps.block_outputs(model)] == ["Activation"] * 2
    shown = feature_maps.one_per_class(y_test, 10)
    assert [int(y_test[i]) for i in shown] == list(range(10))
    maps = list(feature_maps.activations(model, x_test[shown]).values())
    assert [m.shape for m in maps] == [(10, 28, 28, 8), (10, 14, 14, 16)]
    channels = feature_maps.most_active(maps[0], 3)
    assert list(channels) == list(np.argsort(-maps[0].mean(axis=(0, 1, 2)))[:3])
    assert feature_maps.first_filters(model).shape == (3, 3, 1, 8)
    settings = baseline_model.Baseline(conv_filters=(4, 8), kernel_size=3, dense_units=16, dropout=0.0,
                                       learning_rate=0.001)
    baseline = baseline_model.build_baseline(settings, datasets.DATASETS["mnist"].describe())
    assert [layer.__class__.__name__ for layer in feature_maps.block_outputs(baseline)] == ["Conv2D"] * 2
