import copy
import json
import re
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import params_reference
import pytest
import yaml

from mnist_pipeline.settings import ParamsError

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
    checked = params_reference.load(REPO / "params.yaml")
    assert checked["prepare"].val_fraction == DEFAULTS["prepare"]["val_fraction"]


@pytest.mark.parametrize("path, value, message", [
    ("prepare.bogus", 1, "prepare.bogus: unknown key"),
    ("extra_section", {}, "extra_section: unknown key"),
    ("prepare.seed", KeyError, "prepare.seed: missing"),
    ("prepare.seed", "42", "prepare.seed: expected an integer"),
    ("prepare.seed", True, "prepare.seed: expected an integer"),
    ("prepare.seed", 0, r"prepare.seed: 0 is outside \[1, "),
    ("prepare.val_fraction", 0.7, r"prepare.val_fraction: 0.7 is outside \[0, 0.5\]"),
    ("prepare.val_fraction", 0, "prepare.val_fraction: 0 must be above 0"),
    ("data.dataset", "svhn", "data.dataset: 'svhn' is not one of mnist, fashion_mnist, cifar10"),
    ("download.sources.mnist", [{"ftp": "x"}], r"download.sources.mnist\[0\]: expected one of \{mirror: a base URL\}"),
    ("download.sources.mnist", [{"mirror": "a", "npm": "b"}], r"download.sources.mnist\[0\]: expected one of"),
    ("download.sources.mnist", [{"mirror": ""}], r"download.sources.mnist\[0\].mirror: expected a base URL, got ''"),
    ("download.sources.mnist", [], "download.sources.mnist: expected a list of at least 1"),
    ("download.sources.cifar10", KeyError, "download.sources.cifar10: missing"),
    ("transfer.targets", {"mnist": "cifar10"},
     "transfer.targets.mnist: cifar10 images are 32x32x3, mnist images 28x28x1; they must be the same"),
    ("transfer.targets", {"mnist": "mnist"}, "transfer.targets.mnist: a dataset cannot be its own transfer target"),
    ("transfer.targets", {"svhn": "mnist"}, "transfer.targets: 'svhn' is not one of"),
    ("transfer.subsets", [0], r"transfer.subsets\[0\]: 0 is outside"),
    ("transfer.frozen_epochs", 13, r"transfer.frozen_epochs: 13 is more than epochs \(12\)"),
    ("runtime.deterministic", "yes", "runtime.deterministic: expected true or false"),
    ("runtime.precision", "float16", "runtime.precision: 'float16' is not one of float32, mixed_bfloat16"),
    ("runtime.backend", "torch", "runtime.backend: 'torch' is not one of tensorflow, jax"),
    ("baseline.learning_rate", float("nan"), "baseline.learning_rate: expected a finite number"),
    ("retrain.lr_schedule", "step", "retrain.lr_schedule: 'step' is not one of constant, cosine"),
    ("retrain.ema_momentum", 1.0, "retrain.ema_momentum: 1.0 must be below 1"),
    ("retrain.label_smoothing", -0.1, r"retrain.label_smoothing: -0.1 is outside \[0, 1\]"),
    ("recipes.mnist.space.dropout", {"min": 0.5, "max": 0.1}, "space.dropout: min 0.5 is above max 0.1"),
    ("recipes.mnist.space.dropout", {"min": 0.1}, r"space.dropout: expected \{choice"),
    ("recipes.mnist.space.dropout", {"min": 0.0, "max": 0.5, "log": True},
     "space.dropout: a log-scale range needs min > 0"),
    ("recipes.mnist.space.dense_units", {"min": 64, "max": 256, "step": 0}, r"space.dense_units.step: 0 is outside"),
    ("recipes.mnist.space.batch_norm", {"choice": []}, "space.batch_norm.choice: expected a non-empty list"),
    ("recipes.mnist.space.batch_norm", {"choice": [True, 1]}, r"space.batch_norm.choice\[1\]: expected true or false"),
    ("recipes.mnist.space.batch_norm", {"min": 0, "max": 1}, r"space.batch_norm: expected \{choice: \[...\]\}"),
    # Each range holds only values the network can be built with.
    ("recipes.mnist.space.conv1_filters", {"choice": [0, 16]}, r"space.conv1_filters.choice\[0\]: 0 is outside \[1, "),
    ("recipes.mnist.space.conv1_kernel", {"choice": [3, 4]}, r"space.conv1_kernel.choice\[1\]: 4 must be odd"),
    ("recipes.mnist.space.conv3_kernel", {"choice": [9]}, r"space.conv3_kernel.choice\[0\]: 9 is outside \[1, 7\]"),
    ("recipes.mnist.space.dense_units", {"min": 0, "max": 64}, r"space.dense_units.min: 0 is outside \[1, "),
    ("recipes.mnist.space.dropout", {"min": 0.0, "max": 1.0}, "space.dropout.max: 1.0 must be below 1"),
    ("recipes.mnist.space.dropout", {"choice": [-0.1]}, r"space.dropout.choice\[0\]: -0.1 is outside"),
    ("recipes.mnist.space.learning_rate", {"min": 0.0, "max": 0.1}, "space.learning_rate.min: 0.0 must be above 0"),
    ("recipes.mnist.space.learning_rate", {"choice": [float("inf")]},
     "learning_rate.choice\\[0\\]: expected a finite number"),
    ("recipes.mnist.space.batch_size", {"choice": [0]}, r"space.batch_size.choice\[0\]: 0 is outside \[1, "),
    ("recipes.mnist.space.dense_units", {"choice": [64, 64]}, "space.dense_units.choice: repeated choices"),
    ("recipes.mnist.space.momentum", {"choice": [0.9]},
     "space.momentum: build_cnn_model does not use this hyperparameter"),
    ("recipes.mnist.space.dropout", KeyError, r"space.dropout: missing \(build_cnn_model reads it\)"),
    ("baseline.kernel_size", 4, "baseline.kernel_size: 4 must be odd"),
    ("baseline.conv_filters", [8, 8, 8, 8],
     "baseline.conv_filters: 4 blocks do not fit a 28x28 image with kernel_size 3: "
     r"block 4 would get a 1x1 map \(at most 3 blocks fit\)"),
    ("tune.algorithm", "grid", "tune.algorithm: 'grid' is not one of random, hyperband, bayesian"),
    ("tune.hyperband.factor", 1, r"tune.hyperband.factor: 1 is outside \[2, 100\]"),
    ("tune.bayesian.num_initial_points", 11, r"tune.bayesian.num_initial_points: 11 is more than max_trials \(10\)"),
    ("tune.bayesian.alpha", 0.0, "tune.bayesian.alpha: 0.0 must be above 0"),
    ("tune.random", KeyError, "tune.random: missing"),
    ("tune.workers", -1, r"tune.workers: -1 is outside \[0, 256\]"),
    ("tune.workers", 3, r"tune.workers: 3 workers cannot share runtime.threads: 2 \(each needs a thread at least\)"),
])
def test_bad_values_are_refused_with_the_dotted_key(path, value, message):
    with pytest.raises(ParamsError, match=message):
        params_reference.validate(changed(path, value))


