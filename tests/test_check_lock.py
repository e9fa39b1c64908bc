"""tools/check_lock.py on a fresh clone of this repository's last commit, as CI sees it: no data, no outputs."""

import subprocess
import sys
from pathlib import Path

import check_lock
import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def clone(tmp_path):
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(tmp_path / "clone")], check=True)
    return tmp_path / "clone"


def test_the_committed_lock_is_true_to_the_committed_code_params_and_commands(clone):
    assert check_lock.stale_stages(clone) == {}


def test_a_code_edit_a_param_change_and_a_command_change_are_each_reported(clone):
    with open(clone / "src/mnist_pipeline/plots.py", "a") as f:
        f.write("# an edit committed without a rerun\n")
    params = (clone / "params.yaml").read_text()
    (clone / "params.yaml").write_text(params.replace("channels_shown: 8", "channels_shown: 6"))
    dvc_yaml = (clone / "dvc.yaml").read_text()
    (clone / "dvc.yaml").write_text(dvc_yaml.replace("--confusion-dir metrics/confusion", "--confusion-dir metrics/cm"))
    stale = check_lock.stale_stages(clone)
    assert sorted(stale) == ["evaluate", "explain"]
    assert "src/mnist_pipeline/plots.py modified" in stale["explain"] and "param explain modified" in stale["explain"]
    assert "changed command" in stale["evaluate"]

    result = subprocess.run([sys.executable, str(REPO / "tools/check_lock.py"), str(clone)], capture_output=True,
                            text=True)
    assert result.returncode == 1
    assert result.stderr.splitlines()[0].startswith("dvc.lock is stale for stage evaluate: ")


def test_a_deleted_code_dependency_is_stale_but_missing_data_is_not(clone):
    (clone / "src/mnist_pipeline/feature_maps.py").unlink()
    assert check_lock.stale_stages(clone) == {"explain": ["src/mnist_pipeline/feature_maps.py deleted"]}
