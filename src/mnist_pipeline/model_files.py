"""A trained model as a directory that needs nothing else to be used: its Keras architecture (model.json), its weights
(model.weights.h5) and the description of the data it was trained on (dataset.json), which also records the sha256 of
the two model files. Writing one is here; reading one safely is model_loading.py's."""

import hashlib
from pathlib import Path

from . import outputs, prepared
from .model_format import ARCHITECTURE_FILE, WEIGHTS_FILE


def save(directory, model, description: prepared.Description, **card):
    """Write the three files. Each is byte-stable: the architecture is Keras' own serialization of an uncompiled
    copy (no optimizer, no date), the weights an .h5 of the layers' weights only. `card`: what dataset.json records
    of the model besides (its temperature, its validation accuracy: model_loading.Card)."""
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
    outputs.write_json(Path(directory, ARCHITECTURE_FILE), architecture)
    outputs.write_atomically(Path(directory, WEIGHTS_FILE), lambda temp: bare.save_weights(str(temp)),
                             suffix=".weights.h5")
    describe(directory, description, [ARCHITECTURE_FILE, WEIGHTS_FILE], **card)


def _as_saved(layer):
    # runtime.precision is a way of training (the weights are float32 either way): a saved model computes in
    # float32 wherever it is loaded, and its files do not depend on how it was trained. For the same reason a
    # project layer that only changes how a Keras layer trains (cnn.BatchNormalization) is saved as that layer.
    keras_class = next(cls for cls in type(layer).__mro__ if cls.__module__.split(".")[0] == "keras")
    return keras_class.from_config({**layer.get_config(), "dtype": "float32"})


def describe(directory, description: prepared.Description, files, **card):
    """dataset.json beside the model `files` in `directory` (a model directory's two, or export's .tflite files),
    recording the sha256 of each (files this process has just written) and the model's `card`."""
    prepared.save_description(directory, description, {name: _sha256(Path(directory, name)) for name in files},
                              **card)


def _sha256(path):
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()
