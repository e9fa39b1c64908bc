"""baseline: train the original notebook's CNN on the train split, validating on the val split, and fit the temperature
that calibrates its confidence on the val split. A run killed part-way resumes from its last finished epoch."""

from mnist_pipeline import cli, outputs, prepared, runtime, settings


def main():
    args = cli.parse_paths(__doc__, "data", "checkpoints", "model", "history", "metrics", "timing")
    runtime_settings = settings.load(runtime=runtime.Runtime)
    runtime.start(runtime_settings)
    from mnist_pipeline import baseline_model, calibration, checkpoints, inputs, model_files, training

    baseline = settings.load(baseline=baseline_model.Baseline)
    runtime.seed(baseline.seed)
    clock = cli.Stopwatch()
    x, y = prepared.take_subset(*prepared.load_split(args.data, "train"), baseline.train_subset, baseline.seed)
    val = prepared.load_split(args.data, "val")
    description = prepared.load_description(args.data)
    model = baseline_model.build_baseline(baseline, description)
    run = checkpoints.Checkpoints(args.checkpoints, checkpoints.fingerprint(
        [repr(baseline), repr(runtime_settings)], prepared.data_files(args.data, "train", "val")))
    training.fit(model, x, y, batch_size=baseline.batch_size, epochs=baseline.epochs, validation_data=val,
                 callbacks=run.callbacks(), seed=baseline.seed)
    clock.mark("train_seconds")

    card = calibration.card(inputs.predict(model, val[0], 1000), val[1])
    rows = training.history_table(run.epochs())
    model_files.save(args.model, model, description, **card)
    outputs.write_table(args.history, rows)
    last = rows.iloc[-1]
    outputs.write_json(args.metrics, {"val_accuracy": last["val_accuracy"], "val_loss": last["val_loss"],
                                      "epochs": len(rows), "params": model.count_params(), **card})
    clock.write(args.timing)
    run.finish()
    print(f"baseline: val accuracy {last['val_accuracy']:.4f} after {len(rows)} epochs; temperature "
          f"{card['temperature']}")


if __name__ == "__main__":
    cli.run(main)
