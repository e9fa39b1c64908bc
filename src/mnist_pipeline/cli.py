"""What every stage script shares: argument parsing, the run clock and turning known errors into one clear line."""

import argparse
import atexit
import os
import re
import resource
import sys
import threading
import time
from pathlib import Path

from . import outputs
from .errors import PipelineError


def parse_paths(description, *names, flags=None):
    """Each name becomes a required `--name PATH` option; dvc.yaml is the one place the paths are written.
    `flags` maps the name of each on/off option to its help."""
    parser = argparse.ArgumentParser(description=description)
    for name in names:
        parser.add_argument(f"--{name}", required=True, metavar="PATH")
    for name, help in (flags or {}).items():
        parser.add_argument(f"--{name}", action="store_true", help=help)
    return parser.parse_args()


def program() -> str:
    """The name error lines start with: the stage's script (tune), or the command (mnist-predict)."""
    return Path(sys.argv[0]).stem


def run(main):
    """Run a stage's main(). A PipelineError, or an OSError such as a missing input file, ends it with
    `<stage>: error: <message>` and exit status 1; any other exception is a bug and keeps its traceback."""
    if not os.environ.get(NATIVE_LOGS_VARIABLE):
        drop_native_logs()
    try:
        main()
    except (PipelineError, OSError) as error:
        print(f"{program()}: error: {error}", file=sys.stderr)
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
        outputs.write_json(path, {**self.marks, **extra, "peak_memory_mb": round(peak_mb)})


# TensorFlow, XLA, LiteRT and gRPC log from C++ through absl, which ignores TF_CPP_MIN_LOG_LEVEL until
# absl::InitializeLog() is called, and TensorFlow never calls it: every stage would print lines such as
# "I0000 00:00:1796237834.172877 2482 port.cc:153] oneDNN custom operations are on" and "E0000 ... NodeDef mentions
# attribute use_unbounded_threadpool" (harmless: Keras is newer than TensorFlow's op registry).
NATIVE_LOG_LINE = re.compile(rb"[IWEF]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ [\w./-]+:\d+\] "
                             rb"|WARNING: All log messages before absl::InitializeLog\(\) is called"
                             rb"|INFO: Created TensorFlow Lite XNNPACK delegate")
NATIVE_LOGS_VARIABLE = "MNIST_DVC_NATIVE_LOGS"  # set to 1 to see them


def drop_native_logs():
    """Route file descriptor 2, where C++ code writes, through a thread that drops NATIVE_LOG_LINE lines and passes
    the rest on. Python's sys.stderr keeps writing to the original stderr directly, so its messages and tracebacks
    are untouched; at exit the thread passes on what is left."""
    sys.stderr.flush()
    original = os.dup(2)
    sys.stderr = open(original, "w", buffering=1, encoding=sys.stderr.encoding,  # noqa: SIM115  (for good)
                      errors=sys.stderr.errors, closefd=False)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)
    relay = threading.Thread(target=_relay_native_stderr, args=(read_end, original), daemon=True)
    relay.start()

    def finish():
        os.dup2(original, 2)  # closes the pipe's last write end in this process: the relay reads to its end
        relay.join(timeout=5)

    atexit.register(finish)


def _relay_native_stderr(read_end, original):
    pending = b""
    with open(read_end, "rb", buffering=0) as pipe:
        while chunk := pipe.read(1 << 16):
            *lines, pending = (pending + chunk).split(b"\n")
            kept = b"".join(line + b"\n" for line in lines if not NATIVE_LOG_LINE.match(line))
            if kept:
                os.write(original, kept)
    if pending and not NATIVE_LOG_LINE.match(pending):
        os.write(original, pending)
