"""baseline: train the original notebook's CNN on the train split, validating on the val split."""

from mnist_pipeline import artifacts, cli, data, model_files, params, runtime


def main():
    args = cli.parse_paths(__doc__, "data", "model", "history", "metrics", "timing")
    all_params = params.load()
    settings = all_params["baseline"]
    runtime.configure(settings["seed"], **all_params["runtime"])
    from mnist_pipeline import models, training

    clock = cli.Stopwatch()
    x_train, y_train = data.take_subset(*data.load_prepared(args.data, "train"), settings["train_subset"],
                                        settings["seed"])
    x_val, y_val = data.load_prepared(args.data, "val")
    description = data.load_description(args.data)
    model = models.build_baseline_from_params(settings, description)
    history = training.fit(model, x_train, y_train, batch_size=settings["batch_size"], epochs=settings["epochs"],
                           validation_data=(x_val, y_val))
    clock.mark("train_seconds")

    rows = training.history_table(history)
    model_files.save(args.model, model, description)
    artifacts.write_table(args.history, rows)
    last = rows.iloc[-1]
    artifacts.write_json(args.metrics, {
        "val_accuracy": last["val_accuracy"],
        "val_loss": last["val_loss"],
        "epochs": len(rows),
        "params": model.count_params(),
    })
    clock.write(args.timing)
    print(f"baseline: val accuracy {last['val_accuracy']:.4f} after {len(rows)} epochs")


if __name__ == "__main__":
    cli.run(main)
