"""How well a search trial predicts the final recipe (docs/tuning.md: Trials that train as the final model does).

For each network of the committed search (`metrics/trials.csv`), three scores on the validation digits:
- plain: the trial (tune.epochs on tune.train_subset, seeded as the tuner seeds it) the way the notebook trained,
  at a constant learning rate without augmentation (tune.augment: false, tune.lr_schedule: constant);
- as retrain: the same trial behind retrain's augmentation, the learning rate decaying to 0 over it (the defaults);
- reference: the retrain recipe (augmentation, cosine decay) for --reference-epochs on the whole train split.
It prints them per trial and the rank correlation of each kind of trial with the reference.

Run from the repository root with the environment active, after `make repro` or `dvc pull` (it needs data/prepared
and the search's outputs): `python studies/tuning_proxy_ranking.py`. About 15 minutes on a 2-core machine.
"""

import argparse
import csv
import time

from scipy import stats

from mnist_pipeline import prepared, runtime, settings
from mnist_pipeline.search_settings import Tune


def value(text):
    if text in ("True", "False"):
        return text == "True"
    return float(text) if "." in text else int(text)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference-epochs", type=int, default=3)
    args = parser.parse_args()
    tune, runtime_settings = settings.load(tune=Tune, runtime=runtime.Runtime)
    runtime.start(runtime_settings)
    runtime.seed(tune.seed)
    import keras

    from mnist_pipeline import recipes, search_space

    train, val = prepared.load_split("data/prepared", "train"), prepared.load_split("data/prepared", "val")
    description = prepared.load_description("data/prepared")
    recipe = settings.load(**{f"recipes.{description.name}": recipes.Recipe})
    subset = prepared.take_subset(*train, tune.train_subset, tune.seed)
    hypermodels = {"plain": search_space.CnnHyperModel(description),
                   "as retrain": search_space.CnnHyperModel(description, recipe.augmentation, "cosine")}
    hypermodels["reference"] = hypermodels["as retrain"]
    with open("metrics/trials.csv", newline="") as f:
        trials = [row for row in csv.DictReader(f) if row["status"] == "COMPLETED"]
    scores = {"plain": [], "as retrain": [], "reference": []}
    for trial in trials:
        hp = {name: value(trial[name]) for name in recipe.space}
        for kind, (x, y), epochs in (("plain", subset, tune.epochs), ("as retrain", subset, tune.epochs),
                                     ("reference", train, args.reference_epochs)):
            keras.utils.clear_session()
            keras.utils.set_random_seed(tune.seed + int(trial["trial"]))  # as search_tuners.SeededTrials seeds one
            start = time.perf_counter()
            model = hypermodels[kind].build(hp)
            history = hypermodels[kind].fit(hp, model, x, y, epochs=epochs, validation_data=val, verbose=0)
            scores[kind].append(max(history.history["val_accuracy"]))
            print(f"trial {trial['trial']} {kind}: val accuracy {scores[kind][-1]:.6f} "
                  f"({time.perf_counter() - start:.1f} s)", flush=True)
    for kind in ("plain", "as retrain"):
        spearman = stats.spearmanr(scores[kind], scores["reference"]).statistic
        kendall = stats.kendalltau(scores[kind], scores["reference"]).statistic
        best = scores[kind].index(max(scores[kind]))
        place = sorted(scores["reference"], reverse=True).index(scores["reference"][best]) + 1
        print(f"{kind}: Spearman {spearman:.2f}, Kendall {kendall:.2f} against the reference; picks trial "
              f"{trials[best]['trial']}, place {place} of {len(trials)} in the reference")


if __name__ == "__main__":
    main()
