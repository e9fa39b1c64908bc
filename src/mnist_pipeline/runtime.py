"""Backend choice, thread pinning, determinism and seeding (params runtime), so the same code, params and data give
the same weights on one machine. A stage starts the runtime before it imports anything that imports Keras: Keras reads
its backend once, at import, and thread counts cannot change once TensorFlow or JAX has started."""

import os
import sys

from .errors import PipelineError
from .settings import Bool, Int, Section, Str


class Runtime(Section):
    threads = Int(min=1, max=256)  # TensorFlow's intra- and inter-op threads, or the CPUs JAX may use
    deterministic = Bool()  # TensorFlow's op determinism (JAX on CPU is deterministic as it is)
    precision = Str(choices=["float32", "mixed_bfloat16"])  # Keras' dtype policy for training
    backend = Str(choices=["tensorflow", "jax"])


class BackendError(PipelineError):
    pass


def start(settings: Runtime, threads: int | None = None, first_cpu: int = 0):
    """Select the backend, pin its threads (`threads` in place of runtime.threads where given: a tune worker's
    share), make it deterministic and set the dtype policy for the layers built afterwards (mixed_bfloat16: bf16
    arithmetic, float32 weights). `first_cpu`: where a JAX process's CPUs start (each tune worker takes its own)."""
    threads = settings.threads if threads is None else threads
    _select_backend(settings.backend)
    if settings.backend == "jax":
        _pin_jax(threads, settings.deterministic, first_cpu)
    import keras

    if settings.backend == "tensorflow":
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
        if settings.deterministic:
            tf.config.experimental.enable_op_determinism()
    keras.mixed_precision.set_global_policy(settings.precision)


def seed(value: int):
    """Seed every random number generator Keras, TensorFlow, JAX, NumPy and Python's random draw from."""
    import keras

    keras.utils.set_random_seed(value)


def _select_backend(backend):
    chosen = os.environ.get("KERAS_BACKEND")
    if chosen and chosen != backend:
        raise BackendError(f"KERAS_BACKEND={chosen} in the environment, but params runtime.backend is {backend}: "
                           f"unset it, or run with -S runtime.backend={chosen} so dvc.lock records the backend")
    if "keras" in sys.modules and sys.modules["keras"].backend.backend() != backend:
        raise BackendError(f"Keras was imported with the {sys.modules['keras'].backend.backend()} backend before "
                           f"the runtime could select {backend}")
    os.environ["KERAS_BACKEND"] = backend


def _pin_jax(threads, deterministic, first_cpu):
    """XLA has no thread-count setting for the CPU: it sizes its pools by the CPUs this process may use, so limit
    those to `threads`. Its CPU kernels are deterministic as they are; on GPUs a flag makes them so."""
    if "jax" in sys.modules:
        raise BackendError("JAX started before the runtime could pin its threads")
    usable = sorted(os.sched_getaffinity(0))
    if threads < len(usable):
        start = first_cpu % len(usable)
        os.sched_setaffinity(0, (usable + usable)[start:start + threads])
    if deterministic:
        os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} --xla_gpu_deterministic_ops=true".strip()
