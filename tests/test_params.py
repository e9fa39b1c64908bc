import copy
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mnist_pipeline import params

REPO = Path(__file__).resolve().parents[1]
DEFAULTS = yaml.safe_load((REPO / "params.yaml").read_text())


def changed(path, value):
    """The default params with the dotted `path` set to `value` (or removed, for value=KeyError)."""
    raw = copy.deepcopy(DEFAULTS)
    *parents, last = path.split(".")
    section = raw
    for key in parents:
        section = section[key]
    if value is KeyError:
        del section[last]
    else:
        section[last] = value
    return raw


def test_the_committed_params_are_valid():
    checked = params.load(REPO / "params.yaml")
    assert checked["prepare"]["val_fraction"] == DEFAULTS["prepare"]["val_fraction"]


@pytest.mark.parametrize("path, value, message", [
    ("prepare.bogus", 1, "prepare.bogus: unknown key"),
    ("extra_section", {}, "extra_section: unknown key"),
    ("prepare.seed", KeyError, "prepare.seed: missing"),
    ("prepare.seed", "42", "prepare.seed: expected an integer"),
    ("prepare.seed", True, "prepare.seed: expected an integer"),
    ("prepare.seed", 0, r"prepare.seed: 0 is outside \[1, "),
    ("prepare.val_fraction", 0.7, r"prepare.val_fraction: 0.7 is outside \[0, 0.5\]"),
    ("prepare.val_fraction", 0, "prepare.val_fraction: 0 must lie strictly between"),
    ("data.dataset", "cifar10", "data.dataset: 'cifar10' is not one of mnist"),
    ("download.sources", ["ftp"], r"download.sources\[0\]: 'ftp' is not one of"),
    ("download.sources", [], "download.sources: expected a list of at least 1"),
    ("runtime.deterministic", "yes", "runtime.deterministic: expected true or false"),
    ("baseline.learning_rate", float("nan"), "baseline.learning_rate: expected a finite number"),
    ("retrain.lr_schedule", "step", "retrain.lr_schedule: 'step' is not one of constant, cosine"),
    ("tune.space.dropout", {"min": 0.5, "max": 0.1}, "tune.space.dropout: min 0.5 must be below max 0.1"),
    ("tune.space.dropout", {"min": 0.1}, r"tune.space.dropout: expected \{choice"),
    ("tune.space.learning_rate", {"min": 0.0, "max": 0.1, "log": True}, "needs min > 0"),
    ("tune.space.dense_units", {"min": 64, "max": 256, "step": 0}, r"tune.space.dense_units.step: 0 is outside"),
    ("tune.space.batch_norm", {"choice": []}, "tune.space.batch_norm.choice: expected a non-empty list"),
    ("tune.space.batch_norm", {"choice": [True, 1]}, "of one scalar type"),
])
def test_bad_values_are_refused_with_the_dotted_key(path, value, message):
    with pytest.raises(params.ParamsError, match=message):
        params.validate(changed(path, value))


def test_search_space_ranges_keep_their_kind():
    space = params.validate(DEFAULTS)["tune"]["space"]
    assert space["dense_units"] == {"min": 64, "max": 256, "step": 64}
    assert isinstance(space["learning_rate"]["min"], float) and space["learning_rate"]["log"] is True


def test_a_stage_stops_before_any_work_on_bad_params(tmp_path):
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(changed("prepare.val_fraction", 2.0)))
    result = subprocess.run(
        [sys.executable, str(REPO / "stages" / "prepare.py"), "--raw", "raw", "--out", "prepared",
         "--metrics", "data.json", "--timing", "timing.json"],
        cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 1
    assert "prepare.val_fraction: 2.0 is outside [0, 0.5]" in result.stderr
    assert "Traceback" not in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml"]


def test_yaml_syntax_errors_name_the_file(tmp_path):
    (tmp_path / "params.yaml").write_text("prepare: [unclosed\n")
    with pytest.raises(params.ParamsError, match="params.yaml: not valid YAML"):
        params.load(tmp_path / "params.yaml")
