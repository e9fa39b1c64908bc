"""pull: before `make repro` computes anything, fetch what the default DVC remote already holds for this checkout
(the outputs dvc.lock names, and the run-cache that `make push` stores), and say in one line what came from where.
Not a pipeline stage: `make repro` runs it, then `dvc repro` computes whatever it did not bring.

Nothing fetched is trusted because of where it came from:
- only a remote that verifies what it sends is used (`verify = true`, as .dvc/config sets for the project's remote):
  DVC then checks the hash of every object it fetches, members of directory outputs included, and keeps a corrupt one
  out of the cache; pull names each such file in one line, and its output is computed here;
- a directory output's listing (a `.dir` object) names the files DVC places and where: every listing in the cache is
  checked before anything is placed, and one that names a path outside its output (`../x`, `/etc/x`) is set aside in
  .dvc/tmp/refused-listings/, named in one line, and its output computed here;
- a local remote holding anything but regular files (a FIFO, a device) is not used at all, and a fetch that makes no
  progress for PULL_STALL_SECONDS (a hung server, say) is stopped.
Exit status 0 when the remote answered; 1 when there is none, it cannot be reached or used; 130 when interrupted."""

import json
import os
import re
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path, PurePosixPath

import yaml

CORRUPT = re.compile(r"corrupted cache file '[^']*/([0-9a-f]{2})/([0-9a-f]{30}(?:\.dir)?)'")  # DVC's own words
STALL_SECONDS = float(os.environ.get("MNIST_DVC_PULL_STALL_SECONDS", "120"))
REFUSED = Path(".dvc", "tmp", "refused-listings")


class Stalled(Exception):
    pass


