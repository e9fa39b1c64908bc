"""serve: a trained model behind TensorFlow Serving's REST API, on 127.0.0.1 by default (the `mnist-serve` command,
`make serve`). A client written against TensorFlow Serving works unchanged against it (serving_protocol.py); beside
it, an endpoint for image files and a page (serving_app.py).

The model is the exported int8 .tflite by default, run by LiteRT; --model takes the float32 one or a model
directory. Every request that cannot be answered gets a 4xx naming the problem (a wrong shape or dtype, a body over
--max-body-bytes, something that is not JSON, an unknown model name, a body that does not arrive within
--body-seconds, headers that do not within --header-seconds, a Host it does not answer to), and the server goes on
serving. It holds its limits against clients that misbehave: at most --max-connections open at once (the rest are
answered 503 and closed at once), headers within their deadline, uploads decoded off the event loop under
--max-pixels, and a request framed two ways (Content-Length and Transfer-Encoding) refused and its connection
closed."""

import argparse
import json
import logging
import math
import re
import resource
import socket
import time
from pathlib import Path

from . import cli, release
from .errors import PipelineError

DEFAULT_MODEL = "models/export/int8.tflite"
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"%(prog)s {release.version()}")
    parser.add_argument("--model", default=DEFAULT_MODEL, metavar="PATH",
                        help=f"a .tflite file or a model directory (default {DEFAULT_MODEL}); with --artifact, the "
                             "file to serve within the artifact (default int8.tflite, or the directory itself)")
    parser.add_argument("--artifact", metavar="NAME",
                        help="serve a model of the registry instead: artifact NAME of dvc.yaml (exported-model, "
                             "tuned-model), as `dvc artifacts get` fetches it (docs/registry.md)")
    parser.add_argument("--stage", help="with --artifact: the registry stage to serve, e.g. prod (default: the latest "
                                        "version)")
    parser.add_argument("--repo", default=".", help="with --artifact: the DVC repository (a path or a Git URL; "
                                                    "default .)")
    parser.add_argument("--name", help="the model's name in the URLs (default: its dataset's name, e.g. mnist)")
    parser.add_argument("--host", default="127.0.0.1", help="where to listen (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=8501, help="default 8501, TensorFlow Serving's REST port; 0: any")
    parser.add_argument("--allowed-host", action="append", default=[], metavar="HOST",
                        help="a Host header to answer besides this machine's own names (repeatable; `*` for any, "
                             "behind a proxy that checks it)")
    parser.add_argument("--max-body-bytes", type=int, default=8 << 20, metavar="N",
                        help="refuse larger request bodies (default 8 MiB: about 1 000 images as JSON)")
    parser.add_argument("--body-seconds", type=float, default=10.0, metavar="S",
                        help="refuse a body that takes longer to arrive (default 10)")
    parser.add_argument("--header-seconds", type=float, default=10.0, metavar="S",
                        help="close a connection whose request line and headers take longer (default 10)")
    parser.add_argument("--max-connections", type=int, default=100, metavar="N",
                        help="connections open at once; more are answered 503 and closed (default 100)")
    parser.add_argument("--max-pixels", type=int, default=4_000_000, metavar="N",
                        help="refuse an uploaded image with more pixels, before decoding it (default 4 000 000)")
    parser.add_argument("--threads", type=int, default=2, help="LiteRT's threads (default 2)")
    args = parser.parse_args(argv)
    for name in ("max_body_bytes", "max_connections", "max_pixels", "threads"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
    for name in ("body_seconds", "header_seconds"):
        if not math.isfinite(getattr(args, name)) or getattr(args, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} must be a positive number of seconds, got "
                         f"{getattr(args, name)}")
    if not 0 <= args.port <= 65535:
        parser.error(f"--port must be 0-65535, got {args.port}")
    if args.stage and not args.artifact:
        parser.error("--stage names a stage of the model registry: give --artifact too")
    if args.name is not None and (not NAME.fullmatch(args.name) or args.name in (".", "..")):
        parser.error(f"--name {args.name!r}: a model name is 1-64 letters, digits, '.', '_' or '-', starting with a "
                     "letter or digit")
    return args


def guarded_protocol(header_seconds, max_connections):
    """uvicorn's h11 protocol with what it lacks: a deadline for the request line and headers (uvicorn has none:
    its keep-alive timer restarts with every byte), counted from the connection's start and again after each
    response, and a cap on open connections that turns the excess away before it reads a byte."""
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class GuardedH11Protocol(H11Protocol):
        header_timer = None

        def connection_made(self, transport):
            super().connection_made(transport)
            if len(self.connections) > max_connections:
                transport.write(b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\n"
                                b"connection: close\r\ncontent-length: 32\r\n\r\ntoo many connections; try again\n")
                transport.close()
                return
            self._await_headers()

        def _await_headers(self):
            self._stop_header_timer()
            self.header_timer = self.loop.call_later(header_seconds, self._headers_too_slow)

        def _stop_header_timer(self):
            if self.header_timer is not None:
                self.header_timer.cancel()
                self.header_timer = None

        def _headers_too_slow(self):
            if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
                self.transport.write(b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain\r\n"
                                     b"connection: close\r\ncontent-length: 40\r\n\r\n"
                                     b"the request headers did not arrive in time")
                self.transport.close()

        def handle_events(self):
            super().handle_events()
            if self.conn.their_state is not h11.IDLE:  # a whole request head has arrived
                self._stop_header_timer()

        def on_response_complete(self):
            super().on_response_complete()
            if not self.transport.is_closing():
                self._await_headers()

        def connection_lost(self, exc):
            self._stop_header_timer()
            super().connection_lost(exc)

    return GuardedH11Protocol


class OncePerInterval(logging.Filter):
    """Lets a message through once per `seconds`, with how many like it were held back: a flood of identical errors
    (accept() failing for want of file descriptors, say) becomes one line every few seconds."""

    def __init__(self, seconds=10.0):
        super().__init__()
        self.seconds, self.last, self.held = seconds, {}, {}

    def filter(self, record):
        key = (record.name, record.msg if isinstance(record.msg, str) else repr(record.msg))
        now = time.monotonic()
        if now - self.last.get(key, -math.inf) < self.seconds:
            self.held[key] = self.held.get(key, 0) + 1
            return False
        held = self.held.pop(key, 0)
        self.last[key] = now
        if held:
            record.msg = f"{record.msg} ({held} more like it in the last {self.seconds:g} s)"
        return True


def fetch_artifact(repo, name, stage, inside, workdir: Path) -> Path:
    """The model of artifact `name` (at registry `stage`, else its latest version) fetched by `dvc artifacts get` into
    `workdir`: the file `inside` it when the artifact is a directory holding one (export's int8.tflite by default),
    else the artifact itself (a model directory)."""
    import subprocess
    import sys

    target = workdir / name
    command = [sys.executable, "-m", "dvc", "artifacts", "get", str(repo), name, "--out", str(target), "--force",
               *(["--stage", stage] if stage else [])]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        said = [line.strip() for line in (result.stderr + result.stdout).splitlines() if line.strip()]
        raise PipelineError(f"artifact {name}{f' at stage {stage}' if stage else ''} of {repo}: "
                            f"{next((line for line in said if line.startswith('ERROR')), said[-1] if said else '?')}")
    print(f"serve: artifact {name}{f' ({stage})' if stage else ''} of {repo} fetched into {target}", flush=True)
    return target / inside if target.is_dir() and (target / inside).is_file() else target


def listening_socket(host, port) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise PipelineError(f"cannot listen on {host}:{port}: {error.strerror or error}") from None
    sock.listen(2048)  # from here a client that connects waits for the server instead of being refused
    sock.set_inheritable(True)
    return sock


def _more_file_descriptors(wanted):
    """Raise this process's soft limit of open files towards its hard limit, to hold `wanted` connections."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    goal = wanted + 64 if hard == resource.RLIM_INFINITY else min(hard, wanted + 64)
    if soft != resource.RLIM_INFINITY and soft < goal:
        resource.setrlimit(resource.RLIMIT_NOFILE, (goal, hard))
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return wanted if soft == resource.RLIM_INFINITY else min(wanted, max(1, soft - 64))


def main(argv=None):
    args = parse_args(argv)
    import uvicorn

    from .serving_app import Service, app

    model = args.model
    if args.artifact:
        import tempfile

        model = fetch_artifact(args.repo, args.artifact, args.stage, Path(args.model).name,
                               Path(tempfile.mkdtemp(prefix="mnist-serve-")))
    service = Service(model, args.name, args.threads, args.max_pixels)
    max_connections = _more_file_descriptors(args.max_connections)
    sock = listening_socket(args.host, args.port)
    host, port = sock.getsockname()[:2]
    hosts = [*LOCAL_HOSTS, *([] if args.host in ("0.0.0.0", "::") else [args.host]), *args.allowed_host]
    for name in ("asyncio", "uvicorn.error"):
        logging.getLogger(name).addFilter(OncePerInterval())
    print(f"serve: {service.model_path} ({service.description.title}) as model {json.dumps(service.name)} on "
          f"http://{'[' + host + ']' if ':' in host else host}:{port}/ (page at /, API at /v1/models/{service.name})",
          flush=True)
    config = uvicorn.Config(app(service, args.max_body_bytes, args.body_seconds, hosts), log_level="warning",
                            timeout_keep_alive=5, http=guarded_protocol(args.header_seconds, max_connections),
                            lifespan="off")
    uvicorn.Server(config).run(sockets=[sock])


def command():
    """The mnist-serve entry point."""
    cli.run(main)


if __name__ == "__main__":
    command()
