"""Do two dvc.lock files record the same outputs? For a rerun forced by moved code: every output's hash must be the
one the other lock records. Usage:
    python tools/compare_locks.py OLD_LOCK NEW_LOCK
Prints one line per output that differs (or is in one lock only) and exits 1 if any does."""

import argparse
import sys
from pathlib import Path

import yaml


def outputs(lock_path) -> dict:
    """{(stage, path): md5} of every output the lock records."""
    lock = yaml.safe_load(Path(lock_path).read_text()) or {}
    return {(stage, out["path"]): out.get("md5") for stage, entry in lock.get("stages", {}).items()
            for out in entry.get("outs", [])}


def differences(old: dict, new: dict) -> list:
    lines = []
    for key in sorted(old.keys() | new.keys()):
        stage, path = key
        if key not in new or key not in old:
            lines.append(f"{stage}: {path} is only in the {'old' if key in old else 'new'} lock")
        elif old[key] != new[key]:
            lines.append(f"{stage}: {path} differs ({old[key]} -> {new[key]})")
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("old")
    parser.add_argument("new")
    args = parser.parse_args()
    old, new = outputs(args.old), outputs(args.new)
    found = differences(old, new)
    for line in found:
        print(line)
    if found:
        sys.exit(1)
    print(f"the {len(new)} outputs of both locks have the same hashes")


if __name__ == "__main__":
    main()
