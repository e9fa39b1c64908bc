"""tools/change_cost.py: what a change to each module or params key costs, and the budget CI holds it to."""

import shutil
import subprocess
import sys
from pathlib import Path

import change_cost
import stage_deps
import yaml

REPO = Path(__file__).resolve().parents[1]


def test_the_committed_code_is_within_the_budget():
    result = subprocess.run([sys.executable, str(REPO / "tools/change_cost.py"), "--check"], capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr


def test_a_stage_that_gains_the_downloader_breaks_the_budget_in_one_named_line(tmp_path):
    repo = tmp_path / "repo"
    (repo / "metrics").mkdir(parents=True)
    for name in ("dvc.yaml", "params.yaml", "src", "stages", "metrics/timing", "tools"):
        (shutil.copytree if (REPO / name).is_dir() else shutil.copy)(REPO / name, repo / name)
    (repo / ".dvc").mkdir()
    subprocess.run(["git", "init", "--quiet", str(repo)], check=True)
    training = repo / "src/mnist_pipeline/training.py"
    training.write_text(training.read_text().replace("from . import inputs, outputs",
                                                     "from . import inputs, outputs, sources"))
    text = (repo / "dvc.yaml").read_text()
    (repo / "dvc.yaml").write_text(stage_deps.rewrite(text, yaml.safe_load(text)["stages"], repo))
    found = change_cost.summary(repo)
    problems = change_cost.problems(found)
    assert any(line.startswith("sources.py makes ") and "retrain" in line and "the budget allows download, "
               "transfer_download" in line for line in problems), problems
    row = next(row for row in found["modules"] if row["module"] == "sources.py")
    assert "retrain" in row["stages"] and row["seconds"] > 0


def test_retrain_epochs_reach_retrain_only_and_the_search_space_the_search_only():
    found = change_cost.summary()
    stale = dict(found["params"])
    assert stale["recipes.mnist.retrain_epochs"] == ("retrain",)
    assert stale["recipes.mnist.space"] == ("tune",)
    assert stale["download"] == ()
    assert not [row for row in found["modules"] if row["module"].startswith("serv") and row["stages"]]
