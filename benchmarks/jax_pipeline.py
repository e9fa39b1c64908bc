"""The default pipeline under JAX, timed stage by stage on the device JAX computes on (a GPU where JAX has one: `make
setup-gpu`), without DVC and without TensorFlow where there is none. Each stage's command is dvc.yaml's, run in
pipeline order in a scratch directory that holds this checkout's dvc.yaml, params.yaml (with runtime.backend: jax,
then --overrides and --set), stages/, src/ and examples/; the two download stages read the raw files from local
directories (this checkout's data/raw and data/transfer/raw, or the directories the MNIST_DVC_LOCAL_DIR_<DATASET>
variables name), so no network is needed. Where TensorFlow cannot be imported (a machine with JAX and a GPU only),
export, whose converters are TensorFlow's, is left out and named. A stage's seconds are its process's wall time,
start-up and compilation included. Beside them, JAX's float32 matrix-multiply rate on the same device, measured
before and after as a stage would (the pipeline's threads on a CPU). Prints each stage's seconds and the total;
writes benchmarks/results/jax_pipeline.csv (--out), replacing the rows of the same device and settings. Usage
(repository root; `PYTHONPATH=src` where the project is not installed):

    python benchmarks/jax_pipeline.py [--set runtime.threads=16 ...] [--overrides FILE] [--out CSV]
"""

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from matmul_peak import cpu_name, write_rows  # beside this script
from pipeline_time import local_data  # the default checkout's raw files, for the download stages

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools"))
import smoke  # noqa: E402  (tools/: the stages in pipeline order, and params overrides as dvc exp run -S reads them)

OUT = REPO / "benchmarks" / "results" / "jax_pipeline.csv"
COPIED = ("dvc.yaml", "params.yaml", "stages", "src", "examples")  # what the stage commands read
NEEDS_TENSORFLOW = ("export",)  # TensorFlow's SavedModel and TFLite converters
COLUMNS = ["device", "cpu", "jax", "settings", "seconds", "tuned_test_accuracy", "stages", "left_out",
           "matmul_gflops_before", "matmul_gflops_after"]

PEAK = """
import json, time
from mnist_pipeline import runtime, settings
runtime.start(settings.load(runtime=runtime.Runtime))
import jax, jax.numpy as jnp
device = jax.devices()[0]
n = 2048 if device.platform == "cpu" else 8192
a, b = (jax.random.normal(jax.random.key(seed), (n, n), jnp.float32) for seed in (1, 2))
product = jax.jit(jnp.matmul)
product(a, b).block_until_ready()
seconds = []
for _ in range(5):
    start = time.perf_counter()
    product(a, b).block_until_ready()
    seconds.append(time.perf_counter() - start)
gflops = round(2 * n**3 / min(seconds) / 1e9)
print(json.dumps({"device": device.device_kind, "jax": jax.__version__, "gflops": gflops}))
"""


def has_tensorflow() -> bool:
    try:
        return importlib.util.find_spec("tensorflow") is not None
    except ImportError:
        return False


def scratch_copy(scratch: Path, changes: list):
    """The files the stage commands read, in `scratch`, with runtime.backend: jax and then each of `changes` (dicts
    of params) over params.yaml."""
    for name in COPIED:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, scratch / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, scratch / name)
    for overrides in [{"runtime": {"backend": "jax"}}, *changes]:
        smoke.set_params(scratch, overrides)


def environment(scratch: Path) -> dict:
    """Stage processes' variables: the raw files' directories (where none are named already), and the scratch
    copy's src first on the import path."""
    local = {variable: os.environ.get(variable, path) for variable, path in local_data().items()}
    path = os.pathsep.join(filter(None, [str(scratch / "src"), os.environ.get("PYTHONPATH")]))
    return smoke.environment({**local, "PYTHONPATH": path})


def run(command, scratch: Path, env: dict, what: str) -> subprocess.CompletedProcess:
    result = subprocess.run(command, cwd=scratch, env=env, shell=isinstance(command, str), capture_output=True,
                            text=True)
    if result.returncode != 0:
        sys.exit(f"jax_pipeline: {what} failed:\n{result.stdout[-2000:]}{result.stderr[-3000:]}")
    return result


def run_stages(scratch: Path, env: dict, left_out: list) -> dict:
    """Each stage's command from dvc.yaml, in pipeline order, but those `left_out`: {stage: wall seconds}."""
    pipeline = yaml.safe_load((scratch / "dvc.yaml").read_text())["stages"]
    stages = {}
    for stage in smoke.STAGES:
        if stage in left_out:
            print(f"{stage}: left out (needs TensorFlow)", flush=True)
            continue
        start = time.perf_counter()
        run(pipeline[stage]["cmd"], scratch, env, stage)
        stages[stage] = round(time.perf_counter() - start, 1)
        print(f"{stage}: {stages[stage]:.1f} s", flush=True)
    return stages


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a param over params.yaml, as `dvc exp run -S` takes it (e.g. runtime.threads=16)")
    parser.add_argument("--overrides", type=Path, help="a YAML file of params over params.yaml (e.g. "
                        "tools/smoke-params.yaml), applied before --set")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    changes = [*([yaml.safe_load(args.overrides.read_text())] if args.overrides else []), smoke.overrides(args.set)]
    left_out = [] if has_tensorflow() else list(NEEDS_TENSORFLOW)
    with tempfile.TemporaryDirectory(prefix="jax-pipeline-") as scratch:
        scratch = Path(scratch)
        scratch_copy(scratch, changes)
        env = environment(scratch)
        before = json.loads(run([sys.executable, "-c", PEAK], scratch, env, "the matmul peak").stdout)
        print(f"JAX {before['jax']} on {before['device']}: float32 matmul {before['gflops']} GFLOP/s", flush=True)
        start = time.perf_counter()
        stages = run_stages(scratch, env, left_out)
        seconds = round(time.perf_counter() - start, 1)
        after = json.loads(run([sys.executable, "-c", PEAK], scratch, env, "the matmul peak").stdout)
        accuracy = json.loads((scratch / "metrics" / "evaluate.json").read_text())["tuned"]["test_accuracy"]
    print(f"the pipeline: {seconds:.1f} s, tuned test accuracy {accuracy:.4f}; float32 matmul {after['gflops']} "
          "GFLOP/s after")
    row = {"device": before["device"], "cpu": cpu_name(), "jax": before["jax"],
           "settings": " ".join([*([f"--overrides {args.overrides}"] if args.overrides else []),
                                 *(f"--set {setting}" for setting in args.set)]),
           "seconds": seconds, "tuned_test_accuracy": accuracy, "stages": json.dumps(stages),
           "left_out": " ".join(left_out), "matmul_gflops_before": before["gflops"],
           "matmul_gflops_after": after["gflops"]}
    write_rows(args.out, [row], COLUMNS, key=["device", "cpu", "settings"])  # other machines' and params' rows stay
    print(f"jax_pipeline: wrote {args.out}")


if __name__ == "__main__":
    main()
