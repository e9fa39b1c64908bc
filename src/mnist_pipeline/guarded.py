"""One way in for files from outside the pipeline's own outputs (image folders, photos, model directories,
dataset.json, a local download directory, the DVC remote's objects): regular files only, checked on the opened
descriptor (a FIFO or a device is never read, and opening one never blocks), at most a cap of bytes for each kind of
file, within a deadline, and one error line naming the file for anything else."""

import hashlib
import os
import stat
import threading
from pathlib import Path

from .errors import PipelineError

DESCRIPTION_BYTES = 1 << 20  # dataset.json
ARCHITECTURE_BYTES = 16 << 20  # model.json: Keras' serialization of a network, a few KB for this project's
MODEL_BYTES = 2 << 30  # weights and .tflite files
IMAGE_BYTES = 256 << 20  # one image file (its pixel count is capped separately, before decoding)
READ_SECONDS = 60.0  # a regular file that takes longer to read is on a stalled disk or not a file at all
BLOCK = 1 << 20


class UnsafeFile(PipelineError, OSError):
    """A file that cannot be read as a regular file of its kind: the message names it."""


def _open(path) -> int:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0))
    except IsADirectoryError:
        raise UnsafeFile(f"{path}: is a directory, not a file") from None
    except OSError as error:
        if isinstance(error, FileNotFoundError):
            raise
        raise UnsafeFile(f"{path}: cannot be opened ({error.strerror or error})") from None
    kind = os.fstat(fd).st_mode
    if not stat.S_ISREG(kind):
        os.close(fd)
        what = "a directory" if stat.S_ISDIR(kind) else "a FIFO" if stat.S_ISFIFO(kind) else "a device or socket"
        raise UnsafeFile(f"{path}: is {what}, not a regular file")
    os.set_blocking(fd, True)
    return fd


def _within_deadline(path, work, seconds):
    """work()'s result, or UnsafeFile when it has not returned within `seconds` (a read that stalls: a file of a
    kernel interface, a hung network disk). The stalled read is left to a daemon thread."""
    result = {}

    def run():
        try:
            result["value"] = work()
        except BaseException as error:  # handed to the caller
            result["error"] = error

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        raise UnsafeFile(f"{path}: not read within {seconds:g} s (not a file on a working disk?)")
    if "error" in result:
        raise result["error"]
    return result["value"]


def _blocks(fd, path, limit):
    total = 0
    while block := os.read(fd, BLOCK):
        total += len(block)
        if total > limit:
            raise UnsafeFile(f"{path}: more than {limit} bytes, too big for what it should be")
        yield block


def _read(path, limit, consume):
    fd = _open(path)
    try:
        size = os.fstat(fd).st_size
        if size > limit:
            raise UnsafeFile(f"{path}: {size} bytes, more than the {limit} a file of its kind may have")
        return consume(_blocks(fd, path, limit))
    finally:
        os.close(fd)


def read_bytes(path, limit, seconds=READ_SECONDS) -> bytes:
    """The whole content of the regular file at `path`, refused past `limit` bytes or `seconds`."""
    return _within_deadline(path, lambda: _read(path, limit, b"".join), seconds)


def sha256_of(path, limit=MODEL_BYTES, seconds=READ_SECONDS) -> str:
    def digest(blocks):
        found = hashlib.sha256()
        for block in blocks:
            found.update(block)
        return found.hexdigest()

    return _within_deadline(path, lambda: _read(path, limit, digest), seconds)


def inside(path, root) -> bool:
    """Whether `path`, its symlinks followed, stays inside the folder `root` (its symlinks followed too)."""
    try:
        return Path(path).resolve().is_relative_to(Path(root).resolve())
    except (OSError, RuntimeError):  # a symlink loop
        return False