def dvc(*args, watch=False):
    """DVC's result; with `watch`, stopped (Stalled) when it prints nothing for STALL_SECONDS."""
    if not watch:
        return subprocess.run([sys.executable, "-m", "dvc", *args], capture_output=True, text=True)
    process = subprocess.Popen([sys.executable, "-m", "dvc", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    seen, last = {"stdout": [], "stderr": []}, [time.monotonic()]

    def read(stream, name):
        for line in stream:
            seen[name].append(line)
            last[0] = time.monotonic()

    readers = [threading.Thread(target=read, args=(getattr(process, name), name), daemon=True) for name in seen]
    for reader in readers:
        reader.start()
    try:
        while process.poll() is None:
            if time.monotonic() - last[0] > STALL_SECONDS:
                process.kill()
                process.wait()
                raise Stalled()
            time.sleep(0.2)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    for reader in readers:
        reader.join(timeout=5)
    return subprocess.CompletedProcess(process.args, process.returncode, "".join(seen["stdout"]),
                                       "".join(seen["stderr"]))


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


def cache_dir() -> Path:
    return Path(dvc("cache", "dir").stdout.strip() or ".dvc/cache", "files", "md5")


def named_files(outputs: dict) -> dict:
    """{md5: the file it is, as a workspace path} for every output and every member of a directory output whose
    listing (a .dir object) is in the cache."""
    cache = cache_dir()
    names = {}
    for path, md5 in outputs.items():
        names[md5] = path
        try:
            listing = json.loads(Path(cache, md5[:2], md5[2:]).read_text()) if md5.endswith(".dir") else []
        except (OSError, ValueError):  # not fetched, or itself the corrupt object
            listing = []
        names.update({entry["md5"]: f"{path}/{entry['relpath']}" for entry in listing or []
                      if isinstance(entry, dict) and "md5" in entry and "relpath" in entry})
    return names


def listing_problem(content: bytes) -> str | None:
    """Why a `.dir` listing cannot be placed safely (a path that is absolute, empty or climbs out), or None."""
    try:
        listing = json.loads(content)
    except ValueError:
        return "not a listing (not JSON)"
    if not isinstance(listing, list):
        return "not a listing"
    for entry in listing:
        relpath = entry.get("relpath") if isinstance(entry, dict) else None
        if not isinstance(relpath, str) or not relpath or "\0" in relpath:
            return f"an entry without a path: {json.dumps(entry)[:100]}"
        parts = PurePosixPath(relpath).parts
        if relpath.startswith("/") or any(part in ("", ".", "..") for part in parts) or len(relpath.split("/")) \
                != len(parts):
            return f"the path {relpath[:100]!r} leads outside its output"
    return None


def refuse_unsafe_listings(outputs: dict) -> dict:
    """Set aside every `.dir` listing in the cache that would place a file outside its output: {the output (or
    object) it belongs to: the problem}."""
    names, refused = named_files(outputs), {}
    for listing in sorted(cache_dir().glob("??/*.dir")):
        problem = listing_problem(listing.read_bytes())
        if problem:
            md5 = listing.parent.name + listing.name
            REFUSED.mkdir(parents=True, exist_ok=True)
            os.replace(listing, REFUSED / md5)
            refused[names.get(md5, f"object {md5}")] = problem
    return refused


def not_regular_files(url) -> list:
    """In a remote that is a local directory, the objects that are not regular files (a FIFO would hang a read)."""
    root = Path(url) if "://" not in url else Path(url.removeprefix("file://")) if url.startswith("file://") else None
    if root is None:
        return []
    root = root if root.is_absolute() else Path(".dvc", root)
    found = []
    for directory, _, files in os.walk(root):
        for name in files:
            mode = os.lstat(Path(directory, name)).st_mode
            if not stat.S_ISREG(mode):
                found.append(str(Path(directory, name).relative_to(root)))
    return found


def main() -> int:
    default = dvc("remote", "default")  # with none set: exit status 1 and "No default remote set" on stdout
    name = default.stdout.strip() if default.returncode == 0 else ""
    if not name:
        print("pull: no default DVC remote is configured; computing everything here")
        return 1
    url = dvc("config", f"remote.{name}.url").stdout.strip()
    remote = f"remote '{name}' ({url})"
    if dvc("config", f"remote.{name}.verify").stdout.strip() != "true":
        print(f"pull: {remote} does not verify what it sends, so a corrupt object could reach the workspace "
              f"(`dvc remote modify {name} verify true`); computing everything here")
        return 1
    odd = not_regular_files(url)
    if odd:
        print(f"pull: {remote} holds {len(odd)} object(s) that are not regular files ({', '.join(odd[:3])}), which a "
              "read could hang on; not used, computing everything here")
        return 1

    recorded = lock_outputs()
    before = present(recorded)
    try:
        fetched = dvc("fetch", "--verbose", "--run-cache", watch=True)
    except Stalled:
        print(f"pull: {remote} sent nothing for {STALL_SECONDS:g} s, so the fetch was stopped; computing what is "
              "missing here")
        return 1
    said = fetched.stderr + fetched.stdout
    corrupt = [md5a + md5b for md5a, md5b in CORRUPT.findall(said)]
    if fetched.returncode != 0 and not corrupt and "failed to download" not in said and "missing" not in said:
        print(f"pull: {remote} cannot be used ({error_line(fetched)}); computing everything here")
        return 1
    refused = refuse_unsafe_listings(recorded)
    # Only the outputs whose listings passed: DVC's index of what it fetched still holds a refused listing's tree.
    dvc("checkout", "--allow-missing", *[path for path in recorded if path not in refused] if refused else [])
    if corrupt:
        names = named_files(recorded)
        print(f"pull: {len(corrupt)} object(s) from {remote} failed their hash check and were not placed: "
              f"{', '.join(sorted(names.get(md5, f'object {md5}') for md5 in corrupt))}; what they belong to is "
              "computed here")
    if refused:
        print(f"pull: {len(refused)} directory listing(s) from {remote} would place files outside their output and "
              f"were set aside in {REFUSED}: {'; '.join(f'{name} ({problem})' for name, problem in refused.items())}; "
              "nothing of them was placed, they are computed here")
    after = present(recorded)
    print(f"pull: {len(after - before)} output(s) of dvc.lock fetched from {remote}; "
          f"{len(set(recorded) - after)} not stored there, computed here unless the run-cache has them")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("pull: interrupted; what was fetched so far stays in DVC's cache, nothing else changed", file=sys.stderr)
        sys.exit(130)
