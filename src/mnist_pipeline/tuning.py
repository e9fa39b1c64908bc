"""Searching build_cnn_model's hyperparameters with Keras Tuner (random search, Hyperband or Bayesian optimization),
and reading the results back."""

import hashlib
import importlib
import importlib.metadata
import json
import os
import sys
import time
from pathlib import Path

import keras
import keras_tuner as kt
import numpy as np

from . import artifacts, models, training
from .errors import PipelineError


class SearchFailed(PipelineError):
    pass


class TrialInterrupted(PipelineError, kt.errors.FatalError):
    """A trial stopped by anything but divergence (out of memory, a full disk, a bug): the search stops with it
    unrecorded, as if killed, so that the next run of tune runs it again. Only a diverged trial counts as failed."""

    def __init__(self, trial):
        reason = (trial.message or "").strip().splitlines()[-1:] or ["no message"]
        super().__init__(f"trial {trial.trial_id} did not finish ({reason[0][:300]}); it is not recorded and runs "
                         "again when tune is rerun")


OBJECTIVE = "val_accuracy"
EPOCHS_TRAINED = "epochs_trained"
# Environment variables that change what TensorFlow, XLA (JAX) or Keras compute (TF_CPP_* only set log levels).
SWITCH_PREFIXES = ("TF_", "XLA_", "JAX_", "KERAS_")
IDLE_WAIT_SECONDS = 0.5
# tune params that decide nothing in the trials: how long the stage waits for a silent worker (a search it ended
# must resume when rerun with a longer limit).
NOT_IN_RESULTS = ("worker_silence_seconds",)


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
    """build_cnn_model for the tuner. A trial may train the way retrain does: behind retrain's augmentation
    (`augmentation`: its amounts, or None) and with the learning rate following `lr_schedule` over each fit (a trial,
    or a round of Hyperband)."""

    def __init__(self, description, augmentation=None, lr_schedule="constant"):
        super().__init__()
        self.description = description
        self.augmentation, self.lr_schedule = augmentation, lr_schedule
        self.policy = keras.mixed_precision.global_policy().name  # runtime.precision, as runtime.configure set it

    def build(self, hp):
        # Keras Tuner calls clear_session() before every build, and that resets Keras' dtype policy to float32.
        keras.mixed_precision.set_global_policy(self.policy)
        model = models.build_cnn_from_description(hp, self.description)
        if not self.augmentation:
            return model
        # Part of the model the tuner checkpoints, so that a Hyperband round resumes the same network. Validation
        # images pass through it unchanged.
        trainer = training.with_augmentation(model, training.augmentation(**self.augmentation))
        return models.compile_model(trainer, hp.get("learning_rate"))

    def fit(self, hp, model, x, y, **kwargs):
        if self.lr_schedule != "constant":
            steps = training.steps_per_epoch(len(y), hp.get("batch_size"))
            epochs = kwargs["epochs"] - kwargs.get("initial_epoch", 0)
            models.compile_model(model, training.learning_rate_for(self.lr_schedule, hp.get("learning_rate"), epochs,
                                                                   steps))
        try:
            history = training.fit(model, x, y, batch_size=hp.get("batch_size"), **kwargs)
        except training.NonFiniteLossError as error:
            raise kt.errors.FailedTrialError(str(error)) from None
        # The tuner keeps only the best epoch's metrics; a constant column carries the epoch count into trial.json.
        history.history[EPOCHS_TRAINED] = [len(history.epoch)] * len(history.epoch)
        return history


class SeededTrials:
    """What every algorithm's tuner adds to Keras Tuner's: each trial seeded from its id, so it gives the same result
    whether it runs in the first attempt or after an interrupted search resumes; every trial it runs timed; and only
    divergence recorded as a failure (see TrialInterrupted)."""

    def __init__(self, *, trial_seed, **kwargs):
        self.trial_seed = trial_seed
        self.trial_seconds = {}  # of the trials this process ran
        self.asked_in_vain = False
        super().__init__(**kwargs)

    def pre_create_trial(self):
        # Keras Tuner asks again at once when the oracle has no trial ready (a worker of a distributed Hyperband
        # search waiting for another to end a round): wait a little between such requests instead of spinning.
        if self.asked_in_vain:
            time.sleep(IDLE_WAIT_SECONDS)
        self.asked_in_vain = True

    def on_trial_begin(self, trial):
        self.asked_in_vain = False
        super().on_trial_begin(trial)

    def run_trial(self, trial, *args, **kwargs):
        keras.utils.set_random_seed(self.trial_seed + int(trial.trial_id))
        start = time.perf_counter()
        try:
            return super().run_trial(trial, *args, **kwargs)
        finally:
            self.trial_seconds[trial.trial_id] = round(time.perf_counter() - start, 2)

    def on_trial_end(self, trial):
        # Keras Tuner marks a trial INVALID when it raised anything but FailedTrialError (which only divergence
        # raises here) and would then record it as failed for good.
        if trial.status == kt.engine.trial.TrialStatus.INVALID:
            raise TrialInterrupted(trial)
        if trial.status == kt.engine.trial.TrialStatus.FAILED:  # diverged: the reason is all that is worth keeping
            trial.message = trial.message.strip().splitlines()[-1].split(": ", 1)[-1]
        super().on_trial_end(trial)

    def get_state(self):
        # Saved after each trial (in <worker>.json for a worker), so that the chief can time a distributed search.
        return {**super().get_state(), "trial_seconds": self.trial_seconds}


class RandomSearch(SeededTrials, kt.RandomSearch):
    pass


class Hyperband(SeededTrials, kt.Hyperband):
    pass


class BayesianOptimization(SeededTrials, kt.BayesianOptimization):
    pass


