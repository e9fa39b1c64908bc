"""The tune stage for real, as a subprocess, on a few hundred real digits."""

import csv
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import smoke
import yaml

from mnist_pipeline import datasets, preparation, prepared, search_settings, search_workers, search_workspace
from mnist_pipeline.errors import PipelineError

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
    mnist = datasets.DATASETS["mnist"]
    images, labels = mnist.read_split(raw_mnist_dir, "train")
    out = tmp_path_factory.mktemp("prepared")
    for split, rows in (("train", np.arange(0, 600)), ("val", np.arange(600, 800))):
        preparation.write_split(out, split, images, rows, labels[rows])
    prepared.save_description(out, mnist.describe())
    return out


def write_params_with_tune(workdir, tune, space):
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["recipes"]["mnist"]["space"] = space
    (workdir / "params.yaml").write_text(yaml.safe_dump({**params, "tune": tune}))


OUTPUTS = ("best.json", "trials.csv", "progress.csv", "tune.json", "timing.json")


def tune_command(workdir, prepared, learning_rates, max_trials, workspace=None, epochs=2, algorithm="random",
                 settings=None, workers=0, silence=60):
    """Write params for a search over `learning_rates` only (with `algorithm` and its `settings` over the defaults)
    and return the command that runs the tune stage."""
    defaults = yaml.safe_load((REPO / "params.yaml").read_text())["tune"]
    tune = {**defaults, "algorithm": algorithm, "workers": workers, "worker_silence_seconds": silence,
            "epochs": epochs, "train_subset": 0, "seed": 11,
            "random": {"max_trials": max_trials}}
    tune[algorithm] = {**tune[algorithm], **(settings or {})}
    write_params_with_tune(workdir, tune, {**FIXED_SPACE, "learning_rate": {"choice": learning_rates}})
    return [sys.executable, str(REPO / "stages" / "tune.py"), "--data", str(prepared),
            "--workspace", str(workspace or workdir / "search"), "--best", str(workdir / "best.json"),
            "--trials", str(workdir / "trials.csv"), "--progress", str(workdir / "progress.csv"),
            "--metrics", str(workdir / "tune.json"), "--timing", str(workdir / "timing.json")]


def run_stage(workdir, command):
    return subprocess.run(command, cwd=workdir, capture_output=True, text=True, env=smoke.environment())


def run_tune(workdir, prepared, learning_rates, max_trials, **kwargs):
    result = run_stage(workdir, tune_command(workdir, prepared, learning_rates, max_trials, **kwargs))
    assert result.returncode == 0, result.stderr[-3000:]
    outputs = {name: workdir / name for name in OUTPUTS}
    with open(outputs["trials.csv"], newline="") as f:
        trials = list(csv.DictReader(f))
    return result, trials, {name: json.loads(outputs[name].read_text()) for name in ("best.json", "tune.json",
                                                                                     "timing.json")}


@pytest.mark.pipeline
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


@pytest.mark.pipeline
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


RESULT_FILES = ("best.json", "trials.csv", "progress.csv", "tune.json")


