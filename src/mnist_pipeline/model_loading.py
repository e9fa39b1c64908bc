"""Loading a model directory (model_files.py) or checking a .tflite file against its dataset.json, trusting nothing
because of where it sits: a model is built from model.json in Keras' safe mode (no Lambda bytecode), a directory
that also holds a SavedModel (a graph that may run any op when loaded) is refused, and files that differ from what
dataset.json records (damaged, swapped, or described by another model's dataset.json) are refused before Keras reads
them. Evaluate, export, explain, transfer, predict and the server all load models through here."""

import json
import math
from pathlib import Path
from typing import NamedTuple

from . import guarded, prepared
from .errors import PipelineError
from .model_format import ARCHITECTURE_FILE, WEIGHTS_FILE

SAVED_MODEL_FILE = "saved_model.pb"


class ModelFileError(PipelineError):
    pass


class Card(NamedTuple):
    """What dataset.json records of a model besides its data: the temperature its probabilities are scaled by
    (calibration.py; 1 where none was fitted), and its accuracy where one was measured when it was written (on the
    validation split by the stage that trained it, on the test split by export) as (split, value)."""
    temperature: float = 1.0
    accuracy: tuple | None = None


def read_description(directory, files) -> prepared.Description:
    """The description in `directory`'s dataset.json, once each of `files` there is shown to be one it describes."""
    return read_model_description(directory, files)[0]


def read_model_description(directory, files) -> tuple:
    """(description, card) of the model `files` in `directory`, each shown to be one its dataset.json describes."""
    described = Path(directory, prepared.DESCRIPTION_FILE)
    content = guarded.read_bytes(described, guarded.DESCRIPTION_BYTES)
    description, recorded = prepared.parse_description(content, described)
    for name in files:
        if name not in recorded:
            raise ModelFileError(f"{described} does not describe {name} (it records "
                                 f"{', '.join(recorded) or 'no model files'}): it belongs to another model")
        if guarded.sha256_of(Path(directory, name)) != recorded[name]:
            raise ModelFileError(f"{Path(directory, name)}: not the file {described} records (its sha256 differs): "
                                 "changed or damaged since it was saved, or dataset.json is another model's")
    return description, _card(json.loads(content), described, files)


def _card(fields, described, files) -> Card:
    temperature = fields.get("temperature", 1.0)
    if not _number(temperature) or not 0 < temperature <= 100:
        raise ModelFileError(f"{described}: temperature: expected a number in (0, 100], got {temperature!r}"[:300])
    tested, validated = fields.get("test_accuracy", {}), fields.get("validation_accuracy")
    if not isinstance(tested, dict) or not all(_number(v) and 0 <= v <= 1 for v in tested.values()) or \
            validated is not None and not (_number(validated) and 0 <= validated <= 1):
        raise ModelFileError(f"{described}: test_accuracy and validation_accuracy: expected numbers in [0, 1]")
    found = [tested[name] for name in files if name in tested]
    accuracy = ("test", found[0]) if found else ("validation", validated) if validated is not None else None
    return Card(float(temperature), accuracy)


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def model_files(directory) -> list:
    """The files of a model directory."""
    return [Path(directory, name) for name in (ARCHITECTURE_FILE, WEIGHTS_FILE, prepared.DESCRIPTION_FILE)]


def check_fit(path, input_shape, outputs, description: prepared.Description):
    """The network at `path` takes images of the described shape and scores as many classes as are named."""
    described = "x".join(map(str, description.image_shape))
    if tuple(input_shape) != tuple(description.image_shape):
        raise ModelFileError(f"{path}: the network takes {'x'.join(map(str, input_shape))} images, but its "
                             f"{prepared.DESCRIPTION_FILE} describes {described} ones")
    if outputs != description.num_classes:
        raise ModelFileError(f"{path}: the network scores {outputs} classes, but its {prepared.DESCRIPTION_FILE} "
                             f"names {description.num_classes}")


def load(directory, expected: prepared.Description | None = None):
    """(model, description), refusing a model trained on other data than `expected` describes (see the module's
    description for what else is refused)."""
    model, description, _ = load_with_card(directory, expected)
    return model, description


def load_with_card(directory, expected: prepared.Description | None = None):
    """(model, description, card): see load."""
    import keras

    directory = Path(directory)
    if Path(directory, SAVED_MODEL_FILE).exists():
        raise ModelFileError(f"{directory} holds a SavedModel ({SAVED_MODEL_FILE}), whose graph may run any code "
                             f"when loaded: refused; give a model directory ({ARCHITECTURE_FILE}) or a .tflite file")
    if not Path(directory, ARCHITECTURE_FILE).is_file():
        raise ModelFileError(f"{directory} is not a model directory: it has no {ARCHITECTURE_FILE}")
    try:
        description, card = read_model_description(directory, (ARCHITECTURE_FILE, WEIGHTS_FILE))
    except FileNotFoundError as error:
        raise ModelFileError(f"{directory}: no {Path(error.filename).name}") from None
    try:
        architecture = json.loads(guarded.read_bytes(directory / ARCHITECTURE_FILE, guarded.ARCHITECTURE_BYTES))
        model = keras.saving.deserialize_keras_object(architecture, safe_mode=True)
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError) as error:
        raise ModelFileError(f"{directory / ARCHITECTURE_FILE}: cannot build the model: {error}") from None
    if not isinstance(model, keras.Model):
        raise ModelFileError(f"{directory / ARCHITECTURE_FILE}: does not describe a Keras model")
    try:
        model.load_weights(directory / WEIGHTS_FILE)
    except (ValueError, TypeError, KeyError, OSError) as error:
        raise ModelFileError(f"{directory / WEIGHTS_FILE}: cannot load the weights: {error}") from None
    check_fit(directory, model.input_shape[1:], model.output_shape[-1], description)
    if expected is not None and description != expected:
        raise ModelFileError(f"{directory} was trained on {description.title} {description.image_shape}, not on "
                             f"{expected.title} {expected.image_shape} as the data given")
    return model, description, card
