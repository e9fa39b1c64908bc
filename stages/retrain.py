"""retrain: rebuild the CNN from the best hyperparameters and train it on train + val (all the training images),
with optional augmentation, a cosine learning-rate schedule, a moving average of the weights and label smoothing."""

from mnist_pipeline import cli, outputs, prepared, runtime, settings


def main():
    args = cli.parse_paths(__doc__, "data", "best", "model", "history", "timing")
    runtime.start(settings.load(runtime=runtime.Runtime))
    from mnist_pipeline import cnn, model_files, retraining, training

    hp = cnn.load_hyperparameters(args.best)
    description = prepared.load_description(args.data)
    retrain, distortion, epochs = settings.load(retrain=retraining.Retrain,
                                                **retraining.recipe_keys(description.name))
    runtime.seed(retrain.seed)
    clock = cli.Stopwatch()
    x, y = retraining.training_images(args.data, retrain)
    model, history = retraining.train(x, y, hp, description, retrain, distortion, epochs)
    clock.mark("train_seconds")

    rows = training.history_table(history)
    model_files.save(args.model, model, description)
    outputs.write_table(args.history, rows)
    clock.write(args.timing)
    print(f"retrain: train accuracy {rows['accuracy'].iloc[-1]:.4f} after {len(rows)} epochs on {len(y)} images")


if __name__ == "__main__":
    cli.run(main)
