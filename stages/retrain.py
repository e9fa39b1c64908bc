"""retrain: rebuild the CNN from the best hyperparameters and train it on the train split, with optional augmentation,
a cosine learning-rate schedule, a moving average of the weights and label smoothing, validating on the val split;
then fit the temperature that calibrates its confidence on the val split. A run killed part-way resumes from its last
finished epoch."""

from mnist_pipeline import cli, outputs, prepared, runtime, settings


def main():
    args = cli.parse_paths(__doc__, "data", "best", "checkpoints", "model", "history", "timing")
    runtime_settings = settings.load(runtime=runtime.Runtime)
    runtime.start(runtime_settings)
    from mnist_pipeline import calibration, checkpoints, cnn, inputs, model_files, retraining, training

    hp = cnn.load_hyperparameters(args.best)
    description = prepared.load_description(args.data)
    retrain, distortion, epochs = settings.load(retrain=retraining.Retrain,
                                                **retraining.recipe_keys(description.name))
    runtime.seed(retrain.seed)
    clock = cli.Stopwatch()
    x, y = retraining.training_images(args.data, retrain)
    val = prepared.load_split(args.data, "val")
    run = checkpoints.Checkpoints(args.checkpoints, checkpoints.fingerprint(
        [repr(hp), repr(retrain), repr(distortion), epochs, repr(runtime_settings)],
        prepared.data_files(args.data, "train", "val")))
    model = retraining.train(x, y, val, hp, description, retrain, distortion, epochs, run.callbacks())
    clock.mark("train_seconds")

    card = calibration.card(inputs.predict(model, val[0], 1000), val[1])
    rows = training.history_table(run.epochs())
    model_files.save(args.model, model, description, **card)
    outputs.write_table(args.history, rows)
    clock.write(args.timing)
    run.finish()
    print(f"retrain: train accuracy {rows['accuracy'].iloc[-1]:.4f} after {len(rows)} epochs on {len(y)} images; "
          f"validation accuracy {card['validation_accuracy']:.4f}; temperature {card['temperature']}")


if __name__ == "__main__":
    cli.run(main)