@pytest.mark.pipeline
@pytest.mark.parametrize("algorithm, settings", [
    ("hyperband", {"max_epochs": 3, "factor": 3, "iterations": 1}),
    ("bayesian", {"max_trials": 4, "num_initial_points": 2}),
])
def test_each_algorithm_searches_and_a_fresh_or_resumed_rerun_gives_the_same_bytes(tiny_prepared, tmp_path, algorithm,
                                                                         settings):
    rates = [0.0005, 0.001, 0.0015, 0.002, 0.003, 0.004]
    _, trials, results = run_tune(tmp_path, tiny_prepared, rates, max_trials=1, algorithm=algorithm, settings=settings)
    first = {name: (tmp_path / name).read_bytes() for name in RESULT_FILES}

    assert results["tune.json"]["algorithm"] == algorithm
    assert results["tune.json"]["epochs_spent"] == sum(int(row["epochs"]) for row in trials)
    space = yaml.safe_load((REPO / "params.yaml").read_text())["recipes"]["mnist"]["space"]
    assert sorted(results["best.json"]) == sorted(space)
    with open(tmp_path / "progress.csv", newline="") as f:
        progress = list(csv.DictReader(f))
    spent = [int(row["epochs_spent"]) for row in progress]
    best_so_far = [float(row["best_val_accuracy"]) for row in progress]
    assert spent == sorted(spent) and best_so_far == sorted(best_so_far)
    assert best_so_far[-1] == results["tune.json"]["best_val_accuracy"]
    if algorithm == "hyperband":
        # Bracket 1 trains 3 models for 1 epoch and carries the best one on to 3 epochs (2 more); bracket 0 trains 2
        # models for 3 epochs.
        rounds = sorted((row["bracket"], row["round"], row["epochs"]) for row in trials)
        assert rounds == [("0", "0", "3"), ("0", "0", "3"), ("1", "0", "1"), ("1", "0", "1"), ("1", "0", "1"),
                          ("1", "1", "2")]
    else:
        assert len(trials) == 4 and {row["status"] for row in trials} == {"COMPLETED"}

    shutil.rmtree(tmp_path / "search")
    if algorithm == "hyperband":
        # Killed in trial 0003, which trains on from the checkpoint of the best round-0 model: the resumed search
        # trains it again from that checkpoint, and ends as the uninterrupted one did.
        command = tune_command(tmp_path, tiny_prepared, rates, max_trials=1, algorithm=algorithm, settings=settings)
        killed = kill_when_started(tmp_path, command, "0003")
        assert killed["hyperparameters"]["values"]["tuner/round"] == 1
    result, _, again = run_tune(tmp_path, tiny_prepared, rates, max_trials=1, algorithm=algorithm, settings=settings)
    if algorithm == "hyperband":
        assert "3 finished trial(s) reused" in result.stdout
        assert sorted(again["timing.json"]["trial_seconds"]) == ["0003", "0004", "0005"]
    assert {name: (tmp_path / name).read_bytes() for name in RESULT_FILES} == first


def test_the_builder_and_the_space_must_agree(tiny_prepared, tmp_path):
    command = tune_command(tmp_path, tiny_prepared, [0.001], max_trials=1)
    params = yaml.safe_load((tmp_path / "params.yaml").read_text())
    params["recipes"]["mnist"]["space"]["momentum"] = {"choice": [0.9]}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    result = run_stage(tmp_path, command)
    assert result.returncode == 1
    assert "recipes.mnist.space.momentum: build_cnn_model does not use this hyperparameter" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml"]


@pytest.mark.pipeline
def test_a_search_in_which_every_trial_diverges_is_a_one_line_error(tiny_prepared, tmp_path):
    result = run_stage(tmp_path, tune_command(tmp_path, tiny_prepared, [1.0e38], max_trials=1))
    assert result.returncode == 1
    assert "RuntimeError" not in result.stderr  # Keras Tuner's "Number of consecutive failures exceeded the limit"
    assert result.stderr.strip().splitlines()[-1] == (
        "tune: error: no trial completed, so there is no best model (trial 0: training loss became inf in epoch 1)")


def search_dir(workspace):
    [project] = [p for p in workspace.iterdir() if p.is_dir()]
    return project


# --- The workspace: tune removes only what it made ---

def tree(directory):
    return sorted(str(p.relative_to(directory)) for p in directory.rglob("*"))


def test_a_non_empty_workspace_tune_did_not_make_is_refused_untouched(tiny_prepared, tmp_path):
    models_dir = tmp_path / "models"
    models_dir.mkdir()
    (models_dir / "baseline.weights.h5").write_bytes(b"trained weights")
    (models_dir / "old-search").mkdir()
    before = tree(models_dir)
    result = run_stage(tmp_path, tune_command(tmp_path, tiny_prepared, [0.001], 1, workspace=models_dir))
    assert result.returncode == 1
    assert result.stderr.strip() == (f"tune: error: {models_dir}: not empty and not made by tune (no "
                                     ".mnist-dvc-workspace in it), so tune leaves it alone: point --workspace at a "
                                     "new or empty directory (or empty this one yourself)")
    assert tree(models_dir) == before
    assert (models_dir / "baseline.weights.h5").read_bytes() == b"trained weights"


def make_search(workspace, name):
    (workspace / name).mkdir()
    (workspace / name / search_workspace.SEARCH_RECORD).write_text("{}")
    return workspace / name


