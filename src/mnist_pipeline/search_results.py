"""What a finished search leaves: the best hyperparameters, one row per trial, the search's progress against the
epochs it spent, and its summary metrics."""

import keras_tuner as kt

from . import outputs
from .errors import PipelineError
from .search_space import EPOCHS_TRAINED
from .search_tuners import OBJECTIVE


class SearchFailed(PipelineError):
    pass


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
    return outputs.table(rows)


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
    return outputs.table(rows, ["trial", "epochs_spent", "best_val_accuracy"])


def best_trial(tuner):
    best = tuner.oracle.get_best_trials(1)
    if not best or best[0].score is None:
        reasons = "; ".join(f"trial {t.trial_id}: {(t.message or t.status).strip().splitlines()[-1]}"
                            for t in tuner.oracle.trials.values())
        raise SearchFailed(f"no trial completed, so there is no best model ({reasons})")
    return best[0]


def write(paths, algorithm, names, tuner):
    """The best hyperparameters, one row per trial, the search's progress and its summary metrics, at `paths` (best,
    trials, progress, metrics); returns the best trial."""
    trials = trial_table(tuner, names)
    progress = progress_table(tuner)
    best = best_trial(tuner)
    statuses = list(trials["status"])
    outputs.write_json(paths.best, {name: best.hyperparameters.values[name] for name in names})
    outputs.write_table(paths.trials, trials)
    outputs.write_table(paths.progress, progress)
    outputs.write_json(paths.metrics, {
        "algorithm": algorithm,
        "best_trial": best.trial_id,
        "best_val_accuracy": round(float(best.score), 6),
        "epochs_spent": progress["epochs_spent"].iloc[-1],
        "trials_completed": statuses.count("COMPLETED"),
        "trials_failed": len(statuses) - statuses.count("COMPLETED"),
    })
    return best
