"""Scratch copies of this repository that run the smoke pipeline with real DVC.

Used by the pipeline tests, and on its own as `python tests/smoke.py check`: the pull-request reproduction check
(smoke pipeline, then a forced rerun from scratch, then the two dvc.lock files must be byte-identical).
"""

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
SMOKE_PARAMS = REPO / "tests" / "smoke-params.yaml"
TUNER_WORKSPACE = "models/search"  # as dvc.yaml passes it to the tune stage


def environment(extra=None):
    """This interpreter's bin first on PATH (DVC runs `python ...` through the shell), plus `extra`."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("PYTHONHASHSEED", None)
    env.update(extra or {})
    return env


def run(cwd, *command, env=None, check=True):
    result = subprocess.run(command, cwd=cwd, env=environment(env), capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def dvc(cwd, *args, env=None, check=True):
    return run(cwd, sys.executable, "-m", "dvc", *args, env=env, check=check)


def git(cwd, *args):
    return run(cwd, "git", "-c", "user.name=smoke", "-c", "user.email=smoke@localhost", *args)


def project_files():
    """Tracked files plus new ones git does not ignore: the working tree as a commit would see it."""
    listed = run(REPO, "git", "ls-files", "--cached", "--others", "--exclude-standard", "-z").stdout
    return [name for name in listed.split("\0") if name and (REPO / name).is_file()]


def deep_merge(base: dict, overrides: dict) -> dict:
    merged = dict(base)
    for key, value in overrides.items():
        merged[key] = deep_merge(base[key], value) if isinstance(value, dict) else value
    return merged


def set_params_file(source, target, overrides: dict):
    """Write `source` params with `overrides` merged in to `target` (the two may be the same file)."""
    params = yaml.safe_load(Path(source).read_text())
    Path(target).write_text(yaml.safe_dump(deep_merge(params, overrides), sort_keys=False))


def set_params(repo, overrides: dict):
    set_params_file(Path(repo, "params.yaml"), Path(repo, "params.yaml"), overrides)


def make_scratch_repo(dest) -> Path:
    """A git repository at `dest` holding this project's files, with the smoke params, and no pipeline results."""
    dest = Path(dest)
    for name in project_files():
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, target)
    Path(dest, "dvc.lock").unlink(missing_ok=True)
    set_params(dest, yaml.safe_load(SMOKE_PARAMS.read_text()))
    git(dest, "init", "--quiet", "--initial-branch=main")
    git(dest, "add", "--all")
    git(dest, "commit", "--quiet", "-m", "smoke params")
    return dest


def check():
    """Smoke pipeline, then `dvc repro --force` from an empty search workspace: dvc.lock must not change a byte."""
    with tempfile.TemporaryDirectory(prefix="mnist-dvc-smoke-") as scratch:
        repo = make_scratch_repo(scratch)
        print(dvc(repo, "repro").stdout)
        first = Path(repo, "dvc.lock").read_bytes()
        shutil.rmtree(repo / TUNER_WORKSPACE)
        print(dvc(repo, "repro", "--force").stdout)
        second = Path(repo, "dvc.lock").read_bytes()
        status = dvc(repo, "status", "--json").stdout.strip()
        if first != second:
            Path(repo, "first.lock").write_bytes(first)
            diff = run(repo, "git", "diff", "--no-index", "first.lock", "dvc.lock", check=False).stdout
            sys.exit(f"dvc.lock changed between two runs of the same pipeline:\n{diff}")
        if status != "{}":
            sys.exit(f"dvc status is not clean after the runs: {status}")
        print("smoke check passed: two runs gave a byte-identical dvc.lock and dvc status is clean")


if __name__ == "__main__":
    if sys.argv[1:] != ["check"]:
        sys.exit("usage: python tests/smoke.py check")
    check()
