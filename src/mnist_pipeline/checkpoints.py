"""Training that resumes: a stage's fit backed up at the end of every epoch (Keras' BackupAndRestore: the weights and
the optimizer's state), so that a run killed part-way (kill -9, a full disk, a reboot) goes on from its last finished
epoch when the stage is rerun, and ends in the same bytes an uninterrupted run gives. The backups are scratch state
outside DVC's outputs, in the folder the stage's --checkpoints names, under a fingerprint of everything that decides
the run (its params, the code it loaded, the data, the libraries): a rerun with anything changed starts afresh. The
stage removes only folders it made (they hold MARKER), and a run's folder once it has finished."""

import hashlib
import json
import shutil
import sys
from pathlib import Path

import keras

from . import outputs
from .errors import PipelineError

MARKER = ".mnist-dvc-checkpoints"


def fingerprint(params, data_files) -> str:
    """A name for the run: params (any JSON-able description), the code of every project module loaded and of the
    stage script, the data files' contents, and the versions and switches of the backend."""
    import numpy as np

    code = {name: hashlib.sha256(Path(module.__file__).read_bytes()).hexdigest()
            for name, module in sorted(sys.modules.items())
            if (name == "__main__" or name.split(".")[0] == "mnist_pipeline") and getattr(module, "__file__", None)}
    data = {}
    for path in data_files:
        with open(path, "rb") as f:
            data[Path(path).name] = hashlib.file_digest(f, "sha256").hexdigest()
    backend = keras.backend.backend()
    described = {"params": params, "code": code, "data": data, "keras": keras.__version__, "numpy": np.__version__,
                 "backend": [backend, __import__(backend).__version__, keras.config.floatx()]}
    return hashlib.sha256(json.dumps(described, sort_keys=True, default=repr).encode()).hexdigest()[:16]


class Checkpoints:
    """The backups of one run, in `root`/<fingerprint>/."""

    def __init__(self, root, run_fingerprint):
        root = Path(root)
        if root.exists() and not (root / MARKER).is_file() and any(root.iterdir()):
            raise PipelineError(f"{root}: not empty and not made by this stage (no {MARKER} in it), so it is left "
                                "alone: point --checkpoints at a new or empty directory")
        root.mkdir(parents=True, exist_ok=True)
        (root / MARKER).write_text("Made by a training stage: it may remove the folders in here.\n")
        (root / ".gitignore").write_text("*\n")
        for stale in root.iterdir():
            if stale.name != run_fingerprint and stale.is_dir() and not stale.is_symlink():
                shutil.rmtree(stale)  # another run's backups: stale once its inputs changed
        self.folder = root / run_fingerprint
        self.log, self.random_log = self.folder / "epochs.json", self.folder / "random.json"
        self.resumed = json.loads(self.log.read_text()) if self.log.is_file() else []
        self.random_states = json.loads(self.random_log.read_text()) if self.random_log.is_file() else []
        if self.resumed:
            print(f"resuming from the end of epoch {len(self.resumed)} (backed up in {self.folder})", flush=True)

    def callbacks(self) -> list:
        """Back up the run at the end of each epoch, and log the epoch's metrics beside it."""
        return [_EpochLog(self), keras.callbacks.BackupAndRestore(str(self.folder / "backup"), delete_checkpoint=False,
                                                                   double_checkpoint=True)]

    def epochs(self) -> list:
        """The logs of every epoch of the run, those before a resumption included."""
        return list(self.resumed)

    def recall(self, key):
        """What remember() kept under `key` in this run (a finished part of it), or None."""
        path = self.folder / "done.json"
        return json.loads(path.read_text()).get(key) if path.is_file() else None

    def remember(self, key, value):
        path = self.folder / "done.json"
        done = json.loads(path.read_text()) if path.is_file() else {}
        self.folder.mkdir(parents=True, exist_ok=True)
        outputs.write_text(path, json.dumps({**done, key: value}))

    def finish(self):
        shutil.rmtree(self.folder, ignore_errors=True)


class _EpochLog(keras.callbacks.Callback):
    """At each epoch's end, before the backup (so a backup is never ahead of the log): its metrics, and the state of
    every random generator in the model (dropout, augmentation), which Keras' weights files leave out. A resumed run
    sets those states back as its first epoch begins, so its dropout masks and distortions are the ones an
    uninterrupted run draws."""

    def __init__(self, run: Checkpoints):
        super().__init__()
        self.run, self.first = run, True

    def generators(self):
        return [variable for variable in self.model.variables if variable.name == "seed_generator_state"]

    def on_epoch_begin(self, epoch, logs=None):
        if self.first and epoch > 0 and len(self.run.random_states) >= epoch:
            for variable, state in zip(self.generators(), self.run.random_states[epoch - 1]):
                variable.assign(state)
        self.first = False

    def on_epoch_end(self, epoch, logs=None):
        run = self.run
        run.random_states = [*run.random_states[:epoch], [keras.ops.convert_to_numpy(variable).tolist()
                                                          for variable in self.generators()]]
        outputs.write_text(run.random_log, json.dumps(run.random_states))
        run.resumed = [*run.resumed[:epoch], {name: float(value) for name, value in (logs or {}).items()}]
        outputs.write_text(run.log, json.dumps(run.resumed))
