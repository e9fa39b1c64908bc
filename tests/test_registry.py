"""The model registry for real: the smoke pipeline's models registered with GTO as Git tags in a scratch repository,
pushed to a real DVC remote, assigned to the prod stage, fetched by stage with `dvc artifacts get` from another folder,
and served by stage with `mnist-serve --artifact`."""

import http.client
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import smoke
from helpers import make

pytestmark = pytest.mark.pipeline
GTO = Path(sys.executable).with_name("gto")
SERVE = Path(sys.executable).with_name("mnist-serve")


def gto(repo, *args):
    return smoke.run(repo, str(GTO), *args, env={"GIT_AUTHOR_NAME": "registry", "GIT_AUTHOR_EMAIL": "r@localhost",
                                                  "GIT_COMMITTER_NAME": "registry",
                                                  "GIT_COMMITTER_EMAIL": "r@localhost"})


def files(folder) -> dict:
    return {path.name: path.read_bytes() for path in Path(folder).iterdir() if path.is_file()}


def get(repo, stage, out, env):
    smoke.dvc(out.parent, "artifacts", "get", str(repo), "exported-model", "--stage", stage, "-o", str(out),
              "--force", env=env)
    return files(out)


def test_a_model_is_registered_assigned_to_prod_fetched_by_stage_and_served(scratch, tmp_path):
    repo, env = scratch
    store = tmp_path / "store"
    smoke.dvc(repo, "remote", "modify", "storage", "url", str(store))  # absolute: a clone elsewhere finds it
    smoke.git(repo, "commit", "--quiet", "-am", "the remote")
    make(repo, "push", env=env)
    first = files(repo / "models/export")
    gto(repo, "register", "exported-model", "--version", "v1.0.0")

    smoke.set_params(repo, {"export": {"representative_images": 50}})  # another int8 calibration: another model
    smoke.dvc(repo, "repro", env=env)
    smoke.git(repo, "commit", "--quiet", "-am", "export calibrated on 50 images")
    make(repo, "push", env=env)
    second = files(repo / "models/export")
    assert first["int8.tflite"] != second["int8.tflite"]
    gto(repo, "register", "exported-model", "--version", "v1.1.0")

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    gto(repo, "assign", "exported-model", "--version", "v1.0.0", "--stage", "prod")
    assert get(repo, "prod", elsewhere / "prod", env) == first
    time.sleep(1.1)  # a stage's latest assignment is its newest tag, and tag times are whole seconds
    gto(repo, "assign", "exported-model", "--version", "v1.1.0", "--stage", "prod")
    assert get(repo, "prod", elsewhere / "prod-again", env) == second
    shown = json.loads(gto(repo, "show", "--json").stdout)
    assert "exported-model" in json.dumps(shown) and "prod" in json.dumps(shown)

    process = subprocess.Popen([str(SERVE), "--artifact", "exported-model", "--stage", "prod", "--repo", str(repo),
                                "--port", "0"], cwd=elsewhere, env=smoke.environment(env), stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    try:
        lines = [process.stdout.readline(), process.stdout.readline()]
        assert "artifact exported-model (prod)" in lines[0], lines
        port = int(lines[1].split("http://127.0.0.1:")[1].split("/")[0])
        deadline = time.monotonic() + 30
        while True:
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                connection.request("GET", "/v1/models/mnist/metadata")
                metadata = json.loads(connection.getresponse().read())
                break
            except OSError:
                assert time.monotonic() < deadline
                time.sleep(0.2)
        assert metadata["metadata"]["dataset"]["name"] == "mnist"
    finally:
        process.terminate()
        process.communicate(timeout=10)
