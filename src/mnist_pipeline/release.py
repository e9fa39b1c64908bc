"""The installed package's version, which `mnist-predict --version` and `mnist-serve --version` print."""

from importlib import metadata

DISTRIBUTION = "mnist-dvc"


def version() -> str:
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"
