"""prepare: read the images of params `data.dataset` (or, with --transfer-target, of its transfer target): the raw
files download fetched, or a folder of your own images (data.dataset: images, data.images). Keep them as uint8 with
shape (N, height, width, channels), split into train, validation and test (a public dataset as it always was; a
folder by each image's content, so that a new version of it leaves every image already there in its split), and
write the dataset's description (image shape, class names) beside the arrays. The test set is only ever read after
training: by evaluate, transfer, export and explain."""

from mnist_pipeline import cli, datasets, outputs, preparation, settings


def main():
    args = cli.parse_paths(__doc__, "raw", "out", "metrics", "counts", "timing", flags=datasets.TRANSFER_TARGET)
    data, targets, prepare = settings.load(data=datasets.Data, **{"transfer.targets": datasets.TARGETS},
                                           prepare=preparation.Prepare)
    name = datasets.chosen(data, targets, args.transfer_target)
    if name is None:
        outputs.empty_directory(args.out)
        outputs.write_json(args.metrics, {})
        outputs.write_json(args.counts, {})
        print("prepare: nothing to prepare (no transfer target for data.dataset)")
        return
    clock = cli.Stopwatch()
    if name == datasets.FOLDER:
        description, counts, skipped = preparation.prepare_folder(data.images, prepare, args.out)
    else:
        (description, counts), skipped = preparation.prepare_public(datasets.DATASETS[name], args.raw, prepare,
                                                                    args.out), {}
    for split, found in counts.items():
        print(f"{description.title} {split}: {found['count']} examples")
    outputs.write_json(args.metrics, {**counts, **({"skipped": skipped} if skipped else {})})
    outputs.write_json(args.counts, {split: found["count"] for split, found in counts.items()})  # the headline
    if skipped:
        kinds = ", ".join(f"{count} {kind}" for kind, count in skipped["by_reason"].items())
        print(f"prepare: {skipped['files']} file(s) left out ({kinds}), named in {args.metrics}")
    clock.mark("prepare_seconds")
    clock.write(args.timing)


if __name__ == "__main__":
    cli.run(main)
