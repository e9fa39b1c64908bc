"""Random search over build_cnn_model's hyperparameters with Keras Tuner, and reading its results back."""

import hashlib
import json
import shutil
import time
from pathlib import Path

import keras
import keras_tuner as kt

from . import artifacts, models, training
from .errors import PipelineError
from .params import ParamsError

class SearchFailed(PipelineError):
    pass


OBJECTIVE = "val_accuracy"
EPOCHS_TRAINED = "epochs_trained"


def check_space_names(space: dict):
    """tune.space must declare exactly the hyperparameters the builder reads."""
    unknown = sorted(set(space) - set(models.CNN_HYPERPARAMETERS))
    if unknown:
        raise ParamsError(f"tune.space.{unknown[0]}: build_cnn_model does not use this hyperparameter")
    missing = [name for name in models.CNN_HYPERPARAMETERS if name not in space]
    if missing:
        raise ParamsError(f"tune.space.{missing[0]}: missing (build_cnn_model reads it)")


def declare_search_space(space: dict) -> kt.HyperParameters:
    """A HyperParameters object holding every range of tune.space; the tuner samples from it and no other."""
    hp = kt.HyperParameters()
    for name, spec in space.items():
        if "choice" in spec and len(spec["choice"]) == 1:
            hp.Fixed(name, spec["choice"][0])
        elif "choice" in spec and isinstance(spec["choice"][0], bool):
            hp.Boolean(name, default=spec["choice"][0])  # Choice would turn booleans into 0 and 1
        elif "choice" in spec:
            hp.Choice(name, spec["choice"])
        else:
            kind = hp.Int if isinstance(spec["min"], int) else hp.Float
            kind(name, spec["min"], spec["max"], step=spec.get("step"),
                 sampling="log" if spec.get("log") else "linear")
    return hp


class CnnHyperModel(kt.HyperModel):
    def build(self, hp):
        return models.build_cnn_model(hp)

    def fit(self, hp, model, x, y, **kwargs):
        try:
            history = training.fit(model, x, y, batch_size=hp.get("batch_size"), **kwargs)
        except training.NonFiniteLossError as error:
            raise kt.errors.FailedTrialError(str(error)) from None
        # The tuner keeps only the best epoch's metrics; a constant column carries the epoch count into trial.json.
        history.history[EPOCHS_TRAINED] = [len(history.epoch)] * len(history.epoch)
        return history


class SeededRandomSearch(kt.RandomSearch):
    """RandomSearch that seeds each trial from its id, so a trial gives the same result whether it runs in the
    first attempt or after an interrupted search resumes, and times every trial it runs."""

    def __init__(self, *, trial_seed, **kwargs):
        super().__init__(**kwargs)
        self.trial_seed = trial_seed
        self.trial_seconds = {}

    def run_trial(self, trial, *args, **kwargs):
        keras.utils.set_random_seed(self.trial_seed + int(trial.trial_id))
        start = time.perf_counter()
        try:
            return super().run_trial(trial, *args, **kwargs)
        finally:
            self.trial_seconds[trial.trial_id] = round(time.perf_counter() - start, 2)


def search_fingerprint(tune_params: dict, runtime_params: dict, data_files) -> str:
    """What decides the trials' results: tune and runtime params, the model/training/tuning code, library versions
    and the data itself. Any change gives a new fingerprint, so a fresh search: old trials are never silently reused."""
    digest = hashlib.sha256()
    digest.update(json.dumps([tune_params, runtime_params], sort_keys=True).encode())
    for module in (models, training):
        digest.update(Path(module.__file__).read_bytes())
    digest.update(Path(__file__).read_bytes())
    digest.update(f"keras {keras.__version__} keras-tuner {kt.__version__}".encode())
    for path in data_files:
        digest.update(artifacts.sha256_of(path).encode())
    return digest.hexdigest()[:16]


def make_tuner(workspace, fingerprint, space: dict, tune_params: dict):
    """A tuner whose project lives in `workspace/<fingerprint>`. An existing project with that fingerprint is an
    interrupted run of this very search: it is resumed. Projects with other fingerprints are removed."""
    workspace = Path(workspace)
    workspace.mkdir(parents=True, exist_ok=True)
    for stale in workspace.iterdir():
        if stale.name not in (fingerprint, ".gitignore"):
            shutil.rmtree(stale) if stale.is_dir() else stale.unlink()
    artifacts.write_text(workspace / ".gitignore", "*\n")  # scratch state: keep it out of git
    return SeededRandomSearch(
        hypermodel=CnnHyperModel(),
        hyperparameters=declare_search_space(space),
        tune_new_entries=False,
        objective=OBJECTIVE,
        max_trials=tune_params["max_trials"],
        seed=tune_params["seed"],
        trial_seed=tune_params["seed"],
        max_consecutive_failed_trials=tune_params["max_trials"],
        directory=str(workspace),
        project_name=fingerprint,
        overwrite=False,
    )


def finished_trials(tuner):
    return [t for t in tuner.oracle.trials.values() if t.status in ("COMPLETED", "FAILED", "INVALID")]


def _value_at_step(trial, metric, step):
    if not trial.metrics.exists(metric):
        return None
    for observation in trial.metrics.get_history(metric):
        if observation.step == step:
            return round(float(observation.value[0]), 6)
    return None


def _failure_reason(trial):
    lines = (trial.message or "").strip().splitlines()
    return lines[-1] if trial.status != "COMPLETED" and lines else ""


def trial_rows(tuner, hp_names):
    """One row per trial: id, every hyperparameter, the objective and val_loss at the best epoch, epochs trained,
    status, and for a failed trial the last line of its error."""
    rows = []
    for trial_id, trial in sorted(tuner.oracle.trials.items()):
        epochs = _value_at_step(trial, EPOCHS_TRAINED, trial.best_step)
        rows.append({
            "trial": trial_id,
            **{name: trial.hyperparameters.values.get(name) for name in hp_names},
            "val_accuracy": _value_at_step(trial, OBJECTIVE, trial.best_step),
            "val_loss": _value_at_step(trial, "val_loss", trial.best_step),
            "epochs": None if epochs is None else int(epochs),
            "status": trial.status,
            "error": _failure_reason(trial),
        })
    return rows


def best_trial(tuner):
    best = tuner.oracle.get_best_trials(1)
    if not best or best[0].score is None:
        reasons = "; ".join(f"trial {t.trial_id}: {(t.message or t.status).strip().splitlines()[-1]}"
                            for t in tuner.oracle.trials.values())
        raise SearchFailed(f"no trial completed, so there is no best model ({reasons})")
    return best[0]
