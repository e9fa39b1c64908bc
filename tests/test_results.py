"""The committed results, read as a reader of the tables would: a comparison whose baseline never trained is not a
result."""

import json
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]


def test_trained_to_its_best_no_network_from_scratch_sits_at_chance_where_the_fine_tuned_one_does_not():
    classes = len(json.loads((REPO / "metrics/transfer_data.json").read_text())["test"]["per_class"])
    chance, margin = 1 / classes, 0.05
    runs = pd.read_csv(REPO / "metrics/transfer.csv")
    best = runs[runs["rule"] == "to_its_best"].pivot(index="images", columns="method", values="test_accuracy")
    assert len(best) == len(json.loads((REPO / "metrics/transfer.json").read_text()))
    for images, row in best.iterrows():
        if row["fine_tuned"] > chance + margin:
            assert row["from_scratch"] > chance + margin, f"{images} images: from scratch at chance, {row.to_dict()}"
