"""download: fetch the four raw IDX files of params `data.dataset` into --out, verified by sha256."""

from mnist_pipeline import cli, params, sources


def main():
    args = cli.parse_paths(__doc__, "out")
    settings = params.load()
    checksums = sources.DATASETS[settings["data"]["dataset"]]
    used = sources.download_dataset(checksums, sources.sources_from_params(settings["download"]), args.out)
    print(f"downloaded {len(checksums)} files from {used} into {args.out}")


if __name__ == "__main__":
    cli.run(main)
