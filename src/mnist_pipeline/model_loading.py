"""Loading a model directory (model_files.py) or checking a .tflite file against its dataset.json, trusting nothing
because of where it sits: a model is built from model.json in Keras' safe mode (no Lambda bytecode), a directory
that also holds a SavedModel (a graph that may run any op when loaded) is refused, and files that differ from what
dataset.json records (damaged, swapped, or described by another model's dataset.json) are refused before Keras reads
them. Evaluate, export, explain, transfer, predict and the server all load models through here."""

import json
from pathlib import Path

from . import guarded, prepared
from .errors import PipelineError
from .model_format import ARCHITECTURE_FILE, WEIGHTS_FILE

SAVED_MODEL_FILE = "saved_model.pb"


class ModelFileError(PipelineError):
    pass


def read_description(directory, files) -> prepared.Description:
    """The description in `directory`'s dataset.json, once each of `files` there is shown to be one it describes."""
    described = Path(directory, prepared.DESCRIPTION_FILE)
    description, recorded = prepared.parse_description(guarded.read_bytes(described, guarded.DESCRIPTION_BYTES),
                                                       described)
    for name in files:
        if name not in recorded:
            raise ModelFileError(f"{described} does not describe {name} (it records "
                                 f"{', '.join(recorded) or 'no model files'}): it belongs to another model")
        if guarded.sha256_of(Path(directory, name)) != recorded[name]:
            raise ModelFileError(f"{Path(directory, name)}: not the file {described} records (its sha256 differs): "
                                 "changed or damaged since it was saved, or dataset.json is another model's")
    return description


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
    import keras

    directory = Path(directory)
    if Path(directory, SAVED_MODEL_FILE).exists():
        raise ModelFileError(f"{directory} holds a SavedModel ({SAVED_MODEL_FILE}), whose graph may run any code "
                             f"when loaded: refused; give a model directory ({ARCHITECTURE_FILE}) or a .tflite file")
    if not Path(directory, ARCHITECTURE_FILE).is_file():
        raise ModelFileError(f"{directory} is not a model directory: it has no {ARCHITECTURE_FILE}")
    try:
        description = read_description(directory, (ARCHITECTURE_FILE, WEIGHTS_FILE))
    except FileNotFoundError as error:
        raise ModelFileError(f"{directory}: no {Path(error.filename).name}") from None
    try:
        architecture = json.loads(guarded.read_bytes(directory / ARCHITECTURE_FILE, guarded.ARCHITECTURE_BYTES))
        model = keras.saving.deserialize_keras_object(architecture, safe_mode=True)
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError) as error:
        raise ModelFileError(f"{directory / ARCHITECTURE_FILE}: cannot build the model: {error}") from None
    try:
        model.load_weights(directory / WEIGHTS_FILE)
    except (ValueError, TypeError, KeyError, OSError) as error:
        raise ModelFileError(f"{directory / WEIGHTS_FILE}: cannot load the weights: {error}") from None
    check_fit(directory, model.input_shape[1:], model.output_shape[-1], description)
    if expected is not None and description != expected:
        raise ModelFileError(f"{directory} was trained on {description.title} {description.image_shape}, not on "
                             f"{expected.title} {expected.image_shape} as the data given")
    return model, description
