"""What every stage script shares: argument parsing, the run clock and turning known errors into one clear line."""

import argparse
import resource
import sys
import time
from pathlib import Path

from . import artifacts
from .errors import PipelineError


# download and prepare: work on the transfer target of data.dataset (params transfer.targets) instead of it.
TRANSFER_TARGET = {"transfer-target": "the dataset params transfer.targets names for data.dataset"}


def parse_paths(description, *names, flags=None):
    """Each name becomes a required `--name PATH` option; dvc.yaml is the one place the paths are written.
    `flags` maps the name of each on/off option to its help."""
    parser = argparse.ArgumentParser(description=description)
    for name in names:
        parser.add_argument(f"--{name}", required=True, metavar="PATH")
    for name, help in (flags or {}).items():
        parser.add_argument(f"--{name}", action="store_true", help=help)
    return parser.parse_args()


def run(main):
    """Run a stage's main(). A PipelineError, or an OSError such as a missing input file, ends it with
    `<stage>: error: <message>` and exit status 1; any other exception is a bug and keeps its traceback."""
    try:
        main()
    except (PipelineError, OSError) as error:
        stage = Path(sys.argv[0]).stem
        print(f"{stage}: error: {error}", file=sys.stderr)
        sys.exit(1)


class Stopwatch:
    """Wall-clock seconds, written to a timing file that dvc.yaml lists as a metric but no stage declares as an
    output: clock values would otherwise change the hashes in dvc.lock on every run."""

    def __init__(self):
        self.start = time.perf_counter()
        self.marks = {}

    def mark(self, name):
        self.marks[name] = round(time.perf_counter() - self.start, 2)

    def write(self, path, **extra):
        """The marks, `extra`, and the peak resident memory of this process so far."""
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB
        artifacts.write_json(path, {**self.marks, **extra, "peak_memory_mb": round(peak_mb)})
