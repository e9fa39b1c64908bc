"""One interface over the runtimes a trained model can be run in: Keras (a model directory), LiteRT (a .tflite file,
float32 or int8) and, for export's own measurement of the SavedModel it has just written, TensorFlow. Each runner
turns float images in [0, 1] into class probabilities (`predict`, `predict_one`) and names its input (`input_name`),
so accuracy and latency are measured the same way for every format, and predict and the server use any of them
alike. open_runner, which predict and the server use, opens only the first two: a SavedModel's graph may run any op."""

import time
from pathlib import Path

import numpy as np

from . import model_loading, prepared
from .errors import PipelineError


class RunnerError(PipelineError):
    pass


class Runner:
    """What every runner offers; `description` is None for a SavedModel, which carries none of its own, and `card`
    is what dataset.json records of the model (its temperature, its measured accuracy)."""
    description: prepared.Description | None = None
    card: model_loading.Card = model_loading.Card()
    input_name: str = "input"

    def predict(self, images, batch_size=1000) -> np.ndarray:
        raise NotImplementedError

    def predict_one(self, image) -> np.ndarray:
        return self.predict(image[np.newaxis])[0]


class KerasRunner(Runner):
    def __init__(self, directory, expected=None):
        self.model, self.description, self.card = model_loading.load_with_card(directory, expected)
        self.input_name = self.model.inputs[0].name.split(":")[0]

    # predict_on_batch runs the model's compiled predict function; model.predict sets up a data pipeline on every
    # call, which for a served request of one image costs many times the model itself.
    def predict(self, images, batch_size=1000):
        return in_batches(self.model.predict_on_batch, images, batch_size)

    def predict_one(self, image):
        return self.model.predict_on_batch(image[np.newaxis])[0]


class SavedModelRunner(Runner):
    """The `serve` endpoint of a SavedModel written by Keras' model.export, run by TensorFlow. Only for a SavedModel
    this process has just written (export.fresh_saved_model): loading one runs its graph."""

    def __init__(self, directory):
        import tensorflow as tf

        self.saved_model = tf.saved_model.load(str(directory))  # held: its functions need its variables alive
        self.serve = self.saved_model.serve

    def predict(self, images, batch_size=1000):
        return in_batches(lambda batch: self.serve(batch).numpy(), images, batch_size)

    def predict_one(self, image):
        return self.serve(image[np.newaxis]).numpy()[0]


class LiteRTRunner(Runner):
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
        # As TensorFlow Serving shows the exported SavedModel's input: LiteRT names it serving_default_<name>:0.
        self.input_name = self.input["name"].split(":")[0].removeprefix("serving_default_")

    def _run(self, images):
        if len(images) != self.batch:
            self.interpreter.resize_tensor_input(self.input["index"], [len(images), *self.input["shape"][1:]])
            self.interpreter.allocate_tensors()
            self.batch = len(images)
        self.interpreter.set_tensor(self.input["index"], _quantize(images, self.input))
        self.interpreter.invoke()
        return _dequantize(self.interpreter.get_tensor(self.output["index"]), self.output)

    def predict(self, images, batch_size=1000):
        return in_batches(self._run, images, batch_size)

    def predict_one(self, image):
        return self._run(image[np.newaxis])[0]


def in_batches(run, images, batch_size):
    """run(batch) over `images` batch_size at a time, its outputs joined."""
    return np.concatenate([run(images[i:i + batch_size]) for i in range(0, len(images), batch_size)])


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
    """A runner for `path`, a .tflite file or a model directory (see model_files), and the description of the data
    it was trained on; a file that does not fit its dataset.json is refused."""
    path = Path(path)
    if not path.exists():
        raise RunnerError(f"{path}: no such file or directory")
    if path.is_dir():
        runner = KerasRunner(path)
        return runner, runner.description
    if path.suffix != ".tflite":
        raise RunnerError(f"{path}: not a model: expected a .tflite file or a model directory (with "
                          f"{model_loading.ARCHITECTURE_FILE})")
    try:
        description, card = model_loading.read_model_description(path.parent, [path.name])
    except FileNotFoundError:
        raise RunnerError(f"{path}: no {prepared.DESCRIPTION_FILE} beside it to name the classes") from None
    runner = LiteRTRunner(path, threads)
    runner.description, runner.card = description, card
    model_loading.check_fit(path, runner.input["shape"][1:], int(runner.output["shape"][-1]), description)
    return runner, description


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
