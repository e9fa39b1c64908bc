"""Scratch copies of this repository that run the smoke pipeline with real DVC.

Used by the pipeline tests, and on its own for the reproduction checks of .ci/run and the pull-request workflow:
  python tools/smoke.py check [--set KEY=VALUE ...] [--keep DIR]
                                               smoke pipeline, forced rerun from scratch: identical dvc.lock
  python tools/smoke.py lock SOURCE LOCK_OUT   smoke pipeline on another checkout (e.g. the base branch)
  python tools/smoke.py compare BASE HEAD      stages whose inputs did not change must give the same outputs
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
SMOKE_PARAMS = REPO / "tools" / "smoke-params.yaml"


def tuner_workspace() -> str:
    """The tune stage's --workspace, as dvc.yaml passes it."""
    command = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]["tune"]["cmd"].split()
    return command[command.index("--workspace") + 1]


TUNER_WORKSPACE = tuner_workspace()
STAGES = ("download", "prepare", "baseline", "tune", "retrain", "evaluate", "transfer_download", "transfer_prepare",
          "transfer", "export", "explain")


def stages_run(output):
    """The stages `dvc repro` output says it ran, in pipeline order."""
    return [stage for stage in STAGES if f"Running stage '{stage}'" in output]


def environment(extra=None):
    """This interpreter's bin first on PATH (DVC runs `python ...` through the shell), plus `extra`. Without
    KERAS_BACKEND: a test process that chose its backend has it set, and the stages take theirs from params."""
    env = {name: value for name, value in os.environ.items() if name != "KERAS_BACKEND"}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
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


def project_files(source=REPO):
    """Tracked files plus new ones git does not ignore: the working tree as a commit would see it."""
    listed = run(source, "git", "ls-files", "--cached", "--others", "--exclude-standard", "-z").stdout
    return [name for name in listed.split("\0") if name and Path(source, name).is_file()]


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


def make_scratch_repo(dest, source=REPO) -> Path:
    """A git repository at `dest` holding the project files of `source`, with the smoke params and no results."""
    dest, source = Path(dest), Path(source)
    for name in project_files(source):
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source / name, target)
    Path(dest, "dvc.lock").unlink(missing_ok=True)
    set_params(dest, yaml.safe_load(SMOKE_PARAMS.read_text()))
    git(dest, "init", "--quiet", "--initial-branch=main")
    git(dest, "add", "--all")
    git(dest, "commit", "--quiet", "-m", "smoke params")
    return dest


def run_smoke(repo) -> bytes:
    """`dvc repro` of the smoke pipeline; fails unless `dvc status` is clean afterwards. Returns dvc.lock."""
    print(dvc(repo, "repro").stdout)
    status = dvc(repo, "status", "--json").stdout.strip()
    if status != "{}":
        sys.exit(f"dvc status is not clean after dvc repro: {status}")
    return Path(repo, "dvc.lock").read_bytes()


def overrides(settings) -> dict:
    """{"a": {"b": value}} from ["a.b=value", ...], each value read as YAML (as `dvc exp run -S` reads it)."""
    found = {}
    for setting in settings:
        key, _, value = setting.partition("=")
        *parents, last = key.split(".")
        node = found
        for name in parents:
            node = node.setdefault(name, {})
        node[last] = yaml.safe_load(value)
    return found


def check(settings=(), keep=None):
    """Smoke pipeline (with `settings` over the smoke params), then `dvc repro --force` from an empty search
    workspace: dvc.lock must not change a byte. `keep`: a new directory to leave the scratch repository in."""
    with tempfile.TemporaryDirectory(prefix="mnist-dvc-smoke-") as scratch:
        repo = make_scratch_repo(Path(keep) if keep else scratch)
        if settings:
            set_params(repo, overrides(settings))
            git(repo, "commit", "--quiet", "-am", "smoke check settings")
        first = run_smoke(repo)
        shutil.rmtree(repo / TUNER_WORKSPACE)
        print(dvc(repo, "repro", "--force").stdout)
        if Path(repo, "dvc.lock").read_bytes() != first:
            Path(repo, "first.lock").write_bytes(first)
            diff = run(repo, "git", "diff", "--no-index", "first.lock", "dvc.lock", check=False).stdout
            sys.exit(f"dvc.lock changed between two runs of the same pipeline:\n{diff}")
        print("smoke check passed: two runs gave a byte-identical dvc.lock")


def lock_of(source, lock_out):
    """Run the smoke pipeline on the project files of `source` and copy its dvc.lock to `lock_out`."""
    with tempfile.TemporaryDirectory(prefix="mnist-dvc-smoke-") as scratch:
        Path(lock_out).write_bytes(run_smoke(make_scratch_repo(scratch, source)))


def unexplained_changes(base_lock: dict, head_lock: dict):
    """Stages whose command, deps and params are the same in both locks but whose outputs differ."""
    problems = []
    for name, head in head_lock.get("stages", {}).items():
        base = base_lock.get("stages", {}).get(name)
        same_inputs = base is not None and all(base.get(key) == head.get(key) for key in ("cmd", "deps", "params"))
        if same_inputs and base.get("outs") != head.get("outs"):
            changed = [out["path"] for out, old in zip(head["outs"], base["outs"]) if out != old]
            problems.append(f"stage {name}: same inputs, different outputs: {', '.join(changed) or 'out list'}")
    return problems


def compare(base_lock_path, head_lock_path):
    problems = unexplained_changes(yaml.safe_load(Path(base_lock_path).read_text()),
                                   yaml.safe_load(Path(head_lock_path).read_text()))
    if problems:
        sys.exit("\n".join(problems))
    print("every stage with unchanged inputs produced identical outputs")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    checking = commands.add_parser("check", help="smoke pipeline twice in a scratch copy; dvc.lock must be identical")
    checking.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                          help="a param over the smoke params, as `dvc exp run -S` takes it")
    checking.add_argument("--keep", metavar="DIR", help="run in this new directory and leave it there")
    lock = commands.add_parser("lock", help="smoke pipeline on another checkout's files; save its dvc.lock")
    lock.add_argument("source")
    lock.add_argument("lock_out")
    diff = commands.add_parser("compare", help="fail if a stage with unchanged inputs changed its outputs")
    diff.add_argument("base_lock")
    diff.add_argument("head_lock")
    args = parser.parse_args()
    if args.command == "check":
        check(args.set, args.keep)
    elif args.command == "lock":
        lock_of(args.source, args.lock_out)
    else:
        compare(args.base_lock, args.head_lock)


if __name__ == "__main__":
    main()
