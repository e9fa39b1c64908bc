"""The Keras backend as a param (runtime.backend): TensorFlow by default, JAX where requirements-jax.txt is
installed. The JAX tests are skipped, with the reason, where it is not."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import smoke
import yaml

REPO = Path(__file__).resolve().parents[1]
TRAINING_STAGES = ["baseline", "tune", "retrain", "evaluate", "transfer", "export", "explain"]


def test_a_keras_backend_in_the_environment_that_the_params_do_not_name_is_refused():
    result = subprocess.run([sys.executable, "stages/baseline.py", "--data", "no-data", "--checkpoints", "c",
                             "--model", "m", "--history", "h", "--metrics", "x", "--timing", "t"],
                            cwd=REPO, env=smoke.environment({"KERAS_BACKEND": "jax"}), capture_output=True, text=True)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "baseline: error: KERAS_BACKEND=jax in the environment, but params runtime.backend is tensorflow: unset it, "
        "or run with -S runtime.backend=jax so dvc.lock records the backend")


PINNED = """
import os, sys
from mnist_pipeline import runtime
runtime.start(runtime.Runtime(threads=1, deterministic=True, precision="float32", backend="jax"),
              first_cpu=int(sys.argv[1]))
import jax, keras
print(sorted(os.sched_getaffinity(0)), keras.backend.backend(), jax.devices()[0].platform)
"""


def test_a_jax_process_computes_on_runtime_threads_cpus_from_its_first_cpu():
    pytest.importorskip("jax", reason="the JAX backend is optional: make setup-jax")
    usable = sorted(os.sched_getaffinity(0))
    if len(usable) < 2:
        pytest.skip("needs two CPUs to pin one")
    env = smoke.environment()
    for first_cpu, expected in ((0, usable[:1]), (1, usable[1:2])):
        result = subprocess.run([sys.executable, "-c", PINNED, str(first_cpu)], env=env, capture_output=True,
                                text=True)
        assert result.returncode == 0, result.stderr[-2000:]
        assert result.stdout.split("\n")[-2] == f"{expected} jax cpu"


@pytest.mark.pipeline
def test_switching_the_smoke_pipeline_to_jax_reruns_what_trains_and_both_results_stay_in_the_cache(scratch):
    pytest.importorskip("jax", reason="the JAX backend is optional: make setup-jax")
    repo, env = scratch
    tensorflow_lock = Path(repo, "dvc.lock").read_text()
    # One search trial: JAX compiles each trial's network anew, and one shows the search runs under it.
    smoke.set_params(repo, {"runtime": {"backend": "jax"}, "tune": {"random": {"max_trials": 1}}})
    output = smoke.dvc(repo, "repro", env=env).stdout
    assert smoke.stages_run(output) == TRAINING_STAGES
    assert smoke.dvc(repo, "status", "--json").stdout.strip() == "{}"
    lock = yaml.safe_load(Path(repo, "dvc.lock").read_text())
    for stage in TRAINING_STAGES:
        assert lock["stages"][stage]["params"]["params.yaml"]["runtime"]["backend"] == "jax"

    search = next(Path(repo, smoke.TUNER_WORKSPACE).glob("*/search.json"))
    assert json.loads(search.read_text())["backend"]["keras_backend"] == "jax"
    accuracy = json.loads(Path(repo, "metrics/evaluate.json").read_text())
    assert min(accuracy["tuned"]["test_accuracy"], accuracy["baseline"]["test_accuracy"]) > 0.5
    # The SavedModel and the float32 TFLite model are exported from JAX through jax2tf: the same predictions.
    export = json.loads(Path(repo, "metrics/export_formats.json").read_text())
    assert export["keras"]["test_accuracy"] == export["saved_model"]["test_accuracy"]
    assert abs(export["keras"]["test_accuracy"] - export["tflite_float32"]["test_accuracy"]) <= 0.0005
    assert export["int8_agrees_with_float32"] > 0.95

    # Byte-identical on a rerun, like TensorFlow: retrain, which trains with augmentation.
    jax_lock = Path(repo, "dvc.lock").read_text()
    smoke.dvc(repo, "repro", "--force", "--single-item", "retrain", env=env)
    assert Path(repo, "dvc.lock").read_text() == jax_lock

    # Back to TensorFlow (git's files: params, lock and the metrics kept in git): its outputs come back from the
    # cache, nothing trains.
    smoke.git(repo, "checkout", "--", ".")
    smoke.dvc(repo, "checkout", env=env)
    assert Path(repo, "dvc.lock").read_text() == tensorflow_lock
    assert smoke.stages_run(smoke.dvc(repo, "repro", env=env).stdout) == []


# On a machine with JAX's CUDA wheels but no TensorFlow, `import tensorflow` fails; here, where TensorFlow is
# installed, this module on the import path (as sitecustomize, which Python imports at start-up) makes it fail the
# same way in every process.
NO_TENSORFLOW = """
import sys


class NoTensorFlow:
    @staticmethod
    def find_spec(name, path=None, target=None):
        if name.partition(".")[0] == "tensorflow":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, NoTensorFlow)
"""


@pytest.mark.pipeline
def test_the_jax_pipeline_benchmark_runs_every_stage_but_export_where_tensorflow_is_missing(tmp_path, local_data):
    pytest.importorskip("jax", reason="the JAX backend is optional: make setup-jax")
    Path(tmp_path, "sitecustomize.py").write_text(NO_TENSORFLOW)
    out = tmp_path / "jax_pipeline.csv"
    command = [sys.executable, "benchmarks/jax_pipeline.py", "--overrides", "tools/smoke-params.yaml",
               "--set", "tune.random.max_trials=1", "--set", "transfer.rules=[to_its_best]", "--out", str(out)]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True,
                            env=smoke.environment({**local_data,
                                                   "PYTHONPATH": f"{tmp_path}{os.pathsep}{REPO / 'src'}"}))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "export: left out (needs TensorFlow)" in result.stdout
    [row] = csv.DictReader(out.open())
    assert list(json.loads(row["stages"])) == [stage for stage in smoke.STAGES if stage != "export"]
    assert row["device"] == "cpu" and row["left_out"] == "export"
    assert row["settings"] == " ".join(command[2:-2])
    assert float(row["tuned_test_accuracy"]) > 0.5
    # the total is the stages' seconds (each rounded to 0.1 s) and nothing else of note
    assert sum(json.loads(row["stages"]).values()) == pytest.approx(float(row["seconds"]), abs=1.0)
