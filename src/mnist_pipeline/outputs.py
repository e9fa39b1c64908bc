"""Writing a stage's outputs atomically and byte-stably: same content in, same bytes out, nothing half-written."""

import json
import os
import tempfile
from pathlib import Path

UMASK = os.umask(0)
os.umask(UMASK)


def _temp_path_beside(path: Path, suffix: str = "") -> Path:
    fd, name = tempfile.mkstemp(prefix=f".tmp-{path.stem}-", suffix=suffix, dir=path.parent)
    os.close(fd)
    os.chmod(name, 0o666 & ~UMASK)  # mkstemp makes files private; give them the usual permissions
    return Path(name)


def write_atomically(path, write, suffix=""):
    """Call `write(temp_path)`, then move the temp file onto `path` in one step; on failure remove it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = _temp_path_beside(path, suffix or "".join(path.suffixes))
    try:
        write(temp)
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def empty_directory(path):
    """An empty directory at `path`, for a stage whose declared output has nothing to hold this time. DVC removes a
    stage's outputs before it runs it; anything found there is refused, not deleted."""
    path = Path(path)
    if path.is_file() or path.is_dir() and any(path.iterdir()):
        raise FileExistsError(f"{path} exists and is not empty; move it away (this stage would leave it empty)")
    path.mkdir(parents=True, exist_ok=True)


def write_bytes(path, data: bytes):
    write_atomically(path, lambda temp: temp.write_bytes(data))


def write_text(path, text: str):
    write_bytes(path, text.encode("utf-8"))


def write_json(path, obj):
    """Sorted keys and fixed indentation, so equal objects give equal files."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def table(rows, columns=None):
    """A pandas DataFrame of `rows` (dicts) that keeps each value as Python has it, so that a CSV of it writes
    ints, floats, booleans and empty cells (None) exactly as they are, whatever else is in the column."""
    import pandas as pd

    return pd.DataFrame(rows, columns=columns, dtype=object)


def write_table(path, frame):
    """A DataFrame (see table) as CSV: its column order, no index, "\n" line ends."""
    write_text(path, frame.to_csv(index=False, lineterminator="\n"))

