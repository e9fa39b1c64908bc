"""The search workspace (tune's --workspace): scratch state that tune creates, resumes and clears, and nothing else.

`<workspace>/.mnist-dvc-workspace` marks a directory tune made; `<workspace>/<fingerprint>/` is one search, marked by
its `search.json` (what the fingerprint was computed from). tune removes only searches it marked, never follows a
symlink, and refuses a non-empty directory it did not make.
"""

import json
import os
import shutil
import sys
from pathlib import Path

from . import outputs
from .errors import PipelineError

WORKSPACE_MARKER = ".mnist-dvc-workspace"
SEARCH_RECORD = "search.json"


class WorkspaceError(PipelineError):
    pass


def claim(workspace) -> Path:
    """Make `workspace` tune's own (it must be new or empty), or check that it already is."""
    workspace = Path(workspace)
    if workspace.exists() and not workspace.is_dir():
        raise WorkspaceError(f"{workspace}: not a directory")
    if workspace.is_dir() and not _is_marked(workspace / WORKSPACE_MARKER) and any(workspace.iterdir()):
        raise WorkspaceError(f"{workspace}: not empty and not made by tune (no {WORKSPACE_MARKER} in it), so tune "
                             "leaves it alone: point --workspace at a new or empty directory (or empty this one "
                             "yourself)")
    workspace.mkdir(parents=True, exist_ok=True)
    outputs.write_text(workspace / WORKSPACE_MARKER, "Made by the tune stage: it may remove the searches in here.\n")
    outputs.write_text(workspace / ".gitignore", "*\n")  # scratch state: keep it out of git
    return workspace


def open_search(workspace: Path, fingerprint: str, identity: dict) -> Path:
    """The directory of the search `fingerprint`: an interrupted run of this very search is resumed if its state
    reads back, otherwise it is set aside and the search starts afresh. Other searches tune made are removed."""
    for entry in workspace.iterdir():
        if entry.name != fingerprint and _is_search(entry):
            shutil.rmtree(entry)
    project = workspace / fingerprint
    if project.is_symlink() or project.exists() and not _is_search(project):
        raise WorkspaceError(f"{project}: not a search directory made by tune (a symlink, or no {SEARCH_RECORD}); "
                             "remove it yourself to run this search")
    broken = project.exists() and _unreadable_state_file(project)
    if broken:
        aside = project.with_name(f"{fingerprint}.broken")
        os.replace(project, aside)
        print(f"tune: {broken} does not read back (cut short when a run was killed?): set the search aside as "
              f"{aside} (removed by the next search) and starting it afresh", file=sys.stderr)
    if not project.exists():
        project.mkdir()
        outputs.write_json(project / SEARCH_RECORD, identity)
    for trial in _unrecorded_trials(project):
        shutil.rmtree(trial)
        print(f"tune: removed {trial}: the search was killed after it wrote the trial's file and before the oracle "
              "recorded its start, so the trial starts again as it would have", file=sys.stderr)
    return project


def join_search(workspace: Path, fingerprint: str) -> Path:
    """The directory of the search `fingerprint`, for a worker: the stage that serves its oracle made it."""
    project = Path(workspace) / fingerprint
    if not _is_search(project):
        raise WorkspaceError(f"{project}: no such search, so this worker has none to join: a worker needs the same "
                             "params, code, libraries and data as the stage that serves the oracle, and its "
                             "--workspace on a filesystem both share")
    return project


def _is_marked(path: Path) -> bool:
    return path.is_file() and not path.is_symlink()


def _is_search(entry: Path) -> bool:
    return entry.is_dir() and not entry.is_symlink() and _is_marked(entry / SEARCH_RECORD)


def _unrecorded_trials(project: Path) -> list:
    """The trial directories whose start the oracle's state does not record. Keras Tuner writes a new trial's file
    before the oracle's: a trial only the first holds would never run, and the next would take its place and seed."""
    oracle = project / "oracle.json"
    if not oracle.is_file():
        return []
    started = {f"trial_{trial_id}" for trial_id in json.loads(oracle.read_text())["start_order"]}
    return sorted(path for path in project.glob("trial_*") if path.is_dir() and not path.is_symlink()
                  and path.name not in started)


def _unreadable_state_file(project: Path):
    """The first of the tuner's JSON state files that is not valid JSON (tune writes them whole, but a workspace copied
    in part, or left by an older tune that wrote them in place, may hold one cut short), or None."""
    for path in sorted([*project.glob("*.json"), *project.glob("trial_*/trial.json")]):
        try:
            json.loads(path.read_bytes().decode("utf-8"))
        except ValueError:  # JSONDecodeError and UnicodeDecodeError alike
            return path
    return None
