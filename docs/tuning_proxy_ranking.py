"""How well a search trial predicts the final recipe (docs/tuning.md: Trials that train as the final model does).

For each network of the committed search (`metrics/trials.csv`), three scores on the validation digits:
- plain: the trial (tune.epochs on tune.train_subset, seeded as the tuner seeds it) the way the notebook trained,
  at a constant learning rate without augmentation (tune.augment: false, tune.lr_schedule: constant);
- as retrain: the same trial behind retrain's augmentation, the learning rate decaying to 0 over it (the defaults);
- reference: the retrain recipe (augmentation, cosine decay) for --reference-epochs on the whole train split.
It prints them per trial and the rank correlation of each kind of trial with the reference.

Run from the repository root with the environment active, after `make repro` or `dvc pull` (it needs data/prepared
and the search's outputs): `python docs/tuning_proxy_ranking.py`. About 15 minutes on a 2-core machine.
"""

import argparse
import csv
import time

from scipy import stats

from mnist_pipeline import data, params, runtime


def value(text):
    if text in ("True", "False"):
        return text == "True"
    return float(text) if "." in text else int(text)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference-epochs", type=int, default=3)
    args = parser.parse_args()
    settings = params.load()
    tune = settings["tune"]
    runtime.configure(tune["seed"], **settings["runtime"])
    import keras

    from mnist_pipeline import tuning

    train, val = data.load_prepared("data/prepared", "train"), data.load_prepared("data/prepared", "val")
    description = data.load_description("data/prepared")
    subset = data.take_subset(*train, tune["train_subset"], tune["seed"])
    hypermodels = {"plain": tuning.CnnHyperModel(description),
                   "as retrain": tuning.CnnHyperModel(description, params.recipe(settings)["augmentation"],
                                                      "cosine")}
    hypermodels["reference"] = hypermodels["as retrain"]
    with open("metrics/trials.csv", newline="") as f:
        trials = [row for row in csv.DictReader(f) if row["status"] == "COMPLETED"]
    scores = {"plain": [], "as retrain": [], "reference": []}
    for trial in trials:
        hp = {name: value(trial[name]) for name in params.recipe(settings)["space"]}
        for kind, (x, y), epochs in (("plain", subset, tune["epochs"]), ("as retrain", subset, tune["epochs"]),
                                     ("reference", train, args.reference_epochs)):
            keras.utils.clear_session()
            keras.utils.set_random_seed(tune["seed"] + int(trial["trial"]))  # as tuning.SeededTrials seeds a trial
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
