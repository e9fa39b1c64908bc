"""download: fetch the raw files of params `data.dataset` (or, with --transfer-target, of the dataset a model trained
on it is fine-tuned on) into --out, verified by sha256."""

from mnist_pipeline import cli, datasets, params, sources


def main():
    args = cli.parse_paths(__doc__, "out", flags=cli.TRANSFER_TARGET)
    settings = params.load()
    dataset = datasets.DATASETS[params.dataset_name(settings, args.transfer_target)]
    download = settings["download"]
    chain = sources.sources_for(dataset, download["sources"][dataset.name])
    used = sources.download_dataset(dataset.files, chain, args.out, download["timeout_seconds"])
    print(f"downloaded the {len(dataset.files)} file(s) of {dataset.title} from {used} into {args.out}")


if __name__ == "__main__":
    cli.run(main)
