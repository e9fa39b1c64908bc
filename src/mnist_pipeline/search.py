"""The tune stage's search, in whichever role its process has: the search itself (its trials trained here, or by
worker processes it starts when tune.workers > 0, and any that join from elsewhere), or one worker of another
process's search (search_workers.py). Each search is a directory of the workspace named by its fingerprint
(search_identity.py), so an interrupted run of the same search resumes."""


from . import prepared, search_identity, search_tuners, search_workers, search_workspace
from .search_settings import Tune


def data_files(data_dir):
    """The prepared files a search's trials read, as its identity records them."""
    return prepared.data_files(data_dir, "train", "val")


def train_trials(tuner, data_dir, settings: Tune):
    """Run trials of the tuner's search in this process until its oracle has none left."""
    x, y = prepared.take_subset(*prepared.load_split(data_dir, "train"), settings.train_subset, settings.seed)
    tuner.search(x, y, epochs=settings.epochs, validation_data=prepared.load_split(data_dir, "val"), verbose=2)


def work(root, identity, settings: Tune, space, description, augmentation_settings, data_dir):
    """As a worker: train the trials the oracle of the search `identity` hands out."""
    project = search_workspace.join_search(root, search_identity.fingerprint(identity))
    train_trials(search_tuners.make_tuner(project, settings, space, description, augmentation_settings), data_dir,
                 settings)


def search(root, identity, settings: Tune, space, description, augmentation_settings, data_dir):
    """The search `identity` in the workspace `root`, resumed where it stopped; returns (tuner, trials reused,
    seconds of each trial trained now)."""
    project = search_workspace.open_search(root, search_identity.fingerprint(identity), identity)
    tuner = search_tuners.make_tuner(project, settings, space, description, augmentation_settings)
    reused = len(search_tuners.finished_trials(tuner))
    if reused:
        print(f"resuming search {project.name}: {reused} finished trial(s) reused")
    if settings.workers:
        search_workers.oracle_service()  # Keras Tuner's internals are there, before anything trains
        return tuner, reused, search_workers.run_with_workers(tuner, settings.workers, settings.worker_silence_seconds)
    train_trials(tuner, data_dir, settings)
    return tuner, reused, tuner.trial_seconds
