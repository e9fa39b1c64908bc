"""evaluate: score the baseline and the tuned model on the test set, and draw the comparison, naming each class as
the dataset's description does."""

from pathlib import Path

import numpy as np
import pandas as pd

from mnist_pipeline import artifacts, cli, data, model_files, params, runtime

MODELS = ("baseline", "tuned")


def read_history(path):
    return pd.read_csv(path, dtype=float).to_dict("records")


def report(title, results, per_class):
    total = int(results["tuned"]["confusion"].sum())
    weakest = per_class["tuned"].sort_values("f1", kind="stable").head(3).to_dict("records")
    lines = [
        f"# Test-set comparison: {title}", "",
        f"| model | test accuracy | test loss | errors (of {total}) |",
        "|---|---|---|---|",
        *(f"| {name} | {r['accuracy']:.2%} | {r['loss']:.4f} | {r['errors']} |" for name, r in results.items()),
        "", f"Tuned minus baseline: {100 * (results['tuned']['accuracy'] - results['baseline']['accuracy']):+.2f} "
            "percentage points.", "",
        "| class | baseline F1 | tuned F1 |", "|---|---|---|",
        *(f"| {name} | {b:.4f} | {t:.4f} |"
          for name, b, t in zip(per_class["tuned"]["class"], per_class["baseline"]["f1"], per_class["tuned"]["f1"])),
        "", "Weakest classes of the tuned model, by F1: "
            + ", ".join(f"{row['class']} ({row['f1']:.4f})" for row in weakest) + ".",
    ]
    return "\n".join(lines) + "\n"


def draw_figures(figures_dir, settings, class_names, x_test, y_test, results, probabilities, histories):
    from mnist_pipeline import plots

    tuned, probs = results["tuned"], probabilities["tuned"]
    confidence = probs.max(axis=1)
    n = settings["sample_count"]
    figures = {
        "training_curves.png": plots.training_curves(histories),
        "sample_predictions.png": plots.sample_predictions(x_test[:n], y_test[:n], tuned["predicted"][:n],
                                                           confidence[:n], class_names, "tuned"),
        "accuracy_comparison.png": plots.accuracy_comparison({name: r["accuracy"] for name, r in results.items()}),
    }
    wrong = np.flatnonzero(tuned["predicted"] != y_test)
    wrong = wrong[np.argsort(-confidence[wrong], kind="stable")][: settings["misclassified_count"]]
    figures["misclassified.png"] = plots.misclassified(x_test[wrong], y_test[wrong], tuned["predicted"][wrong],
                                                       confidence[wrong], class_names, "tuned", tuned["errors"])
    for name, figure in figures.items():
        artifacts.save_figure(figure, Path(figures_dir, name))


def main():
    args = cli.parse_paths(__doc__, "data", "baseline-model", "tuned-model", "baseline-history",
                           "tuned-history", "metrics", "per-class", "confusion-dir", "report", "figures", "timing")
    all_params = params.load()
    settings = all_params["evaluate"]
    runtime.configure(seed=1, **all_params["runtime"])  # inference draws no random numbers; threads matter
    from mnist_pipeline import evaluation

    clock = cli.Stopwatch()
    x_test, y_test = data.load_prepared(args.data, "test")
    x_test = data.normalize(x_test)
    description = data.load_description(args.data)
    names = description.class_names
    probabilities = {}
    for name, path in zip(MODELS, (args.baseline_model, args.tuned_model)):
        model, _ = model_files.load(path, expected=description)
        probabilities[name] = model.predict(x_test, batch_size=settings["batch_size"], verbose=0)
    results = {name: evaluation.score(probabilities[name], y_test) for name in MODELS}

    per_class = {name: evaluation.per_class_table(results[name]["confusion"], names) for name in MODELS}
    artifacts.write_table(args.per_class, pd.concat([table.assign(model=name)[["model", *table.columns]]
                                                     for name, table in per_class.items()], ignore_index=True))
    for name in MODELS:
        artifacts.write_table(Path(args.confusion_dir, f"{name}.csv"),
                              evaluation.confusion_table(y_test, results[name]["predicted"], names))
    artifacts.write_json(args.metrics, {  # the headline numbers; losses are in the report
        **{name: {"test_accuracy": round(r["accuracy"], 6), "test_errors": r["errors"]} for name, r in results.items()},
        "accuracy_gain": round(results["tuned"]["accuracy"] - results["baseline"]["accuracy"], 6),
    })
    artifacts.write_text(args.report, report(description.title, results, per_class))
    histories = {"baseline": read_history(args.baseline_history), "tuned": read_history(args.tuned_history)}
    draw_figures(args.figures, settings, names, x_test, y_test, results, probabilities, histories)
    clock.mark("evaluate_seconds")
    clock.write(args.timing)
    for name, r in results.items():
        print(f"{name}: test accuracy {r['accuracy']:.4f}, loss {r['loss']:.4f}")


if __name__ == "__main__":
    cli.run(main)