def test_the_largest_baseline_that_fits_is_accepted():
    assert params_reference.validate(changed("baseline.conv_filters", [8, 8, 8]))["baseline"].conv_filters == (8, 8, 8)


def test_the_baseline_must_fit_the_images_of_the_chosen_dataset():
    raw = changed("baseline.conv_filters", [8, 8, 8, 8])
    raw["data"]["dataset"] = "cifar10"
    with pytest.raises(ParamsError, match="4 blocks do not fit a 32x32 image with kernel_size 3: block 4 would "
                                                 r"get a 2x2 map \(at most 3 blocks fit\)"):
        params_reference.validate(raw)


def test_the_transfer_target_follows_the_dataset_and_may_be_none():
    from mnist_pipeline import datasets

    checked = params_reference.validate(changed("data.dataset", "fashion_mnist"))
    data, targets = checked["data"], checked["transfer"].targets
    assert datasets.chosen(data, targets) == "fashion_mnist" and datasets.chosen(data, targets, True) == "mnist"
    checked = params_reference.validate(changed("data.dataset", "cifar10"))
    assert datasets.chosen(checked["data"], targets, transfer_target=True) is None  # the transfer stages: nothing


def test_unknown_keys_of_mixed_types_are_named():
    raw = changed("prepare.bogus", 1)
    raw["prepare"][7] = 2
    with pytest.raises(ParamsError, match=r"^prepare.7: unknown key"):
        params_reference.validate(raw)


