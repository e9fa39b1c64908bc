"""tune: a Keras Tuner search (params tune.algorithm: random, hyperband or bayesian) over the tunable CNN's
hyperparameters (ranges: the space of the dataset's recipe, params recipes), scored by validation accuracy. Trials
may train on a subset of the train split, and train the way retrain does (tune.augment, tune.lr_schedule); all of
them validate on val. With tune.workers > 0 the trials run in that many worker processes (this script, started by
the stage with Keras Tuner's KERASTUNER_* variables; see mnist_pipeline/search_workers.py).

The search directory (--workspace) is not a DVC output: it holds the tuner's clock-stamped state files. Each search in
it is named by a fingerprint of everything that decides the trials' results, so an interrupted run of the same search
resumes where it stopped, and any change to params, code, libraries or data starts a fresh search. tune only ever
removes searches it made (see mnist_pipeline/search_workspace.py).
"""

from pathlib import Path

from mnist_pipeline import cli, prepared, runtime, search_settings, search_workers, search_workspace, settings


def main():
    args = cli.parse_paths(__doc__, "data", "workspace", "best", "trials", "progress", "metrics", "timing")
    tune, runtime_settings = settings.load(tune=search_settings.Tune, runtime=runtime.Runtime)
    worker = search_workers.worker_name()
    if worker:  # started by a tune stage with tune.workers > 0, here or on another machine
        search_workers.end_with_parent()
        search_workers.heartbeat(args.workspace, worker, tune.worker_silence_seconds)
    threads = search_settings.trial_threads(tune, runtime_settings.threads)
    runtime.start(runtime_settings, threads, first_cpu=search_workers.first_cpu(threads))
    from mnist_pipeline import recipes, search, search_identity, search_results

    description = prepared.load_description(args.data)
    recipe = settings.load(**{f"recipes.{description.name}": recipes.Recipe})
    root = Path(args.workspace) if worker else search_workspace.claim(args.workspace)
    runtime.seed(tune.seed)
    clock = cli.Stopwatch()
    augmentation = recipe.augmentation if tune.augment else None
    identity = search_identity.search_identity(tune, recipe.space, runtime_settings, augmentation,
                                               search.data_files(args.data))
    found = (root, identity, tune, recipe.space, description, augmentation, args.data)
    if worker:
        search.work(*found)
        return
    tuner, reused, trial_seconds = search.search(*found)
    clock.mark("search_seconds")
    best = search_results.write(args, tune.algorithm, list(recipe.space), tuner)
    clock.write(args.timing, trials_reused=reused, trial_seconds=trial_seconds)
    print(f"tune: best trial {best.trial_id}, val accuracy {best.score:.4f}: {best.hyperparameters.values}")


if __name__ == "__main__":
    search_workers.reexec_with_fixed_hash_seed()  # before cli.run takes over stderr: an exec would lose its relay
    cli.run(main)
