"""The pull-request report, built for real: two commits of the smoke pipeline in a scratch repository, the second
changing a param that moves the data split, and `make pr-report` between them."""

import pytest
import smoke
from helpers import make

pytestmark = pytest.mark.pipeline
PNG = b"\x89PNG\r\n\x1a\n"


def test_make_pr_report_shows_what_a_branch_changes_against_its_base(scratch):
    repo, env = scratch
    smoke.git(repo, "checkout", "--quiet", "-b", "smaller-validation")
    smoke.set_params(repo, {"prepare": {"val_fraction": 0.05}})
    smoke.dvc(repo, "repro", env=env)
    smoke.git(repo, "commit", "--quiet", "-am", "a smaller validation split")

    make(repo, "pr-report", "BASE=main", env=env)
    report = (repo / "pr-report" / "report.md").read_text()
    sections = dict(part.split("\n", 1) for part in report.split("### ")[1:])
    assert "| `prepare` | params, deps (data/raw ...)" not in sections["Stages whose runs changed"]
    for stage in ("prepare", "baseline", "retrain", "evaluate", "export"):
        assert f"| `{stage}` |" in sections["Stages whose runs changed"], (stage, report)
    assert "| `prepare` | params | changed |" in sections["Stages whose runs changed"]
    assert "prepare.val_fraction" in sections["Params"] and "0.1" in sections["Params"]
    assert "metrics/evaluate.json" in sections["Metrics"] and "tuned.test_accuracy" in sections["Metrics"]
    assert "- modified: `data/prepared/` (4 files)" in sections["Data"]
    assert "images per split: train 54001 → 57000, val 5999 → 3000, test 10000 → 10000" in sections["Data"]
    images = sorted((repo / "pr-report" / "images").iterdir())
    assert images and all(image.read_bytes().startswith(PNG) for image in images)
    for title in ("Baseline training", "Tuned confusion matrix"):
        assert f"**{title}" in sections["Plots that changed"], report
    for image in images:
        assert f"(images/{image.name})" in report
