"""The evaluate stage's report (params evaluate): both models scored on the test set, per-class scores, confusion
tables, how well each model's confidence matches its accuracy (the expected calibration error, before and after the
temperature fitted on the validation split, and a reliability diagram), a markdown summary and figures, each class
named as the dataset's description names it."""

from pathlib import Path

import numpy as np
import pandas as pd

from . import calibration, evaluation, inputs
from .settings import Int, Section

MODELS = ("baseline", "tuned")


class Evaluate(Section):
    batch_size = inputs.PREDICT_BATCH  # transfer scores its networks in batches of this size too
    sample_count = Int(min=1, max=100)  # test images shown with their predictions
    misclassified_count = Int(min=1, max=100)  # of the tuned model's mistakes, the most confident shown


def score(models: dict, x_test, y_test, batch_size):
    """({model name: calibrated class probabilities}, {model name: evaluation.score, with the calibration}) on the
    test set; `models` maps a name to (Keras model, temperature)."""
    probabilities, results = {}, {}
    for name, (model, temperature) in models.items():
        raw = inputs.predict(model, x_test, batch_size)
        probabilities[name] = calibration.calibrated(raw, temperature)
        results[name] = {**evaluation.score(raw, y_test), "temperature": temperature,
                         "ece": calibration.expected_calibration_error(raw, y_test),
                         "ece_calibrated": calibration.expected_calibration_error(probabilities[name], y_test),
                         "reliability": calibration.reliability(raw, y_test),
                         "reliability_calibrated": calibration.reliability(probabilities[name], y_test)}
    return probabilities, results


def headline(results) -> dict:
    """The numbers a person compares (metrics/evaluate.json); losses and the baseline's calibration are in the
    report and metrics/calibration.json."""
    tuned = results["tuned"]
    return {**{name: {"test_accuracy": round(r["accuracy"], 6)} for name, r in results.items()},
            "accuracy_gain": round(tuned["accuracy"] - results["baseline"]["accuracy"], 6),
            "tuned_calibration": {"ece_as_trained": round(tuned["ece"], 6),
                                  "ece_with_temperature": round(tuned["ece_calibrated"], 6)}}


def calibration_table(results) -> dict:
    """Per model: its temperature, the ECE before and after it, and the reliability diagram's bins."""
    return {name: {"temperature": r["temperature"], "ece_as_trained": round(r["ece"], 6),
                   "ece_with_temperature": round(r["ece_calibrated"], 6),
                   "bins": [{"from": round(low, 4), "images": count, "confidence": round(confidence, 6),
                             "accuracy": round(accuracy, 6)} for low, count, confidence, accuracy in
                            r["reliability_calibrated"]]} for name, r in results.items()}


def per_class(results, class_names) -> dict:
    return {name: evaluation.per_class_table(results[name]["confusion"], class_names) for name in results}


def per_class_csv(tables):
    return pd.concat([table.assign(model=name)[["model", *table.columns]] for name, table in tables.items()],
                     ignore_index=True)


def markdown(title, results, tables) -> str:
    total = int(results["tuned"]["confusion"].sum())
    weakest = tables["tuned"].sort_values("f1", kind="stable").head(3).to_dict("records")
    lines = [
        f"# Test-set comparison: {title}", "",
        f"| model | test accuracy | test loss | errors (of {total}) |",
        "|---|---|---|---|",
        *(f"| {name} | {r['accuracy']:.2%} | {r['loss']:.4f} | {r['errors']} |" for name, r in results.items()),
        "", f"Tuned minus baseline: {100 * (results['tuned']['accuracy'] - results['baseline']['accuracy']):+.2f} "
            "percentage points.", "",
        "| class | baseline F1 | tuned F1 |", "|---|---|---|",
        *(f"| {name} | {b:.4f} | {t:.4f} |"
          for name, b, t in zip(tables["tuned"]["class"], tables["baseline"]["f1"], tables["tuned"]["f1"])),
        "", "Weakest classes of the tuned model, by F1: "
            + ", ".join(f"{row['class']} ({row['f1']:.4f})" for row in weakest) + ".", "",
        "| model | temperature | expected calibration error, as trained | with its temperature |", "|---|---|---|---|",
        *(f"| {name} | {r['temperature']:.4f} | {r['ece']:.2%} | {r['ece_calibrated']:.2%} |"
          for name, r in results.items()),
    ]
    return "\n".join(lines) + "\n"


def read_history(path):
    return pd.read_csv(path, dtype=float).to_dict("records")


def draw_figures(figures_dir, settings: Evaluate, class_names, x_test, y_test, results, probabilities, histories):
    from . import plots

    tuned, probs = results["tuned"], probabilities["tuned"]
    confidence = probs.max(axis=1)
    n = settings.sample_count
    shown = inputs.scaled(x_test[:n])
    figures = {
        "training_curves.png": plots.training_curves(histories),
        "sample_predictions.png": plots.sample_predictions(shown, y_test[:n], tuned["predicted"][:n],
                                                           confidence[:n], class_names, "tuned"),
        "accuracy_comparison.png": plots.accuracy_comparison({name: r["accuracy"] for name, r in results.items()}),
        "reliability.png": plots.reliability({name: {"before": r["reliability"], "after": r["reliability_calibrated"],
                                                     "ece": (r["ece"], r["ece_calibrated"]),
                                                     "temperature": r["temperature"]}
                                              for name, r in results.items()}),
    }
    wrong = np.flatnonzero(tuned["predicted"] != y_test)
    wrong = wrong[np.argsort(-confidence[wrong], kind="stable")][: settings.misclassified_count]
    figures["misclassified.png"] = plots.misclassified(inputs.scaled(x_test[wrong]), y_test[wrong],
                                                       tuned["predicted"][wrong], confidence[wrong], class_names,
                                                       "tuned", tuned["errors"])
    for name, figure in figures.items():
        plots.save(figure, Path(figures_dir, name))
