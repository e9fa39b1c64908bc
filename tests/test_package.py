"""The package as a user installs it: `pip install ".[serve]"` into a clean virtual environment, with the versions
requirements.txt pins (its hashes are for `make setup`; pip checks hashes only where every requirement has one), gives
working mnist-predict and mnist-serve, and nothing the pipeline alone needs."""

import http.client
import json
import re
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest
import smoke

pytestmark = pytest.mark.pipeline
REPO = smoke.REPO


def test_pip_install_of_the_serve_extra_gives_working_commands_and_no_pipeline(smoke_run, tmp_path):
    repo, _, _ = smoke_run
    pins = re.findall(r"^[\w.-]+==[^\s;\\]+", (REPO / "requirements.txt").read_text(), re.M)
    (tmp_path / "constraints.txt").write_text("\n".join(pins) + "\n")
    source = smoke.make_scratch_repo(tmp_path / "source")  # pip builds in the tree it installs: a copy
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([venv / "bin/python", "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                    "-c", tmp_path / "constraints.txt", f"{source}[serve]"], check=True, cwd=tmp_path)
    installed = json.loads(subprocess.run([venv / "bin/python", "-m", "pip", "list", "--format", "json"],
                                          capture_output=True, text=True, check=True).stdout)
    names = {package["name"].lower() for package in installed}
    assert {"mnist-dvc", "keras", "starlette"} <= names and not {"dvc", "keras-tuner", "pytest"} & names

    version = subprocess.run([venv / "bin/mnist-predict", "--version"], capture_output=True, text=True, check=True)
    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    assert version.stdout.strip() == f"mnist-predict {declared}"
    for model in ("models/export/int8.tflite", "models/tuned"):  # each answers as in the project's environment
        answers = []
        for predict in (venv / "bin/mnist-predict", Path(sys.executable).with_name("mnist-predict")):
            result = subprocess.run([predict, "--json", "--model", str(repo / model),
                                     str(REPO / "examples/typed-4.png")], capture_output=True, text=True, cwd=tmp_path)
            assert result.returncode == 0, result.stderr
            answers.append(json.loads(result.stdout))
        assert answers[0] == answers[1] and answers[0][0]["label"] in [str(digit) for digit in range(10)]

    server = subprocess.Popen([venv / "bin/mnist-serve", "--model", str(repo / "models/export/int8.tflite"),
                               "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              cwd=tmp_path)
    try:
        line = server.stdout.readline()
        port = int(line.split("http://127.0.0.1:")[1].split("/")[0])
        deadline = time.monotonic() + 60
        while True:
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                connection.request("GET", "/v1/models/mnist")
                assert connection.getresponse().status == 200
                break
            except OSError:
                assert time.monotonic() < deadline, line
                time.sleep(0.2)
    finally:
        server.terminate()
        server.communicate(timeout=10)
