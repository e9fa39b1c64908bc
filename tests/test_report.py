"""The results tables of README.md and docs/ against the committed metrics (tools/report.py), and README's size."""

import subprocess
import sys
from pathlib import Path

import report

REPO = Path(__file__).resolve().parents[1]


def test_every_committed_table_agrees_with_the_committed_metrics():
    result = subprocess.run([sys.executable, str(REPO / "tools" / "report.py"), "--check"], capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr


def test_a_table_typed_over_is_caught():
    page = REPO / "README.md"
    text = page.read_text()
    [found] = [found for found in report.TABLE.finditer(text) if found.group("name") == "headline"]
    assert found.group("body") == report.render("headline")
    edited = text.replace(found.group("body"), found.group("body").replace("99.", "98.", 1))
    assert edited != text and report.rebuilt(edited) == text


def test_the_readme_is_a_guide_of_at_most_25_kb():
    assert len((REPO / "README.md").read_bytes()) <= 25_000
