# Two entry points, both safe to rerun: `make repro` (the pipeline) and `make test` (the test suite); `make push`
# shares what repro made. Each first makes .venv from the pinned, hash-checked requirements.txt (the tests and tools
# add requirements-dev.txt) and installs the project into it (editable), reinstalling only when those change.

VENV := .venv
PYTHON ?= python3
STAMP := $(VENV)/.installed-requirements
DEV_STAMP := $(VENV)/.installed-requirements-dev
JAX_STAMP := $(VENV)/.installed-requirements-jax
PIP := $(VENV)/bin/python -m pip --disable-pip-version-check --quiet
# DVC runs each stage's `python ...` through the shell: put the environment's interpreter first on PATH.
export PATH := $(abspath $(VENV))/bin:$(PATH)

.PHONY: setup setup-dev setup-jax setup-gpu repro push serve test test-fast lint report bench smoke-check check-lock lock pr-report

setup: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install --require-hashes --no-deps -r requirements.txt
	$(PIP) install --no-deps --no-build-isolation --editable .
	cp requirements.txt $@

# The tests and tools (pytest, ruff, pip-tools, ...: the dev extra of pyproject.toml), on top of the above.
setup-dev: $(DEV_STAMP)

$(DEV_STAMP): $(STAMP) requirements-dev.txt
	$(PIP) install --require-hashes --no-deps -r requirements-dev.txt
	cp requirements-dev.txt $@

# The optional JAX backend (params runtime.backend: jax; docs/backends.md), on top of the above.
setup-jax: $(JAX_STAMP)

$(JAX_STAMP): $(STAMP) requirements-jax.txt
	$(PIP) install --require-hashes --no-deps -r requirements-jax.txt
	cp requirements-jax.txt $@

# JAX on an NVIDIA GPU (CUDA 12): JAX's own CUDA wheels, at the version requirements-jax.txt pins, on top of
# setup-jax; then -S runtime.backend=jax trains there (docs/backends.md). Nothing else depends on it.
setup-gpu: $(JAX_STAMP)
	$(PIP) install "jax[cuda12]==$$(sed -n 's/^jax==\([^ ]*\).*/\1/p' requirements-jax.txt)"

# What the DVC remote holds for this commit is fetched and verified, the rest computed (tools/pull.py says which, in
# one line); with no remote reachable, everything is computed here.
repro: setup
	python tools/pull.py || true
	dvc repro

# Store this checkout's outputs, and the run-cache (which run of which inputs made them), in the default remote.
push: setup
	dvc push --run-cache

# The exported int8 model behind TensorFlow Serving's REST API and a page to draw a digit, on 127.0.0.1:8501
# (docs/export.md; `mnist-serve --help` for the other models and settings). Needs make repro first.
serve: setup
	mnist-serve $(SERVE_ARGS)

# In two processes (pytest-xdist); `make test TEST_PROCESSES=0` runs the suite in a single process.
TEST_PROCESSES ?= 2
test: setup-dev
	python -m pytest --numprocesses $(TEST_PROCESSES)

# Everything but the tests marked `pipeline` (those run stages or DVC end to end): the loop while editing.
test-fast: setup-dev
	python -m pytest --numprocesses $(TEST_PROCESSES) -m "not pipeline"

lint: setup-dev
	ruff check .
	check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml

# The results tables of README.md and docs/ rebuilt from the committed metrics (a test fails when they disagree).
report: setup
	python tools/report.py

# Training throughput of both networks beside the same-run matmul peaks (docs/results.md lists the other benchmarks).
# Needs data/prepared (make repro or dvc pull).
bench: setup
	python benchmarks/benchmark_training.py $(BENCH_ARGS)

# The pull-request check, locally: the smoke pipeline twice in a scratch copy, with identical dvc.lock both times.
smoke-check: setup-dev
	python tools/smoke.py check $(SMOKE_ARGS)

# What this branch changes against BASE (a branch, tag or commit): pr-report/report.md and its images, as the
# pull-request workflow posts it (tools/pr_report.py).
BASE ?= main
pr-report: setup-dev
	python tools/pr_report.py --base $(BASE)

# Is the committed dvc.lock true to the code, params and commands? (Missing data is fine; a stale record is not.)
check-lock: setup
	python tools/check_lock.py

# Re-pin the locks from the ranges pyproject.toml declares, with every hash: requirements.txt (the runtime), and
# constrained by it requirements-dev.txt (the tests and tools) and requirements-jax.txt (the JAX backend).
COMPILE := pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras --no-emit-index-url --no-emit-find-links
lock: setup-dev
	$(COMPILE) --extra serve --extra pipeline --output-file requirements.txt pyproject.toml
	$(COMPILE) --extra dev --constraint requirements.txt --output-file requirements-dev.txt pyproject.toml
	$(COMPILE) --extra jax --constraint requirements.txt --output-file requirements-jax.txt pyproject.toml
	cp requirements.txt $(STAMP)
	cp requirements-dev.txt $(DEV_STAMP)
