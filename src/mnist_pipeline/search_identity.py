"""A search's identity: everything that decides its trials' results, and the fingerprint that names its directory in
the workspace. Any change to it starts a fresh search; an interrupted run of the same search resumes."""

import hashlib
import importlib
import importlib.metadata
import json
import os
import sys
from pathlib import Path

import keras
import keras_tuner as kt
import numpy as np

from .search_settings import NOT_IN_RESULTS, Tune

# Environment variables that change what TensorFlow, XLA (JAX) or Keras compute (TF_CPP_* only set log levels).
SWITCH_PREFIXES = ("TF_", "XLA_", "JAX_", "KERAS_")


def plain(value):
    """Settings as JSON holds them: sections as objects, tuples as lists."""
    if hasattr(value, "FIELDS"):
        return {name: plain(item) for name, item in vars(value).items()}
    if isinstance(value, dict):
        return {name: plain(item) for name, item in value.items()}
    return [plain(item) for item in value] if isinstance(value, tuple) else value


def _sha256(path):
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def search_identity(settings: Tune, space: dict, runtime_settings, augmentation_settings, data_files) -> dict:
    """tune params (but NOT_IN_RESULTS), the recipe's space, runtime params, the augmentation the trials train with
    (None for none), the code of every library module loaded and of the stage script (the modules tune imports, as
    dvc.yaml declares them), library versions, the backend's threads and switches, and the data. Call it once the
    stage has imported everything it uses."""
    code = {name: _sha256(module.__file__) for name, module in sorted(sys.modules.items())
            if (name == "__main__" or name.split(".")[0] == "mnist_pipeline") and getattr(module, "__file__", None)}
    backend = keras.backend.backend()
    tune = {key: value for key, value in plain(settings).items() if key not in NOT_IN_RESULTS}
    return {
        "params": {"tune": {**tune, "space": space}, "runtime": plain(runtime_settings),
                   "augmentation": plain(augmentation_settings)},
        "code": code,
        "libraries": {backend: importlib.import_module(backend).__version__, "keras": keras.__version__,
                      "keras_tuner": kt.__version__,
                      "numpy": np.__version__,  # and what Bayesian optimization's Gaussian process runs on:
                      "scikit-learn": importlib.metadata.version("scikit-learn"),
                      "scipy": importlib.metadata.version("scipy")},
        "backend": {
            "keras_backend": backend,
            **_threads(backend),
            "floatx": keras.config.floatx(),
            "environment": {name: value for name, value in sorted(os.environ.items())
                            if name.startswith(SWITCH_PREFIXES) and not name.startswith("TF_CPP_")},
        },
        "data": {Path(path).name: _sha256(path) for path in data_files},
    }


def _threads(backend):
    if backend == "tensorflow":
        import tensorflow as tf

        return {"intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
                "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads()}
    return {"usable_cpus": len(os.sched_getaffinity(0))}


def fingerprint(identity: dict) -> str:
    """Any change to the identity gives a new fingerprint, so a fresh search: old trials are never silently reused."""
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]