def test_only_searches_tune_made_are_removed_and_symlinks_are_not_followed(tmp_path):
    outside = make_search(tmp_path, "outside")  # looks like a search, but lies outside the workspace
    (outside / "precious").write_text("keep me")
    workspace = search_workspace.claim(tmp_path / "search")
    old = make_search(workspace, "0123456789abcdef")
    (workspace / "notes.txt").write_text("a user's file")
    (workspace / "user-dir").mkdir()
    (workspace / "link").symlink_to(outside, target_is_directory=True)

    project = search_workspace.open_search(workspace, "fedcba9876543210", {"what": "identity"})

    assert not old.exists()
    assert sorted(p.name for p in workspace.iterdir()) == [
        ".gitignore", ".mnist-dvc-workspace", "fedcba9876543210", "link", "notes.txt", "user-dir"]
    assert (outside / "precious").read_text() == "keep me"
    assert json.loads((project / "search.json").read_text()) == {"what": "identity"}


def test_a_search_directory_that_is_a_symlink_is_refused(tmp_path):
    workspace = search_workspace.claim(tmp_path / "search")
    target = make_search(tmp_path, "elsewhere")
    (workspace / "fedcba9876543210").symlink_to(target, target_is_directory=True)
    with pytest.raises(search_workspace.WorkspaceError, match="fedcba9876543210: not a search directory made by"):
        search_workspace.open_search(workspace, "fedcba9876543210", {})
    assert sorted(p.name for p in target.iterdir()) == ["search.json"]


# --- Resuming: what a kill, a full disk or a cut-short file leaves behind ---

def oracle_started(workspace, trial_id):
    """Whether oracle.json, saved whole, lists the trial as started: from then until the trial ends the tuner writes
    no state file but the trial's own, so a kill cannot cut one short (that case is tested below)."""
    for path in workspace.glob("*/oracle.json"):
        try:
            return trial_id in json.loads(path.read_text())["start_order"]
        except (ValueError, KeyError):
            return False
    return False


