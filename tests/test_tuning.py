"""The tune stage for real, as a subprocess, on a few hundred real digits."""

import csv
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from mnist_pipeline import artifacts, data

import smoke

REPO = Path(__file__).resolve().parents[1]
FIXED_SPACE = {
    "conv1_filters": {"choice": [8]}, "conv1_kernel": {"choice": [3]},
    "conv2_filters": {"choice": [16]}, "conv2_kernel": {"choice": [3]},
    "extra_conv": {"choice": [False]}, "conv3_filters": {"choice": [16]}, "conv3_kernel": {"choice": [3]},
    "batch_norm": {"choice": [False]}, "dense_units": {"choice": [32]}, "dropout": {"choice": [0.0]},
    "batch_size": {"choice": [64]},
}


@pytest.fixture(scope="module")
def tiny_prepared(raw_mnist_dir, tmp_path_factory):
    images, labels = data.read_raw_split(raw_mnist_dir, "train")
    out = tmp_path_factory.mktemp("prepared")
    for split, rows in (("train", slice(0, 600)), ("val", slice(600, 800))):
        artifacts.save_arrays(out / f"{split}.npz", x=data.normalize(images[rows]), y=labels[rows].astype("int64"))
    return out


def write_params_with_tune(workdir, tune):
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    (workdir / "params.yaml").write_text(yaml.safe_dump({**params, "tune": tune}))


def run_tune(workdir, prepared, learning_rates, max_trials):
    tune = {"max_trials": max_trials, "epochs": 2, "train_subset": 0, "seed": 11,
            "space": {**FIXED_SPACE, "learning_rate": {"choice": learning_rates}}}
    write_params_with_tune(workdir, tune)
    outputs = {name: workdir / name for name in ("best.json", "trials.csv", "tune.json", "timing.json")}
    result = subprocess.run(
        [sys.executable, str(REPO / "stages" / "tune.py"), "--data", str(prepared), "--workspace",
         str(workdir / "search"), "--best", str(outputs["best.json"]), "--trials", str(outputs["trials.csv"]),
         "--metrics", str(outputs["tune.json"]), "--timing", str(outputs["timing.json"])],
        cwd=workdir, capture_output=True, text=True, env=smoke.environment())
    assert result.returncode == 0, result.stderr[-3000:]
    with open(outputs["trials.csv"], newline="") as f:
        trials = list(csv.DictReader(f))
    return result, trials, {name: json.loads(outputs[name].read_text()) for name in ("best.json", "tune.json",
                                                                                     "timing.json")}


def test_a_diverging_trial_is_recorded_as_failed_and_the_search_goes_on(tiny_prepared, tmp_path):
    # Only the learning rate varies, so the search tries both values and then has nothing left to sample.
    _, trials, results = run_tune(tmp_path, tiny_prepared, [0.002, 1.0e38], max_trials=3)
    by_rate = {float(row["learning_rate"]): row for row in trials}
    assert sorted(by_rate) == [0.002, 1.0e38]
    assert by_rate[1.0e38]["status"] == "FAILED" and by_rate[1.0e38]["val_accuracy"] == ""
    assert re.search(r"training loss became (nan|inf) in epoch 1", by_rate[1.0e38]["error"])
    assert by_rate[0.002]["status"] == "COMPLETED" and 0.1 < float(by_rate[0.002]["val_accuracy"]) <= 1.0
    assert by_rate[0.002]["epochs"] == "2" and by_rate[0.002]["error"] == ""
    assert results["best.json"]["learning_rate"] == 0.002
    assert results["best.json"]["conv1_filters"] == 8 and results["best.json"]["extra_conv"] is False
    assert results["tune.json"]["trials_completed"] == 1 and results["tune.json"]["trials_failed"] == 1
    assert results["tune.json"]["best_val_accuracy"] == pytest.approx(float(by_rate[0.002]["val_accuracy"]))
    assert set(results["timing.json"]["trial_seconds"]) == {row["trial"] for row in trials}


def test_a_rerun_resumes_and_a_changed_space_starts_fresh(tiny_prepared, tmp_path):
    first_output, first_trials, first = run_tune(tmp_path, tiny_prepared, [0.001], max_trials=1)
    assert "resuming" not in first_output.stdout
    [project] = [p for p in (tmp_path / "search").iterdir() if p.is_dir()]

    again_output, again_trials, again = run_tune(tmp_path, tiny_prepared, [0.001], max_trials=1)
    assert "1 finished trial(s) reused" in again_output.stdout
    assert again["timing.json"]["trial_seconds"] == {}  # nothing was trained a second time
    assert again_trials == first_trials and again["best.json"] == first["best.json"]

    changed_output, _, changed = run_tune(tmp_path, tiny_prepared, [0.003], max_trials=1)
    assert "resuming" not in changed_output.stdout
    assert changed["best.json"]["learning_rate"] == 0.003
    assert not project.exists(), "the old search's directory should have been removed"


def test_the_builder_and_the_space_must_agree(tiny_prepared, tmp_path):
    tune = yaml.safe_load((REPO / "params.yaml").read_text())["tune"]
    write_params_with_tune(tmp_path, {**tune, "space": {**FIXED_SPACE, "learning_rate": {"choice": [0.001]},
                                                        "momentum": {"choice": [0.9]}}})
    result = subprocess.run(
        [sys.executable, str(REPO / "stages" / "tune.py"), *(arg for name in ("data", "workspace", "best", "trials",
                                                                            "metrics", "timing")
                                                           for arg in (f"--{name}", str(tmp_path / name)))],
        cwd=tmp_path, capture_output=True, text=True, env=smoke.environment())
    assert result.returncode == 1
    assert "tune.space.momentum: build_cnn_model does not use this hyperparameter" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml"]
