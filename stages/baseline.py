"""baseline: train the original notebook's CNN on the train split, validating on the val split."""

from mnist_pipeline import cli, outputs, prepared, runtime, settings


def main():
    args = cli.parse_paths(__doc__, "data", "model", "history", "metrics", "timing")
    runtime.start(settings.load(runtime=runtime.Runtime))
    from mnist_pipeline import baseline_model, model_files, training

    baseline = settings.load(baseline=baseline_model.Baseline)
    runtime.seed(baseline.seed)
    clock = cli.Stopwatch()
    x, y = prepared.take_subset(*prepared.load_split(args.data, "train"), baseline.train_subset, baseline.seed)
    description = prepared.load_description(args.data)
    model = baseline_model.build_baseline(baseline, description)
    history = training.fit(model, x, y, batch_size=baseline.batch_size, epochs=baseline.epochs,
                           validation_data=prepared.load_split(args.data, "val"))
    clock.mark("train_seconds")

    rows = training.history_table(history)
    model_files.save(args.model, model, description)
    outputs.write_table(args.history, rows)
    last = rows.iloc[-1]
    outputs.write_json(args.metrics, {"val_accuracy": last["val_accuracy"], "val_loss": last["val_loss"],
                                      "epochs": len(rows), "params": model.count_params()})
    clock.write(args.timing)
    print(f"baseline: val accuracy {last['val_accuracy']:.4f} after {len(rows)} epochs")


if __name__ == "__main__":
    cli.run(main)
