"""download: fetch the four raw IDX files of params `data.dataset` into --out, verified by sha256."""

from mnist_pipeline import cli, params, sources


def main():
    args = cli.parse_paths(__doc__, "out")
    settings = params.load()
    files = sources.DATASETS[settings["data"]["dataset"]]
    download = settings["download"]
    used = sources.download_dataset(files, sources.sources_from_params(download), args.out,
                                    download["timeout_seconds"])
    print(f"downloaded {len(files)} files from {used} into {args.out}")


if __name__ == "__main__":
    cli.run(main)
