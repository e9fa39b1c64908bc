"""Nothing documented rots: every `make` target runs in some test (or in .ci/run, which runs the suite), and every
script a page of README.md or docs/ tells a reader to run answers at least `--help`."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
import smoke
from helpers import make

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
TARGETS = re.findall(r"^([a-z][\w-]*):", (REPO / "Makefile").read_text(), re.M)
SCRIPTS = sorted({found for page in PAGES for found in
                  re.findall(r"python ((?:tools|benchmarks|studies|stages)/\w+\.py)", page.read_text())})

# Where each target of the Makefile runs for real: a test (file::name, smoke size where it would take long), or
# .ci/run itself.
RUN_BY = {
    "setup": ".ci/run",  # `make lint`, its first target, makes the environment (setup-dev on top of setup)
    "setup-jax": ".ci/run",
    "test": ".ci/run",
    "repro": "test_remote.py::test_a_fresh_clone_pulls_what_the_remote_holds_and_reruns_nothing",
    "push": "test_remote.py::test_make_push_stores_every_output_and_the_run_cache",
    "serve": "test_documented.py::test_make_serve_serves_the_exported_model",
    "test-fast": "test_documented.py::test_make_test_fast_runs_the_suite_without_the_pipeline_tests",
    "lint": "test_documented.py::test_make_lint_check_lock_and_report_pass_on_the_committed_tree",
    "report": "test_documented.py::test_make_lint_check_lock_and_report_pass_on_the_committed_tree",
    "check-lock": "test_documented.py::test_make_lint_check_lock_and_report_pass_on_the_committed_tree",
    "bench": "test_documented.py::test_make_bench_measures_both_networks_on_a_few_hundred_images",
    "smoke-check": "test_pipeline.py::test_make_smoke_check_on_fashion_mnist_names_its_classes_and_reruns_the_same",
    "lock": "test_documented.py::test_make_lock_would_pin_what_pyproject_declares",
    "setup-dev": ".ci/run",
    "setup-gpu": "test_documented.py::test_make_setup_gpu_would_install_jax_s_cuda_wheels_at_the_pinned_version",
    "pr-report": "test_pr_report.py::test_make_pr_report_shows_what_a_branch_changes_against_its_base",
}


def test_every_make_target_is_run_somewhere_that_exists():
    assert sorted(TARGETS) == sorted(RUN_BY)
    ci = (REPO / ".ci/run").read_text()
    for target, where in RUN_BY.items():
        if where == ".ci/run":
            # setup and setup-dev run as what `make lint`, its first target, needs
            assert target in ("setup", "setup-dev") or f"make {target}" in ci, target
            continue
        file, name = where.split("::")
        assert re.search(rf"^def {name}\(", (REPO / "tests" / file).read_text(), re.M), where


@pytest.mark.parametrize("script", SCRIPTS)
def test_every_script_the_docs_name_answers_help(script):
    result = subprocess.run([sys.executable, str(REPO / script), "--help"], capture_output=True, text=True,
                            cwd=REPO, env=smoke.environment(), timeout=120)
    assert result.returncode == 0 and "usage:" in result.stdout, result.stderr[-2000:]


def test_every_test_the_docs_name_exists():
    defined = {name for path in (REPO / "tests").glob("test_*.py")
               for name in re.findall(r"^def (test_\w+)\(", path.read_text(), re.M)}
    named = {name for page in PAGES
             for name in re.findall(r"`(?:test_\w+\.py::)?(test_\w+)(?!\w|\.py)", page.read_text())}
    assert sorted(named - defined) == []


def test_make_lint_check_lock_and_report_pass_on_the_committed_tree(tmp_path):
    for target in ("lint", "check-lock"):
        make(REPO, target)
    copy = tmp_path / "copy"
    for name in smoke.project_files():
        (copy / name).parent.mkdir(parents=True, exist_ok=True)
        (copy / name).write_bytes((REPO / name).read_bytes())
    subprocess.run(["git", "init", "-q", str(copy)], check=True)  # DVC reads dvc.yaml in a repository, as a clone is
    make(copy, "report")
    changed = [name for name in smoke.project_files() if (copy / name).read_bytes() != (REPO / name).read_bytes()]
    assert changed == [], "make report rewrote tables: run it and commit"


def test_make_test_fast_runs_the_suite_without_the_pipeline_tests():
    result = make(REPO, "test-fast", "TEST_PROCESSES=0",
                  env={"PYTEST_ADDOPTS": "-p no:cacheprovider -q -k test_the_readme_is_a_guide_of_at_most_25_kb"})
    assert re.search(r"\b1 passed\b", result.stdout) and "deselected" in result.stdout


LOCKS = {"requirements.txt": ["serve", "pipeline"], "requirements-dev.txt": ["dev"], "requirements-jax.txt": ["jax"]}


def test_make_lock_would_pin_what_pyproject_declares():
    """The recipe, dry-run (resolving from the index takes minutes), and the committed locks against pyproject.toml:
    every dependency it declares pinned, in the lock of its extra, at a version in its range; the runtime lock holds
    no development tool; the locks agree on every package they share."""
    import tomllib

    from packaging.requirements import Requirement

    dry = make(REPO, "lock", "-n").stdout
    assert "pip-compile" in dry and "--generate-hashes" in dry
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]

    def pins(lock):
        found = re.findall(r"^([\w.-]+)==([^\s;\\]+)", (REPO / lock).read_text(), re.M)
        return {name.lower().replace("_", "-"): version for name, version in found}

    locks = {lock: pins(lock) for lock in LOCKS}
    for lock, extras in LOCKS.items():
        extras_declared = [line for extra in extras for line in project["optional-dependencies"][extra]]
        for line in project["dependencies"] + extras_declared:
            wanted = Requirement(line)
            assert wanted.specifier.contains(locks[lock][wanted.name.lower()]), (lock, line)
    development = {Requirement(line).name.lower() for line in project["optional-dependencies"]["dev"]}
    assert not development & set(locks["requirements.txt"])
    for lock in ("requirements-dev.txt", "requirements-jax.txt"):
        shared = set(locks[lock]) & set(locks["requirements.txt"])
        assert {name: locks[lock][name] for name in shared} == {name: locks["requirements.txt"][name]
                                                                 for name in shared}


def test_make_setup_gpu_would_install_jax_s_cuda_wheels_at_the_pinned_version():
    """Dry-run: no GPU here, and the CUDA wheels are gigabytes. The command it would run names the pinned version."""
    pinned = re.search(r"^jax==(\S+)", (REPO / "requirements-jax.txt").read_text(), re.M).group(1)
    dry = make(REPO, "setup-gpu", "-n", "-o", f"{sys.prefix}/.installed-requirements-jax").stdout
    command = next(line for line in dry.splitlines() if "jax[cuda12]" in line)
    shown = subprocess.run(["bash", "-c", f"echo {command.split(' install ', 1)[1]}"], cwd=REPO, capture_output=True,
                           text=True, check=True).stdout.strip()
    assert shown == f"jax[cuda12]=={pinned}"


@pytest.mark.pipeline
def test_make_bench_measures_both_networks_on_a_few_hundred_images(smoke_run):
    repo, _, _ = smoke_run
    result = make(REPO, "bench", f"BENCH_ARGS=--prepared {repo / 'data/prepared'} --images 256 --repeats 1")
    assert result.stdout.count("images/s") or "images per second" in result.stdout, result.stdout[-2000:]


@pytest.mark.pipeline
def test_make_serve_serves_the_exported_model(smoke_run):
    import http.client
    import json
    import os
    import signal
    import socket
    import time

    repo, _, _ = smoke_run
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    venv = Path(sys.prefix)
    process = subprocess.Popen(["make", "--no-print-directory", f"VENV={venv}", "-o",
                                f"{venv}/.installed-requirements", "serve", f"SERVE_ARGS=--port {port}"], cwd=repo,
                               env=smoke.environment(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True)
    try:
        deadline, status = time.monotonic() + 60, None
        while time.monotonic() < deadline and status is None:
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                connection.request("GET", "/v1/models/mnist")
                status = json.loads(connection.getresponse().read())
            except OSError:
                time.sleep(0.2)
        assert status["model_version_status"][0]["state"] == "AVAILABLE"
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        output = process.communicate(timeout=20)[0]
    assert "models/export/int8.tflite (MNIST)" in output and "Traceback" not in output
