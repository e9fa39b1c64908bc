"""pull: before `make repro` computes anything, fetch what the default DVC remote already holds for this checkout
(the outputs dvc.lock names, and the run-cache that `make push` stores), and say in one line what came from where.
Not a pipeline stage. Exit status 0 when the remote answered, so `make repro` goes on with `dvc repro --pull`; 1 when
there is no default remote or it cannot be reached, so `make repro` computes everything here instead."""

import subprocess
import sys
from pathlib import Path

import yaml


def dvc(*args):
    return subprocess.run([sys.executable, "-m", "dvc", *args], capture_output=True, text=True)


def error_line(result) -> str:
    """DVC's own ERROR line (it adds a support banner after it), or its last line of output."""
    lines = [line.strip() for line in (result.stderr + result.stdout).splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("ERROR")]
    return (errors or lines or [f"exit status {result.returncode}"])[0]


def lock_outputs() -> set:
    """Every output dvc.lock records (git-tracked metrics included: those are here already)."""
    lock = yaml.safe_load(Path("dvc.lock").read_text()) if Path("dvc.lock").exists() else {}
    return {out["path"] for stage in (lock or {}).get("stages", {}).values() for out in stage.get("outs", [])}


def present(paths) -> set:
    return {path for path in paths if Path(path).exists()}


def main() -> int:
    default = dvc("remote", "default")  # with none set: exit status 1 and "No default remote set" on stdout
    name = default.stdout.strip() if default.returncode == 0 else ""
    if not name:
        print("pull: no default DVC remote is configured; computing everything here")
        return 1
    remote = f"remote '{name}' ({dvc('config', f'remote.{name}.url').stdout.strip()})"

    recorded = lock_outputs()
    before = present(recorded)
    pulled = dvc("pull", "--allow-missing", "--run-cache")
    if pulled.returncode != 0:
        print(f"pull: {remote} cannot be used ({error_line(pulled)}); computing everything here")
        return 1
    after = present(recorded)
    print(f"pull: {len(after - before)} output(s) of dvc.lock fetched from {remote}; "
          f"{len(recorded - after)} not stored there, computed here unless the run-cache has them")
    return 0


if __name__ == "__main__":
    sys.exit(main())
