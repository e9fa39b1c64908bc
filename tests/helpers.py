"""Helpers the tests share."""

import sys
from pathlib import Path

import smoke

from mnist_pipeline import runtime


def start_runtime(seed=1, threads=2, deterministic=True, precision="float32", backend="tensorflow", first_cpu=0):
    """The runtime as a stage starts it, set by hand: call before anything imports Keras."""
    runtime.start(runtime.Runtime(threads=threads, deterministic=deterministic, precision=precision, backend=backend),
                  first_cpu=first_cpu)
    runtime.seed(seed)


def make(repo, target, *variables, env=None, check=True):
    """`make TARGET` in `repo` with the Makefile's own recipe, this interpreter's environment as its venv (not
    reinstalled); `variables` as NAME=VALUE."""
    venv = Path(sys.prefix)
    return smoke.run(repo, "make", "--no-print-directory", f"VENV={venv}", "-o", f"{venv}/.installed-requirements",
                     "-o", f"{venv}/.installed-requirements-dev", *variables, target, env=env, check=check)
