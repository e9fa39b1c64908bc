"""One interface over the runtimes a trained model can be run in: Keras (a model directory), TensorFlow (a
SavedModel) and LiteRT (a .tflite file, float32 or int8). Each turns float images in [0, 1] into class
probabilities, so accuracy and latency are measured the same way for every format."""

import time
from pathlib import Path

import numpy as np

from . import data, model_files
from .errors import PipelineError


class RunnerError(PipelineError):
    pass


class KerasRunner:
    def __init__(self, directory, expected=None):
        self.model, self.description = model_files.load(directory, expected)

    def predict(self, images, batch_size=1000):
        return self.model.predict(images, batch_size=batch_size, verbose=0)

    def predict_one(self, image):
        return np.asarray(self.model(image[np.newaxis], training=False))[0]


class SavedModelRunner:
    """The `serve` endpoint of a SavedModel written by Keras' model.export, run by TensorFlow."""

    def __init__(self, directory):
        import tensorflow as tf

        self.saved_model = tf.saved_model.load(str(directory))  # held: its functions need its variables alive
        self.serve = self.saved_model.serve

    def predict(self, images, batch_size=1000):
        return np.concatenate([self.serve(images[i:i + batch_size]).numpy()
                               for i in range(0, len(images), batch_size)])

    def predict_one(self, image):
        return self.serve(image[np.newaxis]).numpy()[0]


class LiteRTRunner:
    """A .tflite model in the LiteRT interpreter. An int8 model takes and gives int8: images are quantized with its
    input's scale and zero point on the way in, probabilities dequantized on the way out."""

    def __init__(self, path, threads):
        from ai_edge_litert.interpreter import Interpreter

        try:
            self.interpreter = Interpreter(model_path=str(path), num_threads=threads)
        except ValueError as error:
            raise RunnerError(f"{path}: not a LiteRT model ({error})") from None
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]
        self.batch = None

    def _run(self, images):
        if len(images) != self.batch:
            self.interpreter.resize_tensor_input(self.input["index"], [len(images), *self.input["shape"][1:]])
            self.interpreter.allocate_tensors()
            self.batch = len(images)
        self.interpreter.set_tensor(self.input["index"], _quantize(images, self.input))
        self.interpreter.invoke()
        return _dequantize(self.interpreter.get_tensor(self.output["index"]), self.output)

    def predict(self, images, batch_size=1000):
        return np.concatenate([self._run(images[i:i + batch_size]) for i in range(0, len(images), batch_size)])

    def predict_one(self, image):
        return self._run(image[np.newaxis])[0]


def _quantize(values, details):
    if details["dtype"] == np.float32:
        return values.astype(np.float32, copy=False)
    scale, zero_point = details["quantization"]
    limits = np.iinfo(details["dtype"])
    return np.clip(np.round(values / scale + zero_point), limits.min, limits.max).astype(details["dtype"])


def _dequantize(values, details):
    if details["dtype"] == np.float32:
        return values
    scale, zero_point = details["quantization"]
    return (values.astype(np.float32) - zero_point) * scale


def open_runner(path, threads):
    """A runner for `path`: a .tflite file, a SavedModel directory or a model directory (see model_files)."""
    path = Path(path)
    if path.suffix == ".tflite" and path.is_file():
        return LiteRTRunner(path, threads)
    if Path(path, "saved_model.pb").is_file():
        return SavedModelRunner(path)
    if Path(path, model_files.ARCHITECTURE_FILE).is_file():
        return KerasRunner(path)
    raise RunnerError(f"{path}: not a model: expected a .tflite file, a SavedModel directory or a model directory "
                      f"(with {model_files.ARCHITECTURE_FILE})")


def description_for(path) -> data.Description:
    """The dataset description a model was trained for: in its directory, or beside a .tflite file."""
    path = Path(path)
    if not path.exists():
        raise RunnerError(f"{path}: no such file or directory")
    directory = path.parent if path.is_file() else path
    try:
        return data.load_description(directory)
    except FileNotFoundError:
        raise RunnerError(f"{path}: no {data.DESCRIPTION_FILE} in {directory} to name the classes") from None


def latency_ms(runner, images, runs):
    """p50 and p95 of single-image prediction in milliseconds, over `runs` predictions of `images` in turn, after
    a few untimed ones (the first calls allocate and trace)."""
    for image in images[:5]:
        runner.predict_one(image)
    times = []
    for i in range(runs):
        start = time.perf_counter()
        runner.predict_one(images[i % len(images)])
        times.append(time.perf_counter() - start)
    p50, p95 = np.percentile(times, [50, 95]) * 1000
    return round(float(p50), 4), round(float(p95), 4)
