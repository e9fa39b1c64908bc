"""Keras Tuner's three tuners (random search, Hyperband, Bayesian optimization) with what this project adds to each:
trials seeded from their id, timed, and recorded as failed only when they diverge; and state files that a kill cannot
cut short."""

import json
import time
from pathlib import Path

import keras
import keras_tuner as kt
from keras_tuner.src import utils as kt_utils

from . import outputs
from .errors import PipelineError
from .search_settings import Tune
from .search_space import CnnHyperModel, declare_search_space

OBJECTIVE = "val_accuracy"
IDLE_WAIT_SECONDS = 0.5


def _save_json_atomically(path, obj):
    """Keras Tuner's save_json, written beside its file and moved into place: a search killed while it saves its state
    (several files after every trial) leaves each file whole, the old version or the new, never one cut short."""
    text = json.dumps(obj)
    outputs.write_atomically(path, lambda temp: temp.write_text(text), suffix=".partial")
    return text


kt_utils.save_json = _save_json_atomically  # every state file of the oracle, its trials and the tuners goes through it


class TrialInterrupted(PipelineError, kt.errors.FatalError):
    """A trial stopped by anything but divergence (out of memory, a full disk, a bug): the search stops with it
    unrecorded, as if killed, so that the next run of tune runs it again. Only a diverged trial counts as failed."""

    def __init__(self, trial):
        reason = (trial.message or "").strip().splitlines()[-1:] or ["no message"]
        super().__init__(f"trial {trial.trial_id} did not finish ({reason[0][:300]}); it is not recorded and runs "
                         "again when tune is rerun")


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


def _algorithm_settings(settings: Tune):
    """The tuner class and its own arguments for tune.algorithm, from tune.<algorithm>."""
    own = settings.algorithm_settings()
    if settings.algorithm == "random":
        return RandomSearch, {"max_trials": own.max_trials}
    if settings.algorithm == "hyperband":
        return Hyperband, {"max_epochs": own.max_epochs, "factor": own.factor, "hyperband_iterations": own.iterations}
    return BayesianOptimization, {key: getattr(own, key) for key in ("max_trials", "num_initial_points", "alpha",
                                                                      "beta")}


def make_tuner(project: Path, settings: Tune, space: dict, description, augmentation_settings):
    """The tuner of tune.algorithm on the search directory `project` (see search_workspace.open_search), resuming what
    it holds, for the data of `description` (a prepared.Description), sampling `space` (the recipe's), its trials
    trained behind `augmentation_settings` (or None)."""
    tuner_class, own = _algorithm_settings(settings)
    return tuner_class(
        hypermodel=CnnHyperModel(description, augmentation_settings, settings.lr_schedule),
        hyperparameters=declare_search_space(space),
        tune_new_entries=False,
        objective=OBJECTIVE,
        seed=settings.seed,
        trial_seed=settings.seed,
        # Never reached, so a search in which every trial diverges ends in SearchFailed, not a RuntimeError.
        max_consecutive_failed_trials=None,
        directory=str(project.parent),
        project_name=project.name,
        overwrite=False,
        **own,
    )


def finished_trials(tuner):
    return [t for t in tuner.oracle.trials.values() if t.status in ("COMPLETED", "FAILED", "INVALID")]
