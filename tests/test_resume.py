"""Training that resumes: a real stage killed with SIGKILL part-way through an epoch, rerun, goes on from its last
finished epoch and ends in the same bytes as a run that was never interrupted."""

import json
import shlex
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import smoke
import yaml

pytestmark = pytest.mark.pipeline
LONGER = {"baseline": {"epochs": 4}, "recipes": {"mnist": {"retrain_epochs": 4}}}
OUTPUTS = {"baseline": ["models/baseline", "metrics/baseline_history.csv", "metrics/baseline.json"],
           "retrain": ["models/tuned", "metrics/tuned_history.csv"]}


def contents(repo, paths) -> dict:
    found = {}
    for path in map(Path(repo).joinpath, paths):
        for file in sorted(path.rglob("*")) if path.is_dir() else [path]:
            if file.is_file():
                found[str(file.relative_to(repo))] = file.read_bytes()
    return found


def remove(repo, paths):
    for path in map(Path(repo).joinpath, paths):
        shutil.rmtree(path) if path.is_dir() else path.unlink()


@pytest.mark.parametrize("stage", ["baseline", "retrain"])
def test_a_stage_killed_mid_epoch_resumes_from_its_last_epoch_and_ends_in_the_same_bytes(scratch, stage, tmp_path):
    repo, env = scratch
    smoke.set_params(repo, LONGER)
    command = shlex.split(yaml.safe_load((repo / "dvc.yaml").read_text())["stages"][stage]["cmd"])
    checkpoints = repo / command[command.index("--checkpoints") + 1]
    remove(repo, OUTPUTS[stage])  # the smoke run's, made with fewer epochs
    smoke.run(repo, *command, env=env)
    uninterrupted = contents(repo, OUTPUTS[stage])
    assert not any(path.is_dir() for path in checkpoints.iterdir()), "a finished run leaves no backups"
    remove(repo, OUTPUTS[stage])

    log = (tmp_path / "killed.log").open("wb")
    process = subprocess.Popen(command, cwd=repo, env=smoke.environment(env), stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 300
    while not [log for log in checkpoints.glob("*/epochs.json") if len(json.loads(log.read_text() or "[]")) >= 2]:
        assert process.poll() is None and time.monotonic() < deadline, (tmp_path / "killed.log").read_text()
        time.sleep(0.05)
    time.sleep(0.5)  # into the third epoch
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (repo / OUTPUTS[stage][0]).exists(), "killed before it finished"

    resumed = smoke.run(repo, *command, env=env).stdout
    assert "resuming from the end of epoch" in resumed, resumed
    assert contents(repo, OUTPUTS[stage]) == uninterrupted
