"""The retrain augmentation: one bilinear resampling written as matrix products, checked against Keras' own image
transform on real digits. (Its cost beside a training step is a benchmark: benchmarks/benchmark_training.py
--augmentation-share.) And fit on uint8 images too many to scale in one go."""

import math
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from helpers import start_runtime

from mnist_pipeline import datasets, inputs, prepared

start_runtime()
import keras  # noqa: E402

from mnist_pipeline import augmentation, training  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def digits(raw_mnist_dir):
    x, _ = datasets.DATASETS["mnist"].read_split(raw_mnist_dir, "test")
    return inputs.scaled(x[:64])


def distortion(shift_fraction=0.0, rotation_degrees=0.0, zoom_fraction=0.0, flip=False, erasing=0.0):
    return augmentation.Augmentation(shift_fraction=shift_fraction, rotation_degrees=rotation_degrees,
                                     zoom_fraction=zoom_fraction, flip=flip, erasing=erasing)


TRANSFORMS = [(0.0, 1.0, 0.0, 0.0), (math.radians(8), 1.0, 0.0, 0.0), (0.0, 1.0, 2.24, -1.5),
              (math.radians(-8), 1.1, -2.0, 2.24)]


def transforms(batch, angle, scale, shift_y, shift_x):
    return augmentation.affine_transforms(*(np.full(batch, value, np.float32) for value in (angle, scale, shift_y,
                                                                                         shift_x)), 28, 28)


@pytest.mark.parametrize("angle, scale, shift_y, shift_x", TRANSFORMS)
def test_the_matrix_product_resampling_is_keras_bilinear_transform_with_black_fill(digits, angle, scale, shift_y,
                                                                                   shift_x):
    transform = transforms(len(digits), angle, scale, shift_y, shift_x)
    ours = augmentation.resample(digits, transform)
    theirs = keras.ops.image.affine_transform(digits, transform, interpolation="bilinear", fill_mode="constant")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(ours), keras.ops.convert_to_numpy(theirs), atol=1e-5)


def test_a_shift_of_whole_pixels_moves_the_digit_right_and_down(digits):
    moved = keras.ops.convert_to_numpy(augmentation.resample(digits, transforms(len(digits), 0.0, 1.0, 3.0, 2.0)))
    np.testing.assert_allclose(moved[:, 3:, 2:], digits[:, :-3, :-2], atol=1e-6)
    assert not moved[:, :3].any() and not moved[:, :, :2].any()  # black where nothing came from


def test_each_image_gets_its_own_distortion_in_training_only(digits):
    layer = augmentation.layers_for(distortion(shift_fraction=0.08, rotation_degrees=8))[0]
    assert layer.compute_dtype == "float32"
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(digits)), digits)  # inference: unchanged
    first, second = (keras.ops.convert_to_numpy(layer(digits, training=True)) for _ in range(2))
    assert not np.allclose(first, second)  # a new draw per call
    moved = np.abs(first - digits).reshape(len(digits), -1).max(axis=1)
    assert (moved > 0.1).all()  # every image distorted
    assert first.min() >= 0 and first.max() <= 1 + 1e-6  # bilinear weights sum to at most 1
    assert augmentation.layers_for(distortion()) == [] and augmentation.layers_for(None) == []


def test_a_flip_mirrors_about_half_the_images_left_to_right_exactly(digits):
    [layer] = augmentation.layers_for(distortion(flip=True))
    out = keras.ops.convert_to_numpy(layer(digits, training=True))
    mirrored = [np.allclose(o, d[:, ::-1], atol=1e-5) for o, d in zip(out, digits)]
    unchanged = [np.allclose(o, d, atol=1e-5) for o, d in zip(out, digits)]
    assert all(m or u for m, u in zip(mirrored, unchanged)) and 16 < sum(mirrored) < 48


@pytest.mark.parametrize("probability", [0.0, 1.0])
def test_random_erasing_replaces_a_rectangle_of_each_image_with_noise_with_its_probability(digits, probability):
    [layer] = augmentation.layers_for(distortion(erasing=probability)) if probability else [
        augmentation.RandomErasing(0.0)]
    out = keras.ops.convert_to_numpy(layer(digits, training=True))
    changed = np.abs(out - digits)[..., 0] > 1e-6
    if not probability:
        assert not changed.any()
        return
    for mask in changed:
        rows, columns = np.nonzero(mask)
        box = (rows.max() - rows.min() + 1) * (columns.max() - columns.min() + 1)
        assert 0.01 * 784 <= box <= 0.26 * 784 and mask.sum() > 0.5 * box  # one rectangle, nearly all of it changed
    assert out.min() >= 0 and out.max() <= 1
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(digits)), digits)  # inference: unchanged


@pytest.mark.parametrize("validation_dtype", ["uint8", "float32"])  # float images are already scaled
def test_images_on_disk_train_and_validate_batch_by_batch_never_loaded_whole(raw_mnist_dir, tmp_path,
                                                                           validation_dtype):
    x, y = datasets.DATASETS["mnist"].read_split(raw_mnist_dir, "test")
    np.save(tmp_path / "x.npy", x[:5000])  # as prepare stores a split, read as every stage reads one
    x_train, y_train = prepared.Rows(tmp_path / "x.npy"), y[:5000]  # each ends in a partial batch
    validation = (x[5000:] if validation_dtype == "uint8" else inputs.scaled(x[5000:]), y[5000:])
    model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(10, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    tracemalloc.start()
    history = training.fit(model, x_train, y_train, batch_size=256, epochs=2, validation_data=validation, verbose=0)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 4 * x_train.size  # no float copy of the training split (Keras' own bookkeeping takes about 5 MB)
    assert history.history["accuracy"][-1] > 0.5  # it learns (chance: 0.1)
    # Validation saw every image once: its accuracy is the trained model's on all of them.
    assert history.history["val_accuracy"][-1] == pytest.approx(
        model.evaluate(inputs.scaled(x[5000:]), y[5000:], verbose=0)[1], abs=1e-6)


def test_each_epoch_draws_its_own_order_from_the_seed_and_its_number_whatever_came_before():
    x, y = np.arange(1000, dtype=np.uint8).reshape(1000, 1, 1, 1) % 251, np.arange(1000)
    batches = training.ScaledBatches(x, y, batch_size=100, seed=7)

    def epoch(number):
        batches.start_epoch(number)
        return np.concatenate([batches[i][1] for i in range(len(batches))])

    first, second, again = epoch(0), epoch(1), epoch(0)
    assert sorted(first) == list(range(1000)) and not np.array_equal(first, second)
    np.testing.assert_array_equal(first, again)  # epoch 0's order, even after epoch 1 was drawn
    other = training.ScaledBatches(x, y, batch_size=100, seed=8)
    other.start_epoch(0)
    assert not np.array_equal(np.concatenate([other[i][1] for i in range(len(other))]), first)
