"""transfer: fine-tune the tuned model's convolutional base on a few labelled training images of the transfer target
(params transfer.targets; one comparison per size in transfer.subsets), against the same network trained from
scratch on the same images for as many epochs. Both are scored on the target's whole test set."""

from mnist_pipeline import artifacts, cli, data, model_files, params, runtime

METHODS = ("fine_tuned", "from_scratch")


def main():
    args = cli.parse_paths(__doc__, "model", "best", "data", "metrics", "results", "timing")
    all_params = params.load()
    settings = all_params["transfer"]
    hp = params.load_hyperparameters(args.best)
    runtime.configure(settings["seed"], **all_params["runtime"])
    from mnist_pipeline import evaluation, transfer

    clock = cli.Stopwatch()
    source, _ = model_files.load(args.model)
    target = data.load_description(args.data)
    x_train, y_train = data.load_prepared(args.data, "train")
    x_test, y_test = data.load_prepared(args.data, "test")
    common = {"epochs": settings["epochs"], "batch_size": settings["batch_size"], "seed": settings["seed"]}
    metrics, rows = {}, []
    for size in settings["subsets"]:
        x, y = data.take_subset(x_train, y_train, size, settings["seed"])
        trained = {
            "fine_tuned": transfer.fine_tune(source, hp, target, x, y, frozen_epochs=settings["frozen_epochs"],
                                             unfrozen_learning_rate_factor=settings["unfrozen_learning_rate_factor"],
                                             **common),
            "from_scratch": transfer.from_scratch(hp, target, x, y, **common),
        }
        accuracy = {method: evaluation.score(model.predict(x_test, batch_size=all_params["evaluate"]["batch_size"],
                                                           verbose=0), y_test)["accuracy"]
                    for method, model in trained.items()}
        metrics[f"images_{len(y)}"] = {**{method: round(accuracy[method], 6) for method in METHODS},
                                       "gain": round(accuracy["fine_tuned"] - accuracy["from_scratch"], 6)}
        rows += [{"run": f"{len(y)} images, {method.replace('_', ' ')}", "test_accuracy": round(accuracy[method], 6)}
                 for method in METHODS]
        print(f"transfer to {target.title}, {len(y)} images: fine-tuned {accuracy['fine_tuned']:.4f}, "
              f"from scratch {accuracy['from_scratch']:.4f}")
    clock.mark("transfer_seconds")
    artifacts.write_json(args.metrics, metrics)
    artifacts.write_table(args.results, artifacts.table(rows, ["run", "test_accuracy"]))
    clock.write(args.timing)


if __name__ == "__main__":
    cli.run(main)
