"""Seeding and thread pinning, so the same code, params and data give the same weights on one machine."""

import os
import sys


def configure(seed: int, threads: int, deterministic: bool, precision: str = "float32"):
    """Call before any TensorFlow op runs: thread counts cannot change once the runtime has started. `precision` is
    Keras' dtype policy for the layers built afterwards (mixed_bfloat16: bf16 arithmetic, float32 weights)."""
    import keras
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    keras.utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()
    keras.mixed_precision.set_global_policy(precision)


def reexec_with_fixed_hash_seed():
    """Keras Tuner writes a Python set into oracle.json; its order follows PYTHONHASHSEED, which only a new
    interpreter can change. Restart this script once with it fixed."""
    if os.environ.get("PYTHONHASHSEED") != "0":
        os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, "PYTHONHASHSEED": "0"})
