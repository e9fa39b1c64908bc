import numpy as np
import pytest

from mnist_pipeline import evaluation


@pytest.fixture
def predictions():
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 10, 500)
    logits = rng.normal(size=(500, 10))
    logits[np.arange(500), labels] += 2.5  # mostly right, some wrong
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return probabilities.astype(np.float32), labels


def test_scores_are_consistent_with_each_other(predictions):
    probabilities, labels = predictions
    result = evaluation.score(probabilities, labels)
    counts = result["confusion"]
    assert counts.sum() == len(labels)
    assert counts.sum(axis=1).tolist() == np.bincount(labels, minlength=10).tolist()
    assert result["accuracy"] == pytest.approx(np.trace(counts) / len(labels))
    assert result["accuracy"] == pytest.approx(np.mean(probabilities.argmax(axis=1) == labels))
    assert result["errors"] == len(labels) - np.trace(counts)
    assert 0.5 < result["accuracy"] < 1.0


def test_cross_entropy_matches_its_definition(predictions):
    probabilities, labels = predictions
    expected = -np.mean([np.log(float(p[label])) for p, label in zip(probabilities, labels)])
    assert evaluation.cross_entropy(probabilities, labels) == pytest.approx(expected, rel=1e-6)


def test_per_class_scores_by_hand():
    actual = np.array([0, 0, 0, 1, 1, 2])
    predicted = np.array([0, 0, 1, 1, 1, 0])
    rows = evaluation.per_class_scores(evaluation.confusion_matrix(actual, predicted))
    assert len(rows) == 10
    assert rows[0] == {"class": 0, "precision": pytest.approx(2 / 3), "recall": pytest.approx(2 / 3),
                       "f1": pytest.approx(2 / 3), "support": 3}
    assert rows[1]["precision"] == pytest.approx(2 / 3) and rows[1]["recall"] == 1.0
    assert rows[2] == {"class": 2, "precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert rows[9]["support"] == 0


def test_confusion_rows_are_one_per_example(predictions):
    probabilities, labels = predictions
    rows = evaluation.confusion_rows(labels, probabilities.argmax(axis=1))
    assert len(rows) == len(labels) and set(rows[0]) == {"actual", "predicted"}