def _algorithm_settings(tune_params):
    """The tuner class and its own arguments for tune.algorithm, from tune.<algorithm>."""
    algorithm = tune_params["algorithm"]
    settings = tune_params[algorithm]
    if algorithm == "random":
        return RandomSearch, {"max_trials": settings["max_trials"]}
    if algorithm == "hyperband":
        return Hyperband, {"max_epochs": settings["max_epochs"], "factor": settings["factor"],
                           "hyperband_iterations": settings["iterations"]}
    return BayesianOptimization, {key: settings[key] for key in ("max_trials", "num_initial_points", "alpha", "beta")}


def search_identity(tune_params: dict, runtime_params: dict, augmentation, data_files) -> dict:
    """Everything that decides the trials' results: tune params (but NOT_IN_RESULTS) and runtime params, the
    augmentation amounts the trials train with (None for none), the code of every library module loaded
    and of the stage script, library versions, the backend's threads and switches, and the data. Call it once the
    stage has imported everything it uses."""
    code = {name: artifacts.sha256_of(module.__file__) for name, module in sorted(sys.modules.items())
            if (name == "__main__" or name.split(".")[0] == "mnist_pipeline") and getattr(module, "__file__", None)}
    backend = keras.backend.backend()
    return {
        "params": {"tune": {key: value for key, value in tune_params.items() if key not in NOT_IN_RESULTS},
                   "runtime": runtime_params, "augmentation": augmentation},
        "code": code,
        "libraries": {backend: importlib.import_module(backend).__version__, "keras": keras.__version__,
                      "keras_tuner": kt.__version__,
                      "numpy": np.__version__,  # and what Bayesian optimization's Gaussian process runs on:
                      "scikit-learn": importlib.metadata.version("scikit-learn"),
                      "scipy": importlib.metadata.version("scipy")},
        "backend": {
            "keras_backend": backend,
            **_threads(backend),
            "floatx": keras.config.floatx(),
            "environment": {name: value for name, value in sorted(os.environ.items())
                            if name.startswith(SWITCH_PREFIXES) and not name.startswith("TF_CPP_")},
        },
        "data": {Path(path).name: artifacts.sha256_of(path) for path in data_files},
    }


def _threads(backend):
    if backend == "tensorflow":
        import tensorflow as tf

        return {"intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
                "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads()}
    return {"usable_cpus": len(os.sched_getaffinity(0))}


def fingerprint(identity: dict) -> str:
    """Any change to the identity gives a new fingerprint, so a fresh search: old trials are never silently reused."""
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]


def make_tuner(project: Path, tune_params: dict, description, augmentation):
    """The tuner of tune.algorithm on the search directory `project` (see workspace.open_search), resuming what it
    holds, for the data of `description` (a data.Description), its trials trained behind `augmentation` (amounts, or
    None)."""
    tuner_class, settings = _algorithm_settings(tune_params)
    return tuner_class(
        hypermodel=CnnHyperModel(description, augmentation, tune_params["lr_schedule"]),
        hyperparameters=declare_search_space(tune_params["space"]),
        tune_new_entries=False,
        objective=OBJECTIVE,
        seed=tune_params["seed"],
        trial_seed=tune_params["seed"],
        # Never reached, so a search in which every trial diverges ends in SearchFailed, not a RuntimeError.
        max_consecutive_failed_trials=None,
        directory=str(project.parent),
        project_name=project.name,
        overwrite=False,
        **settings,
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


def _epochs_trained(trial):
    epochs = _value_at_step(trial, EPOCHS_TRAINED, trial.best_step)
    return None if epochs is None else int(epochs)


# Hyperband's own values in each trial, as trials.csv names them: the bracket and the round within it.
HYPERBAND_COLUMNS = {"bracket": "tuner/bracket", "round": "tuner/round"}


def trial_table(tuner, hp_names):
    """One row per trial: id, every hyperparameter (and Hyperband's bracket and round), the objective and val_loss at
    the best epoch, epochs trained, status, and for a failed trial the last line of its error."""
    hyperband = isinstance(tuner, kt.Hyperband)
    rows = []
    for trial_id, trial in sorted(tuner.oracle.trials.items()):
        values = trial.hyperparameters.values
        rows.append({
            "trial": trial_id,
            **{name: values.get(name) for name in hp_names},
            **({column: values.get(key) for column, key in HYPERBAND_COLUMNS.items()} if hyperband else {}),
            "val_accuracy": _value_at_step(trial, OBJECTIVE, trial.best_step),
            "val_loss": _value_at_step(trial, "val_loss", trial.best_step),
            "epochs": _epochs_trained(trial),
            "status": trial.status,
            "error": _failure_reason(trial),
        })
    return artifacts.table(rows)


def progress_table(tuner):
    """The search as it went, one row per trial in the order they ended: epochs trained by all trials so far and the
    best validation accuracy so far (empty until a trial completes). Plotted, it compares algorithms by effort."""
    rows, spent, best = [], 0, None
    for trial_id in tuner.oracle.end_order:
        trial = tuner.oracle.trials[trial_id]
        spent += _epochs_trained(trial) or 0
        if trial.status == "COMPLETED" and (best is None or trial.score > best):
            best = trial.score
        rows.append({"trial": trial_id, "epochs_spent": spent,
                     "best_val_accuracy": None if best is None else round(float(best), 6)})
    return artifacts.table(rows, ["trial", "epochs_spent", "best_val_accuracy"])


def best_trial(tuner):
    best = tuner.oracle.get_best_trials(1)
    if not best or best[0].score is None:
        reasons = "; ".join(f"trial {t.trial_id}: {(t.message or t.status).strip().splitlines()[-1]}"
                            for t in tuner.oracle.trials.values())
        raise SearchFailed(f"no trial completed, so there is no best model ({reasons})")
    return best[0]
