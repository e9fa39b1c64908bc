"""Scoring a model on the test set: accuracy, loss, confusion matrix and per-class precision, recall and F1."""

import numpy as np

from . import outputs


def confusion_matrix(actual, predicted, num_classes) -> np.ndarray:
    """counts[a, p]: how many examples of class a were predicted as p."""
    counts = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(counts, (actual, predicted), 1)
    return counts


def per_class_table(counts: np.ndarray, class_names):
    """One row per class: class (its name), precision, recall, f1, support. A class never predicted gets precision
    0."""
    rows = []
    for label, name in enumerate(class_names):
        hits = counts[label, label]
        predicted, support = counts[:, label].sum(), counts[label, :].sum()
        precision = hits / predicted if predicted else 0.0
        recall = hits / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        rows.append({"class": name, "precision": round(float(precision), 6), "recall": round(float(recall), 6),
                     "f1": round(float(f1), 6), "support": int(support)})
    return outputs.table(rows)


def cross_entropy(probabilities: np.ndarray, labels) -> float:
    """Mean negative log-likelihood of the true class, computed in float64 from the predicted probabilities."""
    picked = probabilities[np.arange(len(labels)), labels].astype(np.float64)
    return float(-np.mean(np.log(np.clip(picked, 1e-12, 1.0))))


def score(probabilities: np.ndarray, labels: np.ndarray) -> dict:
    predicted = probabilities.argmax(axis=1)
    counts = confusion_matrix(labels, predicted, probabilities.shape[1])
    return {
        "predicted": predicted,
        "confusion": counts,
        "accuracy": float(np.trace(counts) / counts.sum()),
        "loss": cross_entropy(probabilities, labels),
        "errors": int(counts.sum() - np.trace(counts)),
    }


def confusion_table(labels, predicted, class_names):
    """One row per test example, by class name, the shape DVC's `confusion` plot template counts."""
    return outputs.table({"actual": [class_names[a] for a in labels],
                            "predicted": [class_names[p] for p in predicted]})