def kill_when_started(workdir, command, trial_id):
    """Run the stage and kill it while trial `trial_id` runs; return that trial's trial.json."""
    process = subprocess.Popen(command, cwd=workdir, env=smoke.environment(), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not oracle_started(workdir / "search", trial_id) and time.monotonic() < deadline:
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    [state] = [json.loads(path.read_text()) for path in (workdir / "search").glob(f"*/trial_{trial_id}/trial.json")]
    assert state["status"] == "RUNNING", f"trial {trial_id} finished before it could be killed"
    return state


@pytest.mark.pipeline
def test_a_trial_stopped_by_a_full_disk_is_not_recorded_and_runs_again(tiny_prepared, tmp_path, small_disk):
    disk = small_disk("64k")  # room for the search's JSON files, not for a trial's checkpoint
    command = tune_command(tmp_path, tiny_prepared, [0.001], max_trials=1, workspace=disk / "search")
    full = run_stage(tmp_path, command)
    # 1, or -11: after a write that failed for lack of space, HDF5 can crash while the interpreter exits.
    assert full.returncode in (1, -11)
    last_line = full.stderr.strip().splitlines()[-1]
    assert last_line.startswith("tune: error: trial 0 did not finish (") and "No space left on device" in last_line
    assert last_line.endswith("it is not recorded and runs again when tune is rerun")

    subprocess.run(["mount", "-o", "remount,size=16m", str(disk)], check=True)
    result = run_stage(tmp_path, command)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "resuming" not in result.stdout  # nothing had finished
    with open(tmp_path / "trials.csv", newline="") as f:
        assert [row["status"] for row in csv.DictReader(f)] == ["COMPLETED"]
    assert len(list((disk / "search").iterdir())) == 3  # the same search, resumed: .gitignore, marker, it


@pytest.mark.pipeline
@pytest.mark.parametrize("state_file", ["oracle.json", "trial_0/trial.json"])
def test_a_state_file_cut_short_sets_the_search_aside_and_starts_afresh(tiny_prepared, tmp_path, state_file):
    _, first_trials, _ = run_tune(tmp_path, tiny_prepared, [0.001], max_trials=1)
    project = search_dir(tmp_path / "search")
    cut = project / state_file
    cut.write_bytes(cut.read_bytes()[:40])

    result, trials, results = run_tune(tmp_path, tiny_prepared, [0.001], max_trials=1)
    assert f"tune: {cut} does not read back" in result.stderr
    assert f"set the search aside as {project}.broken" in result.stderr
    assert (project.parent / f"{project.name}.broken" / state_file).read_bytes() == cut.read_bytes()[:40]
    assert list(results["timing.json"]["trial_seconds"]) == ["0"]  # trained afresh
    assert trials == first_trials


STATE_WRITER = """
import sys
from keras_tuner.src.engine.stateful import Stateful  # the base of Keras Tuner's oracles, trials and tuners
import mnist_pipeline.search_tuners  # noqa: F401 (tune's state writes)

class State(Stateful):
    def __init__(self, size):
        self.size = size

    def get_state(self):
        return {"values": list(range(self.size))}

states = [State(200_000), State(300_000)]
states[0].save(sys.argv[1])
print("writing", flush=True)
for turn in range(10**9):
    states[turn % 2].save(sys.argv[1])
"""


def test_the_tuners_state_files_are_never_seen_or_left_cut_short(tmp_path):
    """Keras Tuner saves its state after every trial through Stateful.save, which tune makes atomic: a reader (or a
    rerun after a kill) finds the old file or the new one whole, never one being written."""
    state = tmp_path / "oracle.json"
    writer = subprocess.Popen([sys.executable, "-c", STATE_WRITER, str(state)], env=smoke.environment(),
                              stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline() == "writing\n"
        sizes = {len(json.loads(state.read_text())["values"]) for _ in range(400)}
    finally:
        writer.kill()
        writer.wait()
    assert sizes == {200_000, 300_000}
    assert len(json.loads(state.read_text())["values"]) in sizes


def test_a_trial_the_oracle_never_recorded_starting_is_removed_on_resume(tmp_path, capsys):
    """A kill between Keras Tuner's write of a new trial's file and of oracle.json leaves a trial that would never
    run (and would shift the ids and seeds of the rest): tune removes it, and the search goes on as if killed just
    before it."""
    workspace = search_workspace.claim(tmp_path / "search")
    project = make_search(workspace, "fedcba9876543210")
    (project / "oracle.json").write_text(json.dumps({"start_order": ["0"], "end_order": ["0"]}))
    for trial_id in ("0", "1"):
        (project / f"trial_{trial_id}").mkdir()
        (project / f"trial_{trial_id}" / "trial.json").write_text(json.dumps({"trial_id": trial_id}))

    assert search_workspace.open_search(workspace, "fedcba9876543210", {}) == project
    assert sorted(p.name for p in project.iterdir()) == ["oracle.json", "search.json", "trial_0"]
    assert f"tune: removed {project / 'trial_1'}: the search was killed after it wrote" in capsys.readouterr().err


# --- The fingerprint: everything that decides the trials ---

@pytest.mark.pipeline
def test_the_search_records_what_its_fingerprint_covers(tiny_prepared, tmp_path):
    run_tune(tmp_path, tiny_prepared, [0.001], max_trials=1)
    identity = json.loads((search_dir(tmp_path / "search") / "search.json").read_text())
    # The code of every module the stage imports, as dvc.yaml declares them: no more, no less.
    declared = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]["tune"]["deps"]
    library = {f"mnist_pipeline.{Path(dep).stem}" for dep in declared if dep.startswith("src/mnist_pipeline/")}
    assert set(identity["code"]) == library - {"mnist_pipeline.__init__"} | {"mnist_pipeline", "__main__"}
    assert identity["code"]["__main__"] == hashlib.sha256((REPO / "stages" / "tune.py").read_bytes()).hexdigest()
    assert sorted(identity["libraries"]) == ["keras", "keras_tuner", "numpy", "scikit-learn", "scipy", "tensorflow"]
    assert identity["backend"]["intra_op_threads"] == identity["params"]["runtime"]["threads"]
    recipe = yaml.safe_load((REPO / "params.yaml").read_text())["recipes"]["mnist"]  # tune.augment is on by default
    assert identity["params"]["augmentation"] == recipe["augmentation"]
    assert sorted(identity["data"]) == ["dataset.json", "train_images.npy", "train_labels.npy", "val_images.npy",
                                        "val_labels.npy"]


def leaves(tree, path=()):
    if isinstance(tree, dict) and tree:
        for key, value in tree.items():
            yield from leaves(value, (*path, key))
    else:
        yield path


def test_changing_any_input_changes_the_fingerprint(tiny_prepared, monkeypatch):
    from mnist_pipeline import recipes, runtime, search_identity, settings

    tune, runtime_settings, recipe = settings.load(REPO / "params.yaml", tune=search_settings.Tune,
                                                   runtime=runtime.Runtime, **{"recipes.mnist": recipes.Recipe})
    files = prepared.data_files(tiny_prepared, "train", "val")
    identity = search_identity.search_identity(tune, recipe.space, runtime_settings, recipe.augmentation, files)
    assert "mnist_pipeline.runtime" in identity["code"] and "mnist_pipeline.prepared" in identity["code"]
    assert identity["params"]["tune"]["random"] == {"max_trials": tune.random.max_trials}
    assert "space" in identity["params"]["tune"]
    monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", "0" if os.environ.get("TF_ENABLE_ONEDNN_OPTS") == "1" else "1")
    changed = search_identity.search_identity(tune, recipe.space, runtime_settings, recipe.augmentation, files)
    assert search_identity.fingerprint(changed) != search_identity.fingerprint(identity)

    for path in leaves(identity):
        changed = json.loads(json.dumps(identity))
        *parents, last = path
        node = changed
        for key in parents:
            node = node[key]
        node[last] = [node[last], "changed"]
        assert search_identity.fingerprint(changed) != search_identity.fingerprint(identity), \
            f"{'.'.join(map(str, path))} is ignored"


# --- Distributed search: the stage serves Keras Tuner's oracle on loopback and starts workers ---

def stage_processes(workdir):
    """Process id to environment of every live process running a command that names `workdir` (the stage and
    its workers)."""
    found = {}
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and str(workdir).encode() in (entry / "cmdline").read_bytes():
                environ = (entry / "environ").read_bytes().split(b"\0")
                found[int(entry.name)] = dict(item.decode().split("=", 1) for item in environ if b"=" in item)
        except OSError:  # ended meanwhile
            pass
    return found


@pytest.mark.pipeline
def test_a_killed_worker_ends_the_stage_at_once_and_the_rerun_finishes_the_search(tiny_prepared, tmp_path):
    rates = [0.001, 0.002, 0.003, 0.004]
    command = tune_command(tmp_path, tiny_prepared, rates, max_trials=4, epochs=4, workers=2)
    stage = subprocess.Popen(command, cwd=tmp_path, env=smoke.environment(), stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    victim = ongoing_trial(tmp_path / "search", "worker1", deadline)
    assert victim is not None, "worker1 never started a trial"
    [worker] = [pid for pid, environ in stage_processes(tmp_path).items()
                if environ.get("KERASTUNER_TUNER_ID") == "worker1"]
    os.kill(worker, signal.SIGKILL)
    _, stderr = stage.communicate(timeout=60)  # ends without waiting for the trial the dead worker held

    assert stage.returncode == 1
    assert re.fullmatch(r"tune: error: worker1 was killed by SIGKILL( after: .*)?; the other workers were stopped, the "
                        r"trials that finished are kept, and the next run of tune resumes the search",
                        stderr.strip().splitlines()[-1])
    assert stage_processes(tmp_path) == {}

    # The stage itself killed: its workers see it gone and end.
    stage = subprocess.Popen(command, cwd=tmp_path, env=smoke.environment(), stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    while len(stage_processes(tmp_path)) < 3 and time.monotonic() < deadline:
        time.sleep(0.1)
    os.kill(stage.pid, signal.SIGKILL)
    stage.wait()
    give_up = time.monotonic() + 10
    while stage_processes(tmp_path) and time.monotonic() < give_up:
        time.sleep(0.1)
    assert stage_processes(tmp_path) == {}

    result, trials, results = run_tune(tmp_path, tiny_prepared, rates, max_trials=4, epochs=4, workers=2)
    assert re.search(r"oracle of search \w+ listening on 127.0.0.1:\d+, starting 2 worker", result.stdout)
    assert sorted(row["trial"] for row in trials) == ["0", "1", "2", "3"]
    assert sorted(float(row["learning_rate"]) for row in trials) == rates  # each value once: no trial ran twice
    assert {row["status"] for row in trials} == {"COMPLETED"}
    assert victim in results["timing.json"]["trial_seconds"]  # the dead worker's trial was trained again
    assert {"[worker1] ", "[worker2] "} <= {line[:10] for line in result.stdout.splitlines()}
    best = max(trials, key=lambda row: float(row["val_accuracy"]))
    assert results["best.json"]["learning_rate"] == float(best["learning_rate"])
    identity = json.loads((search_dir(tmp_path / "search") / "search.json").read_text())
    assert identity["backend"]["intra_op_threads"] == 1  # runtime.threads (2) shared by the two workers
    assert stage_processes(tmp_path) == {}


def ongoing_trial(search, worker, deadline):
    """The id of the trial `worker` holds, as oracle.json says once the stage has saved it, or None at the deadline."""
    while time.monotonic() < deadline:
        for path in search.glob("*/oracle.json"):
            try:
                trial = json.loads(path.read_text())["ongoing_trials"].get(worker)
            except (ValueError, KeyError):
                trial = None
            if trial is not None:
                return trial
        time.sleep(0.02)
    return None


@pytest.mark.pipeline
def test_a_stopped_worker_is_named_within_the_silence_limit_and_the_rerun_finishes_the_search(tiny_prepared,
                                                                                              tmp_path):
    rates = [0.001, 0.002, 0.003, 0.004]
    command = tune_command(tmp_path, tiny_prepared, rates, max_trials=4, epochs=6, workers=2, silence=8)
    stage = subprocess.Popen(command, cwd=tmp_path, env=smoke.environment(), stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
    held = ongoing_trial(tmp_path / "search", "worker2", time.monotonic() + 240)
    assert held is not None, "worker2 never started a trial"
    [worker] = [pid for pid, environ in stage_processes(tmp_path).items()
                if environ.get("KERASTUNER_TUNER_ID") == "worker2"]
    os.kill(worker, signal.SIGSTOP)
    stopped = time.monotonic()
    _, stderr = stage.communicate(timeout=120)
    # worker1 may finish every other trial meanwhile; the stage then waits only for the stopped one's silence.
    assert time.monotonic() - stopped < 8 + 20
    assert stage.returncode == 1
    assert stderr.strip().splitlines()[-1] == (
        f"tune: error: worker2 sent no heartbeat for 8 s (stopped, hung, or its machine gone) during trial {held}; "
        "it and the other workers were stopped, the trials that finished are kept, and the next run of tune "
        "resumes the search")
    assert stage_processes(tmp_path) == {}
    search = search_dir(tmp_path / "search")

    # A longer limit resumes the same search: the silence limit decides nothing in the trials.
    result, trials, results = run_tune(tmp_path, tiny_prepared, rates, max_trials=4, epochs=6, workers=2, silence=30)
    assert f"oracle of search {search.name} listening" in result.stdout and search_dir(tmp_path / "search") == search
    assert sorted(float(row["learning_rate"]) for row in trials) == rates
    assert {row["status"] for row in trials} == {"COMPLETED"}
    assert held in results["timing.json"]["trial_seconds"]  # the stopped worker's trial was trained again
    assert stage_processes(tmp_path) == {}


def test_keras_tuner_internals_the_oracle_needs_are_checked_with_the_pinned_version_named():
    pinned = re.search(r"^keras-tuner==(\S+)", (REPO / "requirements.txt").read_text(), re.M).group(1)
    assert pinned == search_workers.KERAS_TUNER_TESTED
    assert set(search_workers.oracle_service()) == {"get_service_grpc", "OracleServicer"}
    missing = "keras_tuner.src.protos.get_service_of_another_release"
    with pytest.raises(PipelineError, match=rf"^keras-tuner \S+ has no {missing}, which a distributed search .* "
                                            rf"keras-tuner {re.escape(pinned)} \(requirements.txt\): install"):
        search_workers.oracle_service({"keras_tuner.src.protos": "get_service_of_another_release"})


def test_a_worker_with_other_code_or_params_finds_no_search_to_join(tmp_path):
    workspace = search_workspace.claim(tmp_path / "search")
    make_search(workspace, "0123456789abcdef")
    with pytest.raises(search_workspace.WorkspaceError, match="fedcba9876543210: no such search, so this worker"):
        search_workspace.join_search(workspace, "fedcba9876543210")
    assert search_workspace.join_search(workspace, "0123456789abcdef") == workspace / "0123456789abcdef"
