"""TensorFlow Serving's REST API, as pure functions of a model's description: what a request body holds, and what an
answer looks like. No server, no model run here (serving_app.py has those), so every rule can be tested directly.

    GET  /v1/models/<name>                      the model's status
    GET  /v1/models/<name>/metadata             its signature: input and output names, dtypes and shapes
    POST /v1/models/<name>:predict              {"instances": [...]} -> {"predictions": [...]}, or
                                                {"inputs": ...} -> {"outputs": ...}; images as float32 in [0, 1]
    POST /v1/models/<name>:classify             {"examples": [{"<input>": image}, ...]} ->
                                                {"result": [[["<class name>", score], ...], ...]}, every class,
                                                the likeliest first (TensorFlow Serving's Classify API)
    (and the same under /v1/models/<name>/versions/1)

The metadata answers TensorFlow Serving's signature, and beside it (`metadata.dataset`) what the model was trained on:
the dataset's name and title, the image shape and the class names, in the order of the outputs.
"""

import json
import math

import numpy as np

VERSION = "1"  # the one version served, as TensorFlow Serving numbers them
MAX_BATCH = 1000
FLOAT32_MAX = float(np.finfo(np.float32).max)
OUTPUT_NAME = "output_0"  # what Keras' model.export names the SavedModel's output


class RequestError(Exception):
    """A client's mistake: answered with `status` and {"error": message}."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


def status():
    return {"model_version_status": [{"version": VERSION, "state": "AVAILABLE",
                                      "status": {"error_code": "OK", "error_message": ""}}]}


def metadata(name, input_name, description, card=None):
    def tensor(tensor_name, shape):
        return {"dtype": "DT_FLOAT", "tensor_shape": {"dim": [{"size": str(size), "name": ""} for size in shape],
                                                      "unknown_rank": False}, "name": tensor_name}

    signature = {"inputs": {input_name: tensor(f"serving_default_{input_name}:0", [-1, *description.image_shape])},
                 "outputs": {OUTPUT_NAME: tensor(f"{OUTPUT_NAME}:0", [-1, description.num_classes])},
                 "method_name": "tensorflow/serving/predict"}
    dataset = {"name": description.name, "title": description.title, "image_shape": list(description.image_shape),
               "class_names": list(description.class_names)}
    return {"model_spec": {"name": name, "signature_name": "", "version": VERSION},
            "metadata": {"signature_def": {"signature_def": {"serving_default": signature}}, "dataset": dataset,
                         **({"model": card} if card else {})}}


def predict_images(body, input_name, image_shape):
    """The float32 batch of a predict request in row ("instances") or columnar ("inputs") format, and which."""
    if not isinstance(body, dict) or len({"instances", "inputs"} & set(body)) != 1:
        raise RequestError(400, 'the request must be a JSON object with either "instances" or "inputs"')
    key = "instances" if "instances" in body else "inputs"
    value = body[key]
    if isinstance(value, dict):  # named inputs: {"inputs": {"input_layer": [...]}}
        value = _named(value, key, input_name)
    elif key == "instances" and isinstance(value, list) and value and isinstance(value[0], dict):
        value = [_named(instance, f"instances[{i}]", input_name) for i, instance in enumerate(value)]
    if not isinstance(value, list) or not value:
        raise RequestError(400, f'"{key}" must be a non-empty list of images')
    if len(value) > MAX_BATCH:
        raise RequestError(400, f'"{key}" holds {len(value)} images; at most {MAX_BATCH} a request')
    if not _numbers_only(value):
        raise RequestError(400, f'"{key}" must hold finite numbers only, in nested lists (no strings, booleans '
                                "or nulls)")
    try:
        images = np.asarray(value, dtype=np.float32)
    except (ValueError, TypeError, OverflowError):
        raise RequestError(400, f'"{key}": each image must be nested lists of shape {list(image_shape)}, all images '
                                "alike") from None
    if images.shape[1:] != tuple(image_shape):
        raise RequestError(400, f'"{key}": each image must have shape {list(image_shape)}, got '
                                f"{list(images.shape[1:])}")
    return images, key


def _named(value, where, input_name):
    if not isinstance(value, dict):
        raise RequestError(400, f'{where}: expected {{"{input_name}": [...]}}, as instances[0] gives its image; got '
                                f"{json.dumps(value)[:100]}")
    if set(value) != {input_name}:
        raise RequestError(400, f'{where}: this model has one input, "{input_name}"; got '
                                f"{', '.join(map(json.dumps, value)) or 'none'}")
    return value[input_name]


def _numbers_only(value, depth=0):
    """Nested lists (at most 8 deep) of finite numbers that a float32 can hold."""
    if isinstance(value, list):
        return depth < 8 and all(_numbers_only(item, depth + 1) for item in value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    # An int may be too big for a float (math.isfinite would raise): compare it as it is.
    return (isinstance(value, int) or math.isfinite(value)) and abs(value) <= FLOAT32_MAX


def classify_images(body, input_name, image_shape):
    """The float32 batch of a classify request: {"examples": [{"<input>": image}, ...]} (TensorFlow Serving's
    Classify API, whose examples are feature maps; `signature_name` and `context` are accepted and not needed)."""
    if not isinstance(body, dict) or "examples" not in body or set(body) - {"examples", "signature_name", "context"}:
        raise RequestError(400, 'the request must be a JSON object with "examples" (and optionally "signature_name" '
                                'and "context")')
    examples = body["examples"]
    if not isinstance(examples, list) or not examples:
        raise RequestError(400, f'"examples" must be a non-empty list of {{"{input_name}": image}} objects')
    images, _ = predict_images({"instances": [_named(example, f"examples[{i}]", input_name)
                                              for i, example in enumerate(examples)]}, input_name, image_shape)
    return images


def classify_answer(probabilities, class_names):
    """Every class with its score, the likeliest first, for each image."""
    order = np.argsort(-probabilities, axis=1, kind="stable")
    return {"result": [[[class_names[i], float(row[i])] for i in ranking] for row, ranking in
                       zip(probabilities, order)]}


def predict_answer(probabilities, key):
    answer = probabilities.astype(float).tolist()
    return {"predictions": answer} if key == "instances" else {"outputs": answer}
