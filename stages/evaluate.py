"""evaluate: score the baseline and the tuned model on the test set, measure how well each one's confidence (with its
temperature, and without) matches its accuracy, and draw the comparison, naming each class as the dataset's
description does."""

from pathlib import Path

from mnist_pipeline import cli, outputs, prepared, runtime, settings


def main():
    args = cli.parse_paths(__doc__, "data", "baseline-model", "tuned-model", "baseline-history",
                           "tuned-history", "metrics", "calibration", "per-class", "confusion-dir", "report", "figures",
                           "timing")
    runtime.start(settings.load(runtime=runtime.Runtime))
    runtime.seed(1)  # inference draws no random numbers; threads matter
    from mnist_pipeline import evaluation, evaluation_report, model_loading

    report = settings.load(evaluate=evaluation_report.Evaluate)
    clock = cli.Stopwatch()
    x_test, y_test = prepared.load_split(args.data, "test")
    description = prepared.load_description(args.data)
    names = description.class_names
    models = {}
    for name, path in zip(evaluation_report.MODELS, (args.baseline_model, args.tuned_model)):
        model, _, card = model_loading.load_with_card(path, expected=description)
        models[name] = model, card.temperature
    probabilities, results = evaluation_report.score(models, x_test, y_test, report.batch_size)

    tables = evaluation_report.per_class(results, names)
    outputs.write_table(args.per_class, evaluation_report.per_class_csv(tables))
    for name in evaluation_report.MODELS:
        outputs.write_table(Path(args.confusion_dir, f"{name}.csv"),
                            evaluation.confusion_table(y_test, results[name]["predicted"], names))
    outputs.write_json(args.metrics, evaluation_report.headline(results))
    outputs.write_json(args.calibration, evaluation_report.calibration_table(results))
    outputs.write_text(args.report, evaluation_report.markdown(description.title, results, tables))
    histories = {"baseline": evaluation_report.read_history(args.baseline_history),
                 "tuned": evaluation_report.read_history(args.tuned_history)}
    evaluation_report.draw_figures(args.figures, report, names, x_test, y_test, results, probabilities, histories)
    clock.mark("evaluate_seconds")
    clock.write(args.timing)
    for name, r in results.items():
        print(f"{name}: test accuracy {r['accuracy']:.4f}, loss {r['loss']:.4f}, calibration error {r['ece']:.2%} as "
              f"trained, {r['ece_calibrated']:.2%} with temperature {r['temperature']}")


if __name__ == "__main__":
    cli.run(main)
