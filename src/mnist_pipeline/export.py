"""Exporting a trained model for serving and for devices: a TensorFlow SavedModel, and TFLite models in float32
and in full-integer int8 (weights and activations, input and output), quantized after training with a
representative set of training images for calibration."""

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

from .errors import PipelineError
from .settings import SEED, Int, Section

TFLITE_FILES = {"tflite_float32": "float32.tflite", "tflite_int8": "int8.tflite"}


class Export(Section):
    representative_images = Int(min=1, max=100000)  # training images the int8 converter calibrates ranges on
    latency_runs = Int(min=1, max=100000)  # single-image predictions timed per format, for p50 and p95
    seed = SEED  # which training images calibrate


class ExportError(PipelineError):
    pass


SCRATCH_MARKER = ".made-by-export"  # in export's scratch folders: the only ones it removes


@contextlib.contextmanager
def fresh_saved_model(model, directory):
    """model.export into a new private directory beside `directory`, yielded so that export converts and measures
    the graph it has just written (never one found on disk), then swapped in as `directory`. An existing `directory`
    is replaced only if it is a SavedModel (one this stage wrote before); anything else there is refused and left
    alone. If the block fails, nothing changes."""
    directory = Path(directory)
    if directory.exists() and not Path(directory, "saved_model.pb").is_file():
        raise ExportError(f"{directory} exists and is not a SavedModel; move it away, export will not replace it")
    directory.parent.mkdir(parents=True, exist_ok=True)
    for stale in directory.parent.glob(f".tmp-{directory.name}-*"):  # left by an export that was killed
        if (stale / SCRATCH_MARKER).is_file() and not stale.is_symlink():
            shutil.rmtree(stale)
    fresh = Path(tempfile.mkdtemp(prefix=f".tmp-{directory.name}-", dir=directory.parent))
    (fresh / SCRATCH_MARKER).touch()
    try:
        _without_dropout(model).export(str(fresh / "model"), format="tf_saved_model", verbose=False)
        yield fresh / "model"
        if directory.exists():
            os.replace(directory, fresh / "old")
        os.replace(fresh / "model", directory)
    finally:
        shutil.rmtree(fresh)


def write_saved_model(model, directory):
    with fresh_saved_model(model, directory):
        pass


def _without_dropout(model):
    """A copy of `model` with Identity layers for its Dropout layers, which do nothing at inference. Each Dropout
    holds a random-number state; exported under JAX, it is a uint32 variable that the TFLite converter refuses."""
    import keras

    def clone(layer):
        if isinstance(layer, keras.layers.Dropout):
            return keras.layers.Identity(name=layer.name)
        return layer.__class__.from_config(layer.get_config())

    copy = keras.models.clone_model(model, clone_function=clone)
    copy.set_weights(model.get_weights())
    return copy


def tflite_float32(saved_model_dir) -> bytes:
    import tensorflow as tf

    return tf.lite.TFLiteConverter.from_saved_model(str(saved_model_dir)).convert()


def tflite_int8(saved_model_dir, representative_images) -> bytes:
    """Every tensor int8, the model's input and output included, as integer-only accelerators need. The converter
    sets each activation's range from what the representative images produce."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model_dir))
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([image[None]] for image in representative_images)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    return converter.convert()


def size_bytes(path) -> int:
    """A file's size, or the total of the files under a directory."""
    path = Path(path)
    if path.is_file():
        return path.stat().st_size
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
