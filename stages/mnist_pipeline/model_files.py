"""A trained model as a directory that needs nothing else to be used: its Keras architecture, its weights and the
description of the data it was trained on. Evaluate, export, explain, transfer and predict all load it from here,
so none of them rebuilds a network from training params."""

import json
from pathlib import Path

from . import artifacts, data
from .errors import PipelineError

ARCHITECTURE_FILE = "model.json"
WEIGHTS_FILE = "model.weights.h5"


class ModelFileError(PipelineError):
    pass


def save(directory, model, description: data.Description):
    """Write the three files. Each is byte-stable: the architecture is Keras' own serialization of an uncompiled
    copy (no optimizer, no date), the weights an .h5 of the layers only."""
    import keras

    training_policy = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("float32")  # for the container; _as_saved sees to the layers
    try:
        bare = keras.models.clone_model(model, clone_function=_as_saved)
    finally:
        keras.mixed_precision.set_global_policy(training_policy)
    bare.set_weights(model.get_weights())
    architecture = keras.saving.serialize_keras_object(bare)
    architecture.pop("compile_config", None)  # how it was trained is the training params' business
    artifacts.write_json(Path(directory, ARCHITECTURE_FILE), architecture)
    artifacts.write_atomically(Path(directory, WEIGHTS_FILE), lambda temp: bare.save_weights(str(temp)),
                               suffix=".weights.h5")
    data.save_description(directory, description)


def _as_saved(layer):
    # runtime.precision is a way of training (the weights are float32 either way): a saved model computes in
    # float32 wherever it is loaded, and its files do not depend on how it was trained. For the same reason a
    # project layer that only changes how a Keras layer trains (models.BatchNormalization) is saved as that layer.
    keras_class = next(cls for cls in type(layer).__mro__ if cls.__module__.split(".")[0] == "keras")
    return keras_class.from_config({**layer.get_config(), "dtype": "float32"})


def load(directory, expected: data.Description | None = None):
    """(model, description), refusing a model trained on other data than `expected` describes. Keras' safe mode
    refuses an architecture that would run code of its own (a Lambda layer's bytecode), so a model directory from
    elsewhere cannot execute anything on load."""
    import keras

    directory = Path(directory)
    if not Path(directory, ARCHITECTURE_FILE).is_file():
        raise ModelFileError(f"{directory} is not a model directory: it has no {ARCHITECTURE_FILE}")
    try:
        architecture = artifacts.read_json(directory / ARCHITECTURE_FILE)
        model = keras.saving.deserialize_keras_object(architecture, safe_mode=True)
        model.load_weights(directory / WEIGHTS_FILE)
        description = data.load_description(directory)
    except (ValueError, TypeError, KeyError, json.JSONDecodeError) as error:
        raise ModelFileError(f"{directory}: cannot load the model: {error}") from None
    if expected is not None and description != expected:
        raise ModelFileError(f"{directory} was trained on {description.title} {description.image_shape}, not on "
                             f"{expected.title} {expected.image_shape} as the data given")
    return model, description