def test_an_error_quotes_at_most_about_100_characters_of_a_value():
    with pytest.raises(ParamsError) as error:
        params_reference.validate(changed("prepare.seed", "9" * 100_000))
    assert str(error.value).startswith("prepare.seed: expected an integer, got '999")
    assert len(str(error.value)) < 160


def test_a_huge_number_is_quoted_short(tmp_path):
    with pytest.raises(ParamsError) as error:
        params_reference.validate(changed("prepare.seed", 10**4000))
    assert str(error.value).startswith("prepare.seed: 1000")
    assert str(error.value).endswith("... is outside [1, 2147483647]")
    assert len(str(error.value)) < 160
    (tmp_path / "params.yaml").write_text("prepare:\n  seed: 1" + "0" * 5000 + "\n")
    with pytest.raises(ParamsError, match="params.yaml: not valid YAML: Exceeds the limit"):
        params_reference.load(tmp_path / "params.yaml")


def test_a_params_file_that_is_not_utf8_is_a_params_error(tmp_path):
    (tmp_path / "params.yaml").write_bytes("prepare:\n  seed: 1  # caf\u00e9\n".encode("latin-1"))
    with pytest.raises(ParamsError, match=r"params.yaml: not UTF-8 text \(byte 0xe9 at offset 25\)"):
        params_reference.load(tmp_path / "params.yaml")


def test_search_space_ranges_keep_their_kind():
    space = params_reference.validate(DEFAULTS)["recipes"]["mnist"].space
    assert space["dense_units"] == {"min": 64, "max": 256, "step": 64}
    assert isinstance(space["learning_rate"]["min"], float) and space["learning_rate"]["log"] is True


def test_a_stage_stops_before_any_work_on_bad_params(tmp_path):
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(changed("prepare.val_fraction", 2.0)))
    result = subprocess.run(
        [sys.executable, str(REPO / "stages" / "prepare.py"), "--raw", "raw", "--out", "prepared",
         "--metrics", "data.json", "--counts", "counts.json", "--timing", "timing.json"],
        cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 1
    assert "prepare.val_fraction: 2.0 is outside [0, 0.5]" in result.stderr
    assert "Traceback" not in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml"]


def test_yaml_syntax_errors_name_the_file(tmp_path):
    (tmp_path / "params.yaml").write_text("prepare: [unclosed\n")
    with pytest.raises(ParamsError, match="params.yaml: not valid YAML"):
        params_reference.load(tmp_path / "params.yaml")


def params_file(tmp_path, text):
    path = tmp_path / "params.yaml"
    path.write_text(text)
    return path


def refused_quickly(path, message):
    """params.load refuses the file with one ParamsError line, in under a second and a few MB of memory."""
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(ParamsError, match=message) as error:
            params_reference.load(path)
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert time.perf_counter() - start < 1 and peak < 20 * 2**20
    assert "\n" not in str(error.value) and len(str(error.value)) < 300


def test_a_key_given_twice_is_refused_as_dvc_refuses_it(tmp_path):
    text = (REPO / "params.yaml").read_text().replace("  seed: 20260101\n", "  seed: 20260101\n  seed: 5\n")
    refused_quickly(params_file(tmp_path, text), r"params.yaml: line \d+ gives the key 'seed' twice in one mapping")


def test_an_alias_bomb_is_refused_before_it_expands(tmp_path):
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 10)]  # 10**10 values
    refused_quickly(params_file(tmp_path, "\n".join(lines) + "\n"), "params.yaml: line 2 uses a YAML alias")


