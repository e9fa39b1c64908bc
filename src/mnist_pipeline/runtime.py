"""Backend choice, seeding and thread pinning, so the same code, params and data give the same weights on one
machine."""

import os
import sys

from .errors import PipelineError


class BackendError(PipelineError):
    pass


def configure(seed: int, threads: int, deterministic: bool, precision: str = "float32", backend: str = "tensorflow",
              first_cpu: int = 0):
    """Call before Keras is imported: Keras reads its backend once, at import, and thread counts cannot change once
    a runtime has started. `precision` is Keras' dtype policy for the layers built afterwards (mixed_bfloat16: bf16
    arithmetic, float32 weights). `first_cpu`: where a JAX process's CPUs start (each tune worker takes its own)."""
    _select_backend(backend)
    if backend == "jax":
        _pin_jax(threads, deterministic, first_cpu)
    import keras

    if backend == "tensorflow":
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
        if deterministic:
            tf.config.experimental.enable_op_determinism()
    keras.utils.set_random_seed(seed)
    keras.mixed_precision.set_global_policy(precision)


def _select_backend(backend):
    chosen = os.environ.get("KERAS_BACKEND")
    if chosen and chosen != backend:
        raise BackendError(f"KERAS_BACKEND={chosen} in the environment, but params runtime.backend is {backend}: "
                           f"unset it, or run with -S runtime.backend={chosen} so dvc.lock records the backend")
    if "keras" in sys.modules and sys.modules["keras"].backend.backend() != backend:
        raise BackendError(f"Keras was imported with the {sys.modules['keras'].backend.backend()} backend before "
                           f"runtime.configure could select {backend}")
    os.environ["KERAS_BACKEND"] = backend


def _pin_jax(threads, deterministic, first_cpu):
    """XLA has no thread-count setting for the CPU: it sizes its pools by the CPUs this process may use, so limit
    those to `threads`. Its CPU kernels are deterministic as they are; on GPUs a flag makes them so."""
    if "jax" in sys.modules:
        raise BackendError("JAX started before runtime.configure could pin its threads")
    usable = sorted(os.sched_getaffinity(0))
    if threads < len(usable):
        start = first_cpu % len(usable)
        os.sched_setaffinity(0, (usable + usable)[start:start + threads])
    if deterministic:
        os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} --xla_gpu_deterministic_ops=true".strip()


def reexec_with_fixed_hash_seed():
    """Keras Tuner writes a Python set into oracle.json; its order follows PYTHONHASHSEED, which only a new
    interpreter can change. Restart this script once with it fixed."""
    if os.environ.get("PYTHONHASHSEED") != "0":
        os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, "PYTHONHASHSEED": "0"})
