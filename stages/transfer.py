"""transfer: fine-tune the tuned model's convolutional base on a few labelled training images of the transfer target
(params transfer.targets; one comparison per size in transfer.subsets), against the same network trained from
scratch on the same images. Each side is trained two ways: for the same epochs on all the images, and to its best
(early stopping on a held-out part of them). Every network is scored on the target's whole test set."""

from pathlib import Path

from mnist_pipeline import cli, outputs, prepared, runtime, settings


def main():
    args = cli.parse_paths(__doc__, "model", "best", "data", "checkpoints", "metrics", "results", "timing")
    runtime_settings = settings.load(runtime=runtime.Runtime)
    runtime.start(runtime_settings)
    from mnist_pipeline import checkpoints, cnn, inputs, model_loading, transfer

    comparison, batch_size = settings.load(transfer=transfer.Transfer, **{"evaluate.batch_size": inputs.PREDICT_BATCH})
    hp = cnn.load_hyperparameters(args.best)
    runtime.seed(comparison.seed)
    clock = cli.Stopwatch()
    if not Path(args.data, prepared.DESCRIPTION_FILE).exists():  # transfer_prepare found no target
        outputs.write_json(args.metrics, {})
        outputs.write_table(args.results, outputs.table([], transfer.COLUMNS))
        print("transfer: no transfer target for this dataset (params transfer.targets)")
        return
    source, _ = model_loading.load(args.model)
    done = checkpoints.Checkpoints(args.checkpoints, checkpoints.fingerprint(
        [repr(comparison), batch_size, repr(hp), repr(runtime_settings)],
        [*prepared.data_files(args.data, "train", "test"), *model_loading.model_files(args.model)]))
    metrics, rows = transfer.run(source, hp, args.data, comparison, batch_size, done)
    clock.mark("transfer_seconds")
    outputs.write_json(args.metrics, metrics)
    outputs.write_table(args.results, outputs.table(rows, transfer.COLUMNS))
    clock.write(args.timing)
    done.finish()


if __name__ == "__main__":
    cli.run(main)
