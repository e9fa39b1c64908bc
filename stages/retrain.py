"""retrain: rebuild the CNN from the best hyperparameters and train it on train + val (all the training images),
with optional augmentation, a cosine learning-rate schedule, a moving average of the weights and label smoothing."""

import numpy as np

from mnist_pipeline import artifacts, cli, data, model_files, params, runtime


def main():
    args = cli.parse_paths(__doc__, "data", "best", "model", "history", "timing")
    all_params = params.load()
    settings, recipe = all_params["retrain"], params.recipe(all_params)
    hp = params.load_hyperparameters(args.best)
    runtime.configure(settings["seed"], **all_params["runtime"])
    from mnist_pipeline import models, training

    clock = cli.Stopwatch()
    train, val = data.load_prepared(args.data, "train"), data.load_prepared(args.data, "val")
    x, y = data.take_subset(np.concatenate([train[0], val[0]]), np.concatenate([train[1], val[1]]),
                            settings["train_subset"], settings["seed"])
    del train, val
    description = data.load_description(args.data)
    model = models.build_cnn_from_description(hp, description)
    steps = training.augmentation(**recipe["augmentation"]) if settings["augment"] else []
    trainer = training.with_augmentation(model, steps)
    schedule = training.learning_rate_for(settings["lr_schedule"], hp["learning_rate"], recipe["retrain_epochs"],
                                          training.steps_per_epoch(len(y), hp["batch_size"]))
    models.compile_model(trainer, schedule, settings["ema_momentum"], settings["label_smoothing"])
    history = training.fit(trainer, x, y, batch_size=hp["batch_size"], epochs=recipe["retrain_epochs"])
    clock.mark("train_seconds")

    rows = training.history_table(history)
    model_files.save(args.model, model, description)
    artifacts.write_table(args.history, rows)
    clock.write(args.timing)
    print(f"retrain: train accuracy {rows['accuracy'].iloc[-1]:.4f} after {len(rows)} epochs on {len(y)} images")


if __name__ == "__main__":
    cli.run(main)
