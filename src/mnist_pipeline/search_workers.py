"""One search spread over several worker processes with Keras Tuner's own engine (tune.workers > 0).

The tune stage serves its oracle over gRPC with Keras Tuner's service, and starts the workers: copies of the stage
script with Keras Tuner's variables (KERASTUNER_TUNER_ID, KERASTUNER_ORACLE_IP, KERASTUNER_ORACLE_PORT) set. Each
worker asks the oracle for a trial, trains it, reports back and asks again, until the oracle has none left; all of
them share the search directory. Workers on other machines join the same way (docs/tuning.md).

The oracle has no authentication: it listens on 127.0.0.1 unless MNIST_DVC_ORACLE_ADDRESS names another address.

Each worker touches `<workspace>/<worker>.heartbeat` every few seconds from a thread of its own, from the moment it
starts; a worker whose heartbeat stops for tune.worker_silence_seconds (stopped, hung, or its machine gone) ends the
search like a worker that died: the trials that finished are kept and the next run resumes, retraining the silent
worker's trial.

Keras Tuner has a chief mode of its own (KERASTUNER_TUNER_ID=chief), but it serves on a fixed port from the
environment, checks for the end every 30 s and cannot watch its workers; so the stage serves the oracle with Keras
Tuner's internal gRPC service instead (ORACLE_SERVICE: checked when a distributed search starts).
"""

import contextlib
import importlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent import futures
from pathlib import Path

from .errors import PipelineError

ADDRESS_VARIABLE = "MNIST_DVC_ORACLE_ADDRESS"
DEFAULT_ADDRESS = "127.0.0.1:0"  # port 0: the system picks a free port
PARENT_VARIABLE = "MNIST_DVC_WORKER_OF"  # set on the workers the stage starts, so that they end when it does
POLL_SECONDS = 0.2
STOP_GRACE_SECONDS = 10
HEARTBEAT_SUFFIX = ".heartbeat"
# The internals of Keras Tuner the oracle is served with, as in the release this was written against.
KERAS_TUNER_TESTED = "1.4.8"  # as requirements.txt pins it
ORACLE_SERVICE = {"keras_tuner.src.protos": "get_service_grpc",
                  "keras_tuner.src.distribute.oracle_chief": "OracleServicer"}


class WorkerFailed(PipelineError):
    pass


def worker_name():
    """This process's name among the workers when it runs as one (Keras Tuner's KERASTUNER_TUNER_ID), else None."""
    return os.environ.get("KERASTUNER_TUNER_ID")


def first_cpu(threads: int) -> int:
    """Where this process's CPUs start, for backends pinned to CPUs rather than to a thread count (JAX): the
    workers this stage starts take turns, `threads` each; any other process starts at the first."""
    name = worker_name() or ""
    number = name.removeprefix("worker")
    return (int(number) - 1) * threads if name.startswith("worker") and number.isdigit() else 0


def oracle_address():
    address = os.environ.get(ADDRESS_VARIABLE) or DEFAULT_ADDRESS
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit() or int(port) > 65535:
        raise PipelineError(f"{ADDRESS_VARIABLE}: expected host:port (port 0 for any free one), got {address!r}")
    return host, int(port)


def oracle_service(names=ORACLE_SERVICE) -> dict:
    """{name: object} of Keras Tuner's internals the oracle is served with, or one line naming what is missing."""
    import keras_tuner

    found = {}
    for module, name in names.items():
        try:
            found[name] = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError):
            raise PipelineError(f"keras-tuner {keras_tuner.__version__} has no {module}.{name}, which a distributed "
                                f"search serves its oracle with; it was written against keras-tuner "
                                f"{KERAS_TUNER_TESTED} (requirements.txt): install that version") from None
    return found


def run_with_workers(tuner, workers: int, silence_seconds: float) -> dict:
    """Run the search of `tuner` (which holds the oracle) with `workers` local worker processes, and any that join
    from elsewhere; return the seconds of each trial that ended meanwhile. A worker that fails, or sends no heartbeat
    for `silence_seconds`, ends the search with WorkerFailed after every other worker is stopped: the trials that
    finished are kept for the next run."""
    oracle = tuner.oracle
    host, port = oracle_address()
    server, port = _serve(oracle, host, port)
    print(f"tune: oracle of search {os.path.basename(tuner.project_dir)} listening on {host}:{port}, "
          f"starting {workers} worker(s)", flush=True)
    ended_before = len(oracle.end_order)
    started = []
    previous_sigterm = signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        for number in range(1, workers + 1):
            started.append(_Worker(f"worker{number}", "127.0.0.1" if host == "0.0.0.0" else host, port))
        _wait(started, oracle, Path(tuner.project_dir).parent, silence_seconds)
    finally:
        for worker in started:
            worker.stop()
        server.stop(grace=None)
        signal.signal(signal.SIGTERM, previous_sigterm)
    ended = set(oracle.end_order[ended_before:])
    seconds = {}
    for worker in started:
        seconds.update(worker.trial_seconds(tuner.project_dir))
    return {trial: seconds[trial] for trial in sorted(seconds) if trial in ended}


def heartbeat(workspace: Path, name: str, silence_seconds: float):
    """In a worker: touch `<workspace>/<name>.heartbeat` (which also says where the worker runs) from a thread of its
    own, several times within `silence_seconds`, for as long as the process runs."""
    path = Path(workspace, name + HEARTBEAT_SUFFIX)
    interval = min(5.0, silence_seconds / 4)

    def beat():
        while True:
            with contextlib.suppress(OSError):  # no workspace (yet): the stage that serves the oracle makes it
                path.write_text(json.dumps({"pid": os.getpid(), "host": os.uname().nodename}) + "\n")
            time.sleep(interval)

    threading.Thread(target=beat, daemon=True).start()


