"""mnist-serve under load, per model format: for each of the int8 and float32 .tflite files and the model
directory, start the server on 127.0.0.1, send single-image predict requests from N concurrent clients (each its own
keep-alive connection) for a bounded time, and report requests per second and p50/p95/p99 latency, beside the
format's own single-image latency through its runner (export's measurement) and the same-run matmul peak. The
server's resident memory is read every second under load: the first, last and highest readings show whether it
stays flat. Then the int8 model once more with a slow-client mix beside the same clients: `--slow-clients`
connections that send their headers a byte every half second (and reconnect when the server cuts them off), to show
that well-behaved clients keep their latency while the server sheds the slow ones.
Needs `make repro` (models/export and models/tuned). Usage:

    .venv/bin/python benchmarks/serve_load.py [--clients 8] [--seconds 20] [--slow-clients 50]

It writes benchmarks/results/serve_load.csv (the table of docs/export.md, by `make report`).
"""

import argparse
import http.client
import json
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import matmul_peak  # beside this script
import numpy as np

from mnist_pipeline import cli, inputs, outputs, prepared

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "benchmarks" / "results" / "serve_load.csv"
FORMATS = {"tflite_int8": "models/export/int8.tflite", "tflite_float32": "models/export/float32.tflite",
           "keras": "models/tuned"}


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def resident_mb(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def start(model, port):
    server = subprocess.Popen([Path(sys.executable).with_name("mnist-serve"), "--model", model, "--port", str(port)],
                              cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request("GET", "/v1/models/mnist")
            if connection.getresponse().status == 200:
                return server
        except OSError:
            time.sleep(0.2)
    server.kill()
    sys.exit(f"mnist-serve did not start with {model}")


def client(port, bodies, until, latencies, failures):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    i = 0
    while time.monotonic() < until:
        sent = time.perf_counter()
        try:
            connection.request("POST", "/v1/models/mnist:predict", bodies[i % len(bodies)],
                               {"Content-Type": "application/json"})
            response = connection.getresponse()
            response.read()
            latencies.append(time.perf_counter() - sent)
            failures[0] += response.status != 200
        except OSError:  # no answer: a failed request, outside the latencies; the next one opens a new connection
            failures[0] += 1
            connection.close()
        i += 1


def slow_client(port, until, cut_off):
    """Headers a byte every 0.5 s, never finished; counts the times the server closed the connection on it."""
    line = b"GET /v1/models/mnist HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"x" * 10_000
    while time.monotonic() < until:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as connection:
                for byte in line:
                    if time.monotonic() >= until:
                        return
                    connection.sendall(bytes([byte]))
                    time.sleep(0.5)
        except OSError:  # cut off (or refused while at the connection cap): try again, as an attacker would
            cut_off[0] += 1
            time.sleep(0.1)


def load(model, clients, seconds, bodies, slow_clients=0):
    port = free_port()
    server = start(model, port)
    try:
        latencies, failures, memory, cut_off = [], [0], [], [0]  # memory: a reading each second under load
        until = time.monotonic() + seconds
        threads = [threading.Thread(target=client, args=(port, bodies[i::clients], until, latencies, failures))
                   for i in range(clients)]
        threads += [threading.Thread(target=slow_client, args=(port, until, cut_off), daemon=True)
                    for _ in range(slow_clients)]
        for thread in threads:
            thread.start()
        while any(thread.is_alive() for thread in threads):
            time.sleep(1)
            memory.append(resident_mb(server.pid))
        for thread in threads:
            thread.join()
    finally:
        server.terminate()
        server.wait()
    p50, p95, p99 = np.percentile(latencies, [50, 95, 99]) * 1000
    return {"requests_per_second": len(latencies) / seconds, "p50": p50, "p95": p95, "p99": p99,
            "failed": failures[0], "memory_mb": (memory[0], memory[-1], max(memory)), "slow_cut_off": cut_off[0]}


def single_image_ms(model, images):
    from mnist_pipeline import inference

    runner, _ = inference.open_runner(REPO / model, threads=2)
    return inference.latency_ms(runner, images, 200)[0]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--slow-clients", type=int, default=50)
    args = parser.parse_args()
    x_test = inputs.scaled(prepared.load_split(REPO / "data/prepared", "test")[0])
    bodies = [json.dumps({"instances": [image.tolist()]}) for image in x_test[:200]]
    before, rows = matmul_peak.measured(), []
    runs = [(name, model, 0) for name, model in FORMATS.items()] + [("tflite_int8", FORMATS["tflite_int8"],
                                                                      args.slow_clients)]
    for name, model, slow in runs:
        found = load(model, args.clients, args.seconds, bodies, slow)
        first, last, highest = found["memory_mb"]
        rows.append({"format": name, "clients": args.clients, "slow_clients": slow,
                     "slow_cut_off": found["slow_cut_off"], "seconds": args.seconds,
                     "requests_per_second": round(found["requests_per_second"], 1),
                     **{key: round(found[key], 2) for key in ("p50", "p95", "p99")}, "failed": found["failed"],
                     "runner_p50_ms": single_image_ms(model, x_test[:200]), "memory_first_mb": round(first),
                     "memory_last_mb": round(last), "memory_highest_mb": round(highest)})
        print(rows[-1], flush=True)
    outputs.write_table(OUT, outputs.table(matmul_peak.with_machine(rows, before)))


if __name__ == "__main__":
    cli.run(main)
