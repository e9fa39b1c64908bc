"""A trained model as a directory that needs nothing else to be used: its Keras architecture, its weights and the
description of the data it was trained on, which also records the sha256 of the two model files. Evaluate, export,
explain, transfer and predict all load it from here, so none of them rebuilds a network from training params.

Nothing is trusted because of where it sits: a model is built from model.json in Keras' safe mode (no Lambda
bytecode), a directory that also holds a SavedModel (a graph that may run any op when loaded) is refused, and files
that differ from what dataset.json records (damaged, swapped, or described by another model's dataset.json) are
refused before Keras reads them."""

import json
from pathlib import Path

from . import artifacts, data
from .errors import PipelineError

ARCHITECTURE_FILE = "model.json"
WEIGHTS_FILE = "model.weights.h5"
SAVED_MODEL_FILE = "saved_model.pb"


class ModelFileError(PipelineError):
    pass


def save(directory, model, description: data.Description):
    """Write the three files. Each is byte-stable: the architecture is Keras' own serialization of an uncompiled
    copy (no optimizer, no date), the weights an .h5 of the layers' weights only."""
    import keras

    training_policy = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("float32")  # for the container; _as_saved sees to the layers
    try:
        clone = keras.models.clone_model(model, clone_function=_as_saved)
    finally:
        keras.mixed_precision.set_global_policy(training_policy)
    architecture = keras.saving.serialize_keras_object(clone)
    architecture.pop("compile_config", None)  # how it was trained is the training params' business
    # clone_model compiles the copy like its original, and save_weights would then store the optimizer's variables
    # too; the model load() builds from the architecture has none.
    bare = keras.saving.deserialize_keras_object(architecture, safe_mode=True)
    bare.set_weights(model.get_weights())
    artifacts.write_json(Path(directory, ARCHITECTURE_FILE), architecture)
    artifacts.write_atomically(Path(directory, WEIGHTS_FILE), lambda temp: bare.save_weights(str(temp)),
                               suffix=".weights.h5")
    describe(directory, description, [ARCHITECTURE_FILE, WEIGHTS_FILE])


def _as_saved(layer):
    # runtime.precision is a way of training (the weights are float32 either way): a saved model computes in
    # float32 wherever it is loaded, and its files do not depend on how it was trained. For the same reason a
    # project layer that only changes how a Keras layer trains (models.BatchNormalization) is saved as that layer.
    keras_class = next(cls for cls in type(layer).__mro__ if cls.__module__.split(".")[0] == "keras")
    return keras_class.from_config({**layer.get_config(), "dtype": "float32"})


def describe(directory, description: data.Description, files):
    """dataset.json beside the model `files` in `directory` (a model directory's two, or export's .tflite files),
    recording the sha256 of each."""
    data.save_description(directory, description, {name: artifacts.sha256_of(Path(directory, name)) for name in files})


def read_description(directory, files) -> data.Description:
    """The description in `directory`'s dataset.json, once each of `files` there is shown to be one it describes."""
    description, recorded = data.read_description(directory)
    described = Path(directory, data.DESCRIPTION_FILE)
    for name in files:
        if name not in recorded:
            raise ModelFileError(f"{described} does not describe {name} (it records "
                                 f"{', '.join(recorded) or 'no model files'}): it belongs to another model")
        if artifacts.sha256_of(Path(directory, name)) != recorded[name]:
            raise ModelFileError(f"{Path(directory, name)}: not the file {described} records (its sha256 differs): "
                                 "changed or damaged since it was saved, or dataset.json is another model's")
    return description


def check_fit(path, input_shape, outputs, description: data.Description):
    """The network at `path` takes images of the described shape and scores as many classes as are named."""
    described = "x".join(map(str, description.image_shape))
    if tuple(input_shape) != tuple(description.image_shape):
        raise ModelFileError(f"{path}: the network takes {'x'.join(map(str, input_shape))} images, but its "
                             f"{data.DESCRIPTION_FILE} describes {described} ones")
    if outputs != description.num_classes:
        raise ModelFileError(f"{path}: the network scores {outputs} classes, but its {data.DESCRIPTION_FILE} names "
                             f"{description.num_classes}")


def load(directory, expected: data.Description | None = None):
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
        architecture = artifacts.read_json(directory / ARCHITECTURE_FILE)
        model = keras.saving.deserialize_keras_object(architecture, safe_mode=True)
    except (ValueError, TypeError, KeyError, AttributeError, json.JSONDecodeError) as error:
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