def end_with_parent():
    """In a worker the stage started: end this process if the stage is gone (killed before it could stop us), so
    that no worker is left waiting for an oracle that no longer exists."""
    parent = os.environ.get(PARENT_VARIABLE)
    if parent:
        threading.Thread(target=_watch_parent, args=(int(parent),), daemon=True).start()


def _watch_parent(parent):
    while os.getppid() == parent:
        time.sleep(1)
    os._exit(1)


def _exit_on_sigterm(signum, frame):
    raise SystemExit(128 + signum)  # so that the workers are stopped on the way out


def _serve(oracle, host, port):
    """Keras Tuner's oracle service, as its chief process runs it, on host:port; returns the server and its port."""
    import grpc

    service = oracle_service()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    service["get_service_grpc"]().add_OracleServicer_to_server(service["OracleServicer"](oracle), server)
    try:
        bound = server.add_insecure_port(f"{host}:{port}")
    except RuntimeError:
        bound = 0
    if not bound:
        raise PipelineError(f"{ADDRESS_VARIABLE}: cannot listen on {host}:{port} (address in use, or not this "
                            "machine's)")
    server.start()
    return server, bound


def _wait(workers, oracle, workspace: Path, silence_seconds):
    waiting_shown = False
    while True:
        for worker in workers:
            worker.check()
        _check_heartbeats(workers, oracle, workspace, silence_seconds)
        if all(worker.process.poll() == 0 for worker in workers):
            running = dict(oracle.ongoing_trials)
            if not running:
                return
            if not waiting_shown:  # only workers from other machines are still at work
                print(f"tune: waiting for trial(s) {', '.join(t.trial_id for t in running.values())} on "
                      f"{', '.join(running)}", flush=True)
                waiting_shown = True
        time.sleep(POLL_SECONDS)


def _check_heartbeats(workers, oracle, workspace, silence_seconds):
    """The workers this stage started and are still running, and any other that holds a trial: each must have
    beaten within `silence_seconds` (a worker started here counts from its start, so a beat left by an earlier run
    does not count)."""
    now = time.time()
    started = {worker.name: worker for worker in workers if worker.process.poll() is None}
    ongoing = dict(oracle.ongoing_trials)  # a copy: the oracle's service thread changes it
    for name in sorted({*started, *ongoing}):
        try:
            last = Path(workspace, name + HEARTBEAT_SUFFIX).stat().st_mtime
        except OSError:
            last = None
        if name in started:
            last = max(last or 0, started[name].started_at)
        if last is not None and now - last > silence_seconds:
            if name in started:
                started[name].stop(at_once=True)
            trial = ongoing.get(name)
            raise WorkerFailed(f"{name} sent no heartbeat for {silence_seconds:g} s (stopped, hung, or its machine "
                               f"gone){f' during trial {trial.trial_id}' if trial else ''}; it and the other "
                               "workers were stopped, the trials that finished are kept, and the next run of tune "
                               "resumes the search")


class _Worker:
    """A worker process the stage started: a copy of this stage script, its output relayed line by line with its
    name in front."""

    def __init__(self, name, host, port):
        self.name = name
        self.last_line = ""
        self.started_at = time.time()
        environment = {**os.environ, "KERASTUNER_TUNER_ID": name, "KERASTUNER_ORACLE_IP": host,
                       "KERASTUNER_ORACLE_PORT": str(port), PARENT_VARIABLE: str(os.getpid())}
        self.process = subprocess.Popen([sys.executable, *sys.argv], env=environment, stdin=subprocess.DEVNULL,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace")
        self.relay = threading.Thread(target=self._relay, daemon=True)
        self.relay.start()

    def _relay(self):
        for line in self.process.stdout:
            print(f"[{self.name}] {line}", end="", flush=True)
            if line.strip():
                self.last_line = line.strip()

    def check(self):
        status = self.process.poll()
        if status in (None, 0):
            return
        self.relay.join(timeout=STOP_GRACE_SECONDS)
        how = f"was killed by {signal.Signals(-status).name}" if status < 0 else f"exited with status {status}"
        said = f" after: {self.last_line[:300]}" if self.last_line else ""
        raise WorkerFailed(f"{self.name} {how}{said}; the other workers were stopped, the trials that finished are "
                           "kept, and the next run of tune resumes the search")

    def stop(self, at_once=False):
        if self.process.poll() is None:
            if at_once:  # a stopped process would not see SIGTERM until continued
                self.process.kill()
            else:
                self.process.terminate()
            try:
                self.process.wait(timeout=STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.relay.join(timeout=STOP_GRACE_SECONDS)

    def trial_seconds(self, project_dir):
        """The seconds of the trials this worker trained, from the state Keras Tuner saved for it."""
        try:
            with open(os.path.join(project_dir, f"{self.name}.json"), "rb") as f:
                return json.load(f).get("trial_seconds", {})
        except (OSError, ValueError):
            return {}


def reexec_with_fixed_hash_seed():
    """Keras Tuner writes a Python set into oracle.json; its order follows PYTHONHASHSEED, which only a new
    interpreter can change. Restart this script once with it fixed."""
    if os.environ.get("PYTHONHASHSEED") != "0":
        os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, "PYTHONHASHSEED": "0"})
