"""The search's settings (params tune): which algorithm, each algorithm's own settings, how trials train, and how many
worker processes run them. Read before the runtime starts (the workers share its threads), so nothing here imports
Keras."""

from .settings import SEED, SUBSET, Bool, Float, Int, ParamsError, Section, Str


class Random(Section):
    max_trials = Int(min=1, max=1000)


class Hyperband(Section):
    max_epochs = Int(min=2, max=1000)  # the most epochs one model trains, over all its rounds
    factor = Int(min=2, max=100)  # each round keeps 1/factor of the models and trains them factor x longer
    iterations = Int(min=1, max=100)  # how often the whole set of brackets runs


class Bayesian(Section):
    max_trials = Int(min=1, max=1000)
    num_initial_points = Int(min=1, max=1000)  # random trials before the Gaussian process proposes any
    alpha = Float(min=0, min_exclusive=True)  # the noise the Gaussian process assumes in the scores
    beta = Float(min=0)  # exploration: how much the upper confidence bound weighs uncertainty

    def fits(self, key):
        if self.num_initial_points > self.max_trials:
            raise ParamsError(f"{key}.num_initial_points: {self.num_initial_points} is more than max_trials "
                              f"({self.max_trials})")


class Tune(Section):
    algorithm = Str(choices=["random", "hyperband", "bayesian"])
    workers = Int(min=0, max=256)  # 0: trials run in the stage's process
    worker_silence_seconds = Float(min=1, max=86400)  # a worker silent this long ends the search (resumable)
    epochs = Int(min=1, max=1000)  # per trial, for random and bayesian (hyperband sets its own)
    train_subset = SUBSET
    augment = Bool()  # trials train behind the recipe's augmentation
    lr_schedule = Str(choices=["constant", "cosine"])
    seed = SEED
    random = Random
    hyperband = Hyperband
    bayesian = Bayesian

    def algorithm_settings(self):
        return getattr(self, self.algorithm)


# tune params that decide nothing in the trials: how long the stage waits for a silent worker (a search it ended
# must resume when rerun with a longer limit).
NOT_IN_RESULTS = ("worker_silence_seconds",)


def trial_threads(settings: Tune, threads: int) -> int:
    """The threads of each process that trains: runtime.threads shared out among the workers."""
    if settings.workers > threads:
        raise ParamsError(f"tune.workers: {settings.workers} workers cannot share runtime.threads: {threads} (each "
                          "needs a thread at least)")
    return threads // max(settings.workers, 1)