def test_nesting_thousands_deep_is_refused(tmp_path):
    refused_quickly(params_file(tmp_path, "data: " + "[" * 5000 + "]" * 5000 + "\n"),
                    "params.yaml: line 1 nests values more than 32 levels deep")


@pytest.mark.parametrize("path, value, message", [
    ("baseline.learning_rate", 10**400, "baseline.learning_rate: expected a finite number, got 1000"),
    ("download.timeout_seconds", 1e300, r"download.timeout_seconds: 1e\+300 is outside \[0, 86400\]"),
], ids=["a 400-digit integer for a float", "1e300 seconds"])
def test_numbers_too_large_for_their_key_are_params_errors(tmp_path, path, value, message):
    refused_quickly(params_file(tmp_path, yaml.safe_dump(changed(path, value))), message)


BEST = json.loads((REPO / "models" / "best_hyperparameters.json").read_text())
EDITS = {
    "a key missing": (lambda best: {k: v for k, v in best.items() if k != "dense_units"}, "dense_units: missing"),
    "0 units": (lambda best: {**best, "dense_units": 0}, r"dense_units: 0 is outside \[1, 4096\]"),
    "an even kernel": (lambda best: {**best, "conv2_kernel": 4}, "conv2_kernel: 4 must be odd"),
    "a word for a number": (lambda best: {**best, "learning_rate": "fast"},
                            "learning_rate: expected a finite number, got 'fast'"),
    "a list": (lambda best: [best], "expected a JSON object of hyperparameters"),
    "not JSON": (lambda best: "{not json", r"not JSON \(Expecting property name"),
}


def edited_best(tmp_path, edit):
    best = tmp_path / "best.json"
    edited = edit(BEST)
    best.write_text(edited if isinstance(edited, str) else json.dumps(edited))
    return best


@pytest.mark.parametrize("edit, message", EDITS.values(), ids=EDITS)
def test_a_hand_edited_best_hyperparameters_file_is_one_line_naming_it_and_the_key(tmp_path, edit, message):
    from mnist_pipeline import cnn

    best = edited_best(tmp_path, edit)
    with pytest.raises(ParamsError) as error:
        cnn.load_hyperparameters(best)
    assert re.fullmatch(f"{re.escape(str(best))}: {message}.*", str(error.value))


@pytest.mark.parametrize("stage", ["retrain", "transfer"])
def test_the_stages_that_read_it_stop_on_it_before_any_work(tmp_path, stage):
    best = edited_best(tmp_path, EDITS["an even kernel"][0])
    (tmp_path / "params.yaml").write_bytes((REPO / "params.yaml").read_bytes())
    paths = {"retrain": ["--data", "d", "--checkpoints", "c", "--model", "m", "--history", "h.csv",
                         "--timing", "t.json"],
             "transfer": ["--model", "m", "--data", "d", "--checkpoints", "c", "--metrics", "m.json",
                          "--results", "r.csv", "--timing", "t.json"]}[stage]
    result = subprocess.run([sys.executable, str(REPO / "stages" / f"{stage}.py"), "--best", str(best), *paths],
                            cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert re.fullmatch(f"{stage}: error: {re.escape(str(best))}: conv2_kernel: 4 must be odd.*\n", result.stderr)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["best.json", "params.yaml"]


def test_the_params_reference_page_matches_params_yaml_and_the_schemas():
    import change_cost

    assert (REPO / "docs/params.md").read_text() == params_reference.page()
    graph = change_cost.stages(REPO)
    assert "| `recipes.mnist.retrain_epochs` | integer in [1, 1000] | `12` | retrain |" in params_reference.page()
    assert set(params_reference.SCHEMA) == {name for name in DEFAULTS} and graph
