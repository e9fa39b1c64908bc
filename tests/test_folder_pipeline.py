"""A folder of your own images through the whole smoke pipeline with real DVC: a generated RGB folder (32x32x3)
versioned with `dvc add`, trained, evaluated, exported, explained and predicted on by class name; then a second
version of the data, which reruns prepare and what follows, and which `dvc metrics diff` compares with the first."""

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import make_shapes
import numpy as np
import pytest
import smoke
import yaml
from smoke import stages_run

pytestmark = pytest.mark.pipeline
CLASSES = ["circle", "square", "triangle"]


def read_json(repo, path):
    return json.loads(Path(repo, path).read_text())


@pytest.fixture(scope="module")
def folder_run(tmp_path_factory):
    repo = smoke.make_scratch_repo(tmp_path_factory.mktemp("folder") / "repo")
    smoke.set_params(repo, {"data": {"dataset": "images", "images": {"folder": "data/images"}}})
    make_shapes.make(repo / "data" / "images", per_class=40, size=32, seed=1)
    smoke.dvc(repo, "add", "data/images")
    smoke.git(repo, "add", "--all")
    smoke.git(repo, "commit", "--quiet", "-m", "my images, version 1")
    output = smoke.dvc(repo, "repro").stdout
    smoke.git(repo, "add", "--all")
    smoke.git(repo, "commit", "--quiet", "-m", "results on version 1")
    return repo, output


def test_a_folder_of_rgb_images_runs_end_to_end_and_every_report_names_its_classes(folder_run, tmp_path):
    repo, output = folder_run
    assert stages_run(output) == list(smoke.STAGES)
    assert "download: nothing to fetch (prepare reads data/images)" in output
    assert smoke.dvc(repo, "status", "--json").stdout.strip() == "{}"
    description = read_json(repo, "data/prepared/dataset.json")
    assert description["class_names"] == CLASSES and description["image_shape"] == [32, 32, 3]
    counts = read_json(repo, "metrics/data.json")
    assert sum(counts[split]["count"] for split in ("train", "val", "test")) == 120
    with open(Path(repo, "metrics/per_class.csv"), newline="") as f:
        assert [row["class"] for row in csv.DictReader(f) if row["model"] == "tuned"] == CLASSES
    assert "| triangle |" in Path(repo, "metrics/report.md").read_text()
    assert read_json(repo, "metrics/transfer.json") == {}  # transfer.targets names no target for images
    assert Path(repo, "metrics/feature_maps/block1_activations.png").read_bytes()[:4] == b"\x89PNG"
    assert read_json(repo, "metrics/export.json")["int8_size_reduction"] > 2
    make_shapes.draw("square", 90, np.random.default_rng(5)).save(tmp_path / "a-square.png")
    for model in ("models/tuned", "models/export/int8.tflite"):
        result = subprocess.run([Path(sys.executable).with_name("mnist-predict"), "--json", "--model", model,
                                 str(tmp_path / "a-square.png")], cwd=repo, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        [row] = json.loads(result.stdout)
        assert row["label"] in CLASSES and [entry["label"] for entry in row["top"]] != []


def test_a_new_version_of_the_images_reruns_prepare_and_what_follows_and_diffs_against_the_first(folder_run,
                                                                                                  tmp_path):
    repo, _ = folder_run
    work = tmp_path / "repo"
    shutil.copytree(repo, work, symlinks=True)
    more = tmp_path / "more"
    make_shapes.make(more, per_class=15, size=32, seed=2)
    for path in more.rglob("*.png"):
        shutil.copy(path, work / "data" / "images" / path.parent.name / f"new-{path.name}")
    status = json.loads(smoke.dvc(work, "status", "--json").stdout)
    assert "data/images.dvc" in status
    smoke.dvc(work, "add", "data/images")
    status = json.loads(smoke.dvc(work, "status", "--json").stdout)
    changed = {path: how for change in status["prepare"] if isinstance(change, dict)
               for path, how in change.get("changed deps", {}).items()}
    assert changed == {"data/images": "modified"}
    output = smoke.dvc(work, "repro").stdout
    ran = stages_run(output)
    assert "download" not in ran and ran[:4] == ["prepare", "baseline", "tune", "retrain"]
    assert sum(read_json(work, "metrics/data.json")[split]["count"] for split in ("train", "val", "test")) == 165
    smoke.git(work, "add", "--all")
    smoke.git(work, "commit", "--quiet", "-m", "my images, version 2, and its results")
    diff = json.loads(smoke.dvc(work, "metrics", "diff", "HEAD~1", "HEAD", "--json").stdout)
    assert sum(diff["metrics/data_counts.json"][split]["diff"] for split in ("train", "val", "test")) == 45
    data_diff = json.loads(smoke.dvc(work, "diff", "HEAD~1", "--json").stdout)
    assert len([entry for entry in data_diff["added"] if entry["path"].startswith("data/images/")]) == 45


def test_the_digits_model_is_fine_tuned_on_a_few_labels_of_a_folder_against_training_from_scratch(smoke_run,
                                                                                                  tmp_path):
    """Transfer onto your images: the smoke run's MNIST model fine-tuned on a grey 28x28 folder of shapes (100 of
    each class here), against the same network from scratch; only the transfer stages and those after them rerun."""
    repo, _, env = smoke_run
    work = tmp_path / "repo"
    shutil.copytree(repo, work, symlinks=True)
    make_shapes.make(work / "data" / "images", per_class=100, size=28, seed=3)
    smoke.dvc(work, "add", "data/images")
    smoke.set_params(work, {"data": {"images": {"folder": "data/images", "image_shape": [28, 28, 1]}},
                            "transfer": {"targets": {"mnist": "images"}, "subsets": [60]}})
    output = smoke.dvc(work, "repro", env=env).stdout
    assert stages_run(output) == ["prepare", "transfer_download", "transfer_prepare", "transfer"]
    assert read_json(work, "data/transfer/prepared/dataset.json")["class_names"] == CLASSES
    assert set(read_json(work, "metrics/transfer.json")) == {"images_60"}
    with open(Path(work, "metrics/transfer.csv"), newline="") as f:
        rows = list(csv.DictReader(f))
    rules = yaml.safe_load((work / "params.yaml").read_text())["transfer"]["rules"]
    assert {(row["rule"], row["method"]) for row in rows} == {
        (rule, method) for rule in rules for method in ("fine_tuned", "from_scratch")}
    assert all(0 <= float(row["test_accuracy"]) <= 1 and int(row["steps"]) > 0 for row in rows)
    # The smoke run's digits model is one epoch old, so fine-tuning it is no sure win here; but the folder's labels
    # reach the training: trained to its best, some network does better than answering one class.
    assert max(float(row["test_accuracy"]) for row in rows if row["rule"] == "to_its_best") > 1 / 3 + 0.05
