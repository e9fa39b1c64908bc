"""Helpers the tests share."""

from mnist_pipeline import runtime


def start_runtime(seed=1, threads=2, deterministic=True, precision="float32", backend="tensorflow", first_cpu=0):
    """The runtime as a stage starts it, set by hand: call before anything imports Keras."""
    runtime.start(runtime.Runtime(threads=threads, deterministic=deterministic, precision=precision, backend=backend),
                  first_cpu=first_cpu)
    runtime.seed(seed)
