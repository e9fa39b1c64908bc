"""One way in for outside files: a FIFO, a device, an oversized or stalled file is one error naming it, never a hang
or a bare traceback (where models and downloads meet it: test_model_files.py, test_sources.py)."""

import os
import time

import pytest

from mnist_pipeline import guarded


def test_a_fifo_a_device_and_an_oversized_file_are_refused_at_once_naming_them(tmp_path):
    os.mkfifo(tmp_path / "pipe")
    (tmp_path / "big").write_bytes(b"x" * 2048)
    start = time.monotonic()
    with pytest.raises(guarded.UnsafeFile, match=r"pipe: is a FIFO, not a regular file"):
        guarded.read_bytes(tmp_path / "pipe", 1024)
    with pytest.raises(guarded.UnsafeFile, match=r"^/dev/zero: is a device or socket, not a regular file"):
        guarded.read_bytes("/dev/zero", 1024)
    with pytest.raises(guarded.UnsafeFile, match=r"big: 2048 bytes, more than the 1024"):
        guarded.read_bytes(tmp_path / "big", 1024)
    with pytest.raises(guarded.UnsafeFile, match=r"is a directory, not a regular file"):
        guarded.read_bytes(tmp_path, 1024)
    assert time.monotonic() - start < 2


def test_a_read_that_stalls_ends_at_its_deadline():
    if not os.access("/proc/kmsg", os.R_OK):
        pytest.skip("/proc/kmsg is not readable here (needs root)")
    start = time.monotonic()
    with pytest.raises(guarded.UnsafeFile, match=r"/proc/kmsg: (not read within 1 s|is a device|cannot be opened)"):
        guarded.read_bytes("/proc/kmsg", 1 << 20, seconds=1)
    assert time.monotonic() - start < 5
