"""Transfer learning: the convolutional base of a CNN trained on one image set, reused on another of the same image
shape, against the same network trained from scratch on the same labelled images.

Each side is trained by the rules params transfer.rules names. `ToItsBest` (the pipeline's): both train on most of
the labelled images until the rest (held out, stratified) stops improving, up to a budget in steps, and keep their
best weights; the held-out images decide when, never the test set. `SameEpochs`: both train the same number of epochs
on all the labelled images (a budget in which a network from random weights may not leave its starting point on a few
images: the unfair comparison, for studies/transfer_seeds.py)."""

import math
from typing import NamedTuple

import keras
import numpy as np
from keras import layers

from . import cnn, inputs, prepared, splitting, training
from .settings import BATCH_SIZE, SEED, Float, Int, ListOf, ParamsError, Section, Str


class Transfer(Section):
    ELSEWHERE = ("targets",)  # which dataset is the target: read by the download and prepare stages
    subsets = ListOf(Int(min=10))  # labelled training images of the target, one comparison each
    batch_size = BATCH_SIZE
    frozen_epochs = Int(min=0, max=1000)  # fine-tuning first trains only the new head on the frozen base
    unfrozen_learning_rate_factor = Float(min=0, max=1, min_exclusive=True)  # times the tuned rate, once unfrozen
    rules = ListOf(Str(choices=("to_its_best", "same_epochs")))  # how each side is trained
    epochs = Int(min=1, max=1000)  # same epochs: both sides train this many epochs on all the images
    holdout_fraction = Float(min=0.05, max=0.5)  # to its best: held out, stratified, to stop on
    max_steps = Int(min=1, max=1_000_000)
    patience_steps = Int(min=1, max=1_000_000)
    check_steps = Int(min=1, max=10_000)
    seed = SEED

    def fits(self, key):
        if self.frozen_epochs > self.epochs:
            raise ParamsError(f"{key}.frozen_epochs: {self.frozen_epochs} is more than epochs ({self.epochs})")


def convolutional_base(model):
    """The layers before Flatten: the convolutions (with their BatchNorm and pooling) that learned the features."""
    flatten = next(i for i, layer in enumerate(model.layers) if isinstance(layer, layers.Flatten))
    return model.layers[:flatten]


class SameEpochs(NamedTuple):
    """Train for `epochs` epochs on all the labelled images."""
    epochs: int

    def fit(self, model, x, y, batch_size, initial_epoch=0) -> int:
        training.fit(model, x, y, batch_size=batch_size, epochs=self.epochs, initial_epoch=initial_epoch)
        return (self.epochs - initial_epoch) * inputs.batch_count(len(y), batch_size)


class ToItsBest(NamedTuple):
    """Train on `train` until the accuracy on `held_out` has not improved for `patience_steps`, at most `max_steps`,
    checking it every `check_steps` (a small set is repeated within an epoch so that checks are that far apart
    whatever its size), and keep the weights of the best check. Accuracy, not loss: the loss of a network from
    scratch turns up (it grows overconfident) long before its accuracy stops improving."""
    held_out: tuple  # (x, y)
    max_steps: int
    patience_steps: int
    check_steps: int

    def fit(self, model, x, y, batch_size, initial_epoch=0) -> int:
        repeats = max(1, math.ceil(self.check_steps * batch_size / len(y)))
        x, y = np.concatenate([x] * repeats), np.concatenate([y] * repeats)
        steps = inputs.batch_count(len(y), batch_size)
        stop = keras.callbacks.EarlyStopping(monitor="val_accuracy", patience=math.ceil(self.patience_steps / steps),
                                             restore_best_weights=True)
        training.fit(model, x, y, batch_size=batch_size, epochs=initial_epoch + math.ceil(self.max_steps / steps),
                     initial_epoch=initial_epoch, validation_data=self.held_out, callbacks=[stop])
        return (stop.best_epoch - initial_epoch + 1) * steps


def held_out(x, y, fraction, seed):
    """(train, held out) of the labelled images, stratified by class with `seed`."""
    train, rest = splitting.stratified_split(y, fraction, seed)
    return (x[train], y[train]), (x[rest], y[rest])


