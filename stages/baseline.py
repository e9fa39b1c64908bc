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

    rows = training.history_rows(history)
    model_files.save(args.model, model, description)
    artifacts.write_csv(args.history, rows, list(rows[0]))
    artifacts.write_json(args.metrics, {
        "val_accuracy": rows[-1]["val_accuracy"],
        "val_loss": rows[-1]["val_loss"],
        "epochs": len(rows),
        "params": model.count_params(),
    })
    clock.write(args.timing)
    print(f"baseline: val accuracy {rows[-1]['val_accuracy']:.4f} after {len(rows)} epochs")


if __name__ == "__main__":
    cli.run(main)
