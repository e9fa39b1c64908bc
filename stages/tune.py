"""tune: a Keras Tuner search (params tune.algorithm: random, hyperband or bayesian) over build_cnn_model's
hyperparameters (ranges: the space of the dataset's recipe, params recipes), scored by validation accuracy. Trials
may train on a subset of the train split, and train the way retrain does (tune.augment, tune.lr_schedule); all of
them validate on val. With
tune.workers > 0 the trials run in that many worker processes (this script, started by the stage with Keras Tuner's
KERASTUNER_* variables; see mnist_pipeline/distributed.py).

The search directory (--workspace) is not a DVC output: it holds the tuner's clock-stamped state files. Each search in
it is named by a fingerprint of everything that decides the trials' results, so an interrupted run of the same search
resumes where it stopped, and any change to params, code, libraries or data starts a fresh search. tune only ever
removes searches it made (see mnist_pipeline/workspace.py).
"""

from pathlib import Path

from mnist_pipeline import artifacts, cli, data, distributed, params, runtime, workspace


def main():
    args = cli.parse_paths(__doc__, "data", "workspace", "best", "trials", "progress", "metrics", "timing")
    all_params = params.load()
    recipe = params.recipe(all_params)
    settings = {**all_params["tune"], "space": recipe["space"]}
    worker = distributed.worker_name()
    if worker:  # started by a tune stage with tune.workers > 0, here or on another machine
        distributed.end_with_parent()
        distributed.heartbeat(args.workspace, worker, settings["worker_silence_seconds"])
    elif settings["workers"]:
        distributed.oracle_service()  # Keras Tuner's internals are there, before anything trains
    search_root = Path(args.workspace) if worker else workspace.claim(args.workspace)
    threads = distributed.trial_threads(settings["workers"], all_params["runtime"]["threads"])
    runtime.configure(settings["seed"], **{**all_params["runtime"], "threads": threads},
                      first_cpu=distributed.first_cpu(threads))
    from mnist_pipeline import tuning

    clock = cli.Stopwatch()
    augmentation = recipe["augmentation"] if settings["augment"] else None
    identity = tuning.search_identity(settings, all_params["runtime"], augmentation, [
        Path(args.data, name) for name in ("train.npz", "val.npz", data.DESCRIPTION_FILE)])
    description = data.load_description(args.data)
    if worker:
        search(tuning.make_tuner(workspace.join_search(search_root, tuning.fingerprint(identity)), settings,
                                 description, augmentation), args.data, settings)
        return
    project = workspace.open_search(search_root, tuning.fingerprint(identity), identity)
    tuner = tuning.make_tuner(project, settings, description, augmentation)
    reused = len(tuning.finished_trials(tuner))
    if reused:
        print(f"resuming search {project.name}: {reused} finished trial(s) reused")
    if settings["workers"]:
        trial_seconds = distributed.search(tuner, settings["workers"], settings["worker_silence_seconds"])
    else:
        search(tuner, args.data, settings)
        trial_seconds = tuner.trial_seconds
    clock.mark("search_seconds")
    write_results(args, settings, tuner)
    clock.write(args.timing, trials_reused=reused, trial_seconds=trial_seconds)


def write_results(args, settings, tuner):
    """The best hyperparameters, one row per trial, the search's progress, and its summary metrics."""
    from mnist_pipeline import tuning

    names = list(settings["space"])
    trials = tuning.trial_table(tuner, names)
    progress = tuning.progress_table(tuner)
    best = tuning.best_trial(tuner)
    statuses = list(trials["status"])
    artifacts.write_json(args.best, {name: best.hyperparameters.values[name] for name in names})
    artifacts.write_table(args.trials, trials)
    artifacts.write_table(args.progress, progress)
    artifacts.write_json(args.metrics, {
        "algorithm": settings["algorithm"],
        "best_trial": best.trial_id,
        "best_val_accuracy": round(float(best.score), 6),
        "epochs_spent": progress["epochs_spent"].iloc[-1],
        "trials_completed": statuses.count("COMPLETED"),
        "trials_failed": len(statuses) - statuses.count("COMPLETED"),
    })
    print(f"tune: best trial {best.trial_id}, val accuracy {best.score:.4f}: {best.hyperparameters.values}")


def search(tuner, data_dir, settings):
    """Run trials of the tuner's search in this process until its oracle has none left."""
    x_train, y_train = data.take_subset(*data.load_prepared(data_dir, "train"), settings["train_subset"],
                                        settings["seed"])
    tuner.search(x_train, y_train, epochs=settings["epochs"], validation_data=data.load_prepared(data_dir, "val"),
                 verbose=2)


if __name__ == "__main__":
    runtime.reexec_with_fixed_hash_seed()  # before cli.run takes over stderr: an exec would lose its relay
    cli.run(main)