def fine_tune(source, hp, description, x, y, rule, *, frozen_epochs, unfrozen_learning_rate_factor, batch_size,
              seed):
    """(model, steps): a new network of `source`'s architecture for the classes of `description`, whose
    convolutional base starts from `source`'s weights. It trains `frozen_epochs` with that base frozen (only the new
    head learns, at the tuned learning rate), then by `rule` with everything unfrozen at a lower rate, so the base
    adapts without being overwritten by the large early gradients of a random head. `steps` counts the optimizer
    steps of both phases up to the weights kept."""
    keras.utils.set_random_seed(seed)
    model = cnn.build_from_description(hp, description)
    base = convolutional_base(model)
    for target, trained in zip(base, convolutional_base(source)):
        target.set_weights(trained.get_weights())
        target.trainable = False
    steps = 0
    if frozen_epochs:
        training.compile_model(model, hp.get("learning_rate"))
        training.fit(model, x, y, batch_size=batch_size, epochs=frozen_epochs)
        steps = frozen_epochs * inputs.batch_count(len(y), batch_size)
    for layer in base:
        layer.trainable = True
    training.compile_model(model, hp.get("learning_rate") * unfrozen_learning_rate_factor)
    return model, steps + rule.fit(model, x, y, batch_size, initial_epoch=frozen_epochs)


def from_scratch(hp, description, x, y, rule, *, batch_size, seed):
    """(model, steps): the same network from random weights, trained by `rule` at the tuned learning rate."""
    keras.utils.set_random_seed(seed)
    model = cnn.build_from_description(hp, description)
    return model, rule.fit(model, x, y, batch_size)


METHODS = ("fine_tuned", "from_scratch")


def compare(source, hp, description, x, y, test, settings: Transfer, seed, eval_batch_size=1000, done=None):
    """Both methods trained by each rule of settings.rules on the labelled images (x, y) with `seed`, each scored on
    `test` (x, y). Rows of rule, method, test_accuracy and steps (optimizer steps up to the weights kept). `done`: a
    checkpoints.Checkpoints that keeps each finished training's row, so that a rerun after a kill trains only the
    rest (each training seeds itself, so it comes out the same whatever ran before it)."""
    train, held = held_out(x, y, settings.holdout_fraction, seed)
    rules = {"same_epochs": (SameEpochs(settings.epochs), (x, y)),
             "to_its_best": (ToItsBest(held, settings.max_steps, settings.patience_steps, settings.check_steps),
                             train)}
    rows = []
    for name, (rule, (x_rule, y_rule)) in ((name, rules[name]) for name in settings.rules):
        for method in METHODS:
            key = f"{len(y)} images, seed {seed}: {method} {name}"
            row = done.recall(key) if done else None
            if row is None:
                if method == "fine_tuned":
                    model, steps = fine_tune(source, hp, description, x_rule, y_rule, rule,
                                             frozen_epochs=settings.frozen_epochs,
                                             unfrozen_learning_rate_factor=settings.unfrozen_learning_rate_factor,
                                             batch_size=settings.batch_size, seed=seed)
                else:
                    model, steps = from_scratch(hp, description, x_rule, y_rule, rule,
                                                batch_size=settings.batch_size, seed=seed)
                predicted = inputs.predict(model, test[0], eval_batch_size).argmax(axis=1)
                row = {"rule": name, "method": method, "steps": steps,
                       "test_accuracy": round(float(np.mean(predicted == test[1])), 6)}
                if done:
                    done.remember(key, row)
            rows.append(row)
    return rows


COLUMNS = ["run", "images", "rule", "method", "test_accuracy", "steps"]


def run(source, hp, data_dir, settings: Transfer, eval_batch_size, done=None):
    """Every comparison of transfer.subsets on the target's prepared data: (headline metrics, one row per network
    trained, for metrics/transfer.csv)."""
    target = prepared.load_description(data_dir)
    x_train, y_train = prepared.load_split(data_dir, "train")
    test = prepared.load_split(data_dir, "test")
    metrics, rows = {}, []
    for size in settings.subsets:
        x, y = prepared.take_subset(x_train, y_train, size, settings.seed)
        found = compare(source, hp, target, x, y, test, settings, settings.seed, eval_batch_size, done)
        accuracy = {(row["rule"], row["method"]): row["test_accuracy"] for row in found}
        headline = settings.rules[0]  # the first rule's accuracies (every rule's, with their steps: transfer.csv)
        metrics[f"images_{len(y)}"] = {"fine_tuned": accuracy[headline, "fine_tuned"],
                                       "from_scratch": accuracy[headline, "from_scratch"]}
        rows += [{"run": f"{len(y)} images, {row['method'].replace('_', ' ')}, {row['rule'].replace('_', ' ')}",
                  "images": len(y), **row} for row in found]
        print(f"transfer to {target.title}, {len(y)} images: "
              + "; ".join(f"{rule.replace('_', ' ')}: fine-tuned {accuracy[rule, 'fine_tuned']:.4f}, from scratch "
                          f"{accuracy[rule, 'from_scratch']:.4f}" for rule in settings.rules))
    return metrics, rows
