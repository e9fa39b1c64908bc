"""transfer: fine-tune the tuned model's convolutional base on a few labelled training images of the transfer target
(params transfer.targets; one comparison per size in transfer.subsets), against the same network trained from
scratch on the same images. Each side is trained two ways: for the same epochs on all the images, and to its best
(early stopping on a held-out part of them). Every network is scored on the target's whole test set."""

from mnist_pipeline import artifacts, cli, data, model_files, params, runtime

COLUMNS = ["run", "images", "rule", "method", "test_accuracy", "steps"]


def main():
    args = cli.parse_paths(__doc__, "model", "best", "data", "metrics", "results", "timing")
    all_params = params.load()
    settings = all_params["transfer"]
    hp = params.load_hyperparameters(args.best)
    runtime.configure(settings["seed"], **all_params["runtime"])
    from mnist_pipeline import transfer

    clock = cli.Stopwatch()
    if params.dataset_name(all_params, transfer_target=True) is None:
        artifacts.write_json(args.metrics, {})
        artifacts.write_table(args.results, artifacts.table([], COLUMNS))
        print(f"transfer: no transfer target for data.dataset {all_params['data']['dataset']} (transfer.targets)")
        return
    source, _ = model_files.load(args.model)
    target = data.load_description(args.data)
    x_train, y_train = data.load_prepared(args.data, "train")
    test = data.load_prepared(args.data, "test")
    metrics, rows = {}, []
    for size in settings["subsets"]:
        x, y = data.take_subset(x_train, y_train, size, settings["seed"])
        found = transfer.compare(source, hp, target, x, y, test, settings, settings["seed"],
                                 all_params["evaluate"]["batch_size"])
        accuracy = {(row["rule"], row["method"]): row["test_accuracy"] for row in found}
        gain = {rule: round(accuracy[rule, "fine_tuned"] - accuracy[rule, "from_scratch"], 6)
                for rule in transfer.RULES}
        metrics[f"images_{len(y)}"] = {  # the fair comparison's accuracies, and the gain by either rule
            "fine_tuned": accuracy["to_its_best", "fine_tuned"],
            "from_scratch": accuracy["to_its_best", "from_scratch"],
            "gain": gain["to_its_best"], "gain_same_epochs": gain["same_epochs"]}
        rows += [{"run": f"{len(y)} images, {row['method'].replace('_', ' ')}, {row['rule'].replace('_', ' ')}",
                  "images": len(y), **row} for row in found]
        print(f"transfer to {target.title}, {len(y)} images: "
              + "; ".join(f"{rule.replace('_', ' ')}: fine-tuned {accuracy[rule, 'fine_tuned']:.4f}, from scratch "
                          f"{accuracy[rule, 'from_scratch']:.4f}" for rule in transfer.RULES))
    clock.mark("transfer_seconds")
    artifacts.write_json(args.metrics, metrics)
    artifacts.write_table(args.results, artifacts.table(rows, COLUMNS))
    clock.write(args.timing)


if __name__ == "__main__":
    cli.run(main)
