"""download: fetch the raw files of params `data.dataset` (or, with --transfer-target, of the dataset a model trained
on it is fine-tuned on) into --out, verified by sha256. A folder of your own images (data.dataset: images) has
nothing to fetch: prepare reads it where it is, and --out is left empty; so is it when there is no transfer target."""

from mnist_pipeline import cli, datasets, outputs, settings, sources


def main():
    args = cli.parse_paths(__doc__, "out", flags=datasets.TRANSFER_TARGET)
    data, targets, download = settings.load(data=datasets.Data, **{"transfer.targets": datasets.TARGETS},
                                            download=sources.Download)
    name = datasets.chosen(data, targets, args.transfer_target)
    if name is None or name == datasets.FOLDER:
        outputs.empty_directory(args.out)
        why = "no transfer target" if name is None else f"prepare reads {data.images.folder}"
        print(f"download: nothing to fetch ({why})")
        return
    dataset = datasets.DATASETS[name]
    chain = sources.sources_for(dataset, getattr(download.sources, dataset.name))
    used = sources.download_dataset(dataset.files, chain, args.out, download.timeout_seconds)
    print(f"downloaded the {len(dataset.files)} file(s) of {dataset.title} from {used} into {args.out}")


if __name__ == "__main__":
    cli.run(main)
