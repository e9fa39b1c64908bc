"""pull: before `make repro` computes anything, fetch what the default DVC remote already holds for this checkout
(the outputs dvc.lock names, and the run-cache that `make push` stores), and say in one line what came from where.
Not a pipeline stage: `make repro` runs it, then `dvc repro` computes whatever it did not bring.

Only a remote that verifies what it sends is used (`verify = true`, as .dvc/config sets for the project's remote):
DVC then checks the hash of every object it fetches, members of directory outputs included, and keeps a corrupt
one out of the cache and the workspace. pull names each such file in one line; its output is computed here.
Exit status 0 when the remote answered; 1 when there is none, it cannot be reached, or it does not verify."""

import re
import subprocess
import sys
from pathlib import Path

import yaml

CORRUPT = re.compile(r"corrupted cache file '[^']*/([0-9a-f]{2})/([0-9a-f]{30}(?:\.dir)?)'")  # DVC's own words


def dvc(*args):
    return subprocess.run([sys.executable, "-m", "dvc", *args], capture_output=True, text=True)


def error_line(result) -> str:
    """DVC's own ERROR line (it adds a support banner after it), or its last line of output."""
    lines = [line.strip() for line in (result.stderr + result.stdout).splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("ERROR")]
    return (errors or lines or [f"exit status {result.returncode}"])[0]


def lock_outputs() -> dict:
    """{path: md5} of every output dvc.lock records (git-tracked metrics included: those are here already)."""
    lock = yaml.safe_load(Path("dvc.lock").read_text()) if Path("dvc.lock").exists() else {}
    return {out["path"]: out.get("md5", "") for stage in (lock or {}).get("stages", {}).values()
            for out in stage.get("outs", [])}


def present(paths) -> set:
    return {path for path in paths if Path(path).exists()}


def named_files(outputs: dict) -> dict:
    """{md5: the file it is, as a workspace path} for every output and every member of a directory output whose
    listing (a .dir object) is in the cache."""
    cache = Path(dvc("cache", "dir").stdout.strip() or ".dvc/cache", "files", "md5")
    names = {}
    for path, md5 in outputs.items():
        names[md5] = path
        try:
            listing = yaml.safe_load(Path(cache, md5[:2], md5[2:]).read_text()) if md5.endswith(".dir") else []
        except (OSError, yaml.YAMLError):  # not fetched, or itself the corrupt object
            listing = []
        names.update({entry["md5"]: f"{path}/{entry['relpath']}" for entry in listing or []})
    return names


def main() -> int:
    default = dvc("remote", "default")  # with none set: exit status 1 and "No default remote set" on stdout
    name = default.stdout.strip() if default.returncode == 0 else ""
    if not name:
        print("pull: no default DVC remote is configured; computing everything here")
        return 1
    remote = f"remote '{name}' ({dvc('config', f'remote.{name}.url').stdout.strip()})"
    if dvc("config", f"remote.{name}.verify").stdout.strip() != "true":
        print(f"pull: {remote} does not verify what it sends, so a corrupt object could reach the workspace "
              f"(`dvc remote modify {name} verify true`); computing everything here")
        return 1

    recorded = lock_outputs()
    before = present(recorded)
    pulled = dvc("pull", "--verbose", "--allow-missing", "--run-cache")
    corrupt = [md5a + md5b for md5a, md5b in CORRUPT.findall(pulled.stderr + pulled.stdout)]
    if pulled.returncode != 0 and not corrupt:
        print(f"pull: {remote} cannot be used ({error_line(pulled)}); computing everything here")
        return 1
    if corrupt:
        names = named_files(recorded)
        print(f"pull: {len(corrupt)} object(s) from {remote} failed their hash check and were not placed: "
              f"{', '.join(sorted(names.get(md5, f'object {md5}') for md5 in corrupt))}; what they belong to is "
              "computed here")
    after = present(recorded)
    print(f"pull: {len(after - before)} output(s) of dvc.lock fetched from {remote}; "
          f"{len(set(recorded) - after)} not stored there, computed here unless the run-cache has them")
    return 0


if __name__ == "__main__":
    sys.exit(main())
