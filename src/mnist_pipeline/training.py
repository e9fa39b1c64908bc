"""Fitting a network: the optimizer and loss it is compiled with, learning-rate schedules, NaN detection and
per-epoch history. Images arrive as the uint8 prepare stores, possibly still on disk (prepared.Rows), and reach the
network through one route: batch by batch, each scaled as it is drawn (inputs.scaled), in an order drawn from the
seed and the epoch's number, so that an epoch feeds the same batches whether or not the training resumed before it."""

import math

import keras
import numpy as np
from keras import ops

from . import inputs, outputs
from .errors import PipelineError


class NonFiniteLossError(PipelineError):
    pass


def compile_model(model, learning_rate, ema_momentum=0.0, label_smoothing=0.0):
    """Adam, categorical cross-entropy on integer labels, accuracy. `learning_rate` may be a schedule. With
    `ema_momentum` > 0, fit ends by replacing the trained weights with their exponential moving average over the
    steps (Keras' use_ema). With `label_smoothing` > 0, the target of each image is 1 - label_smoothing on its class
    and the rest spread evenly over all classes."""
    ema = {"use_ema": True, "ema_momentum": ema_momentum} if ema_momentum else {}
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate, **ema),
        loss=_smoothed_cross_entropy(label_smoothing) if label_smoothing else "sparse_categorical_crossentropy",
        metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
    )
    return model


def _smoothed_cross_entropy(label_smoothing):
    # Keras' sparse loss has no smoothing; its one-hot loss does. The labels stay integers everywhere else.
    def loss(labels, probabilities):
        one_hot = ops.one_hot(ops.reshape(ops.cast(labels, "int32"), (-1,)), ops.shape(probabilities)[-1])
        return keras.losses.categorical_crossentropy(one_hot, probabilities, label_smoothing=label_smoothing)

    return loss


def learning_rate_for(kind, initial, epochs, steps_per_epoch):
    """A constant rate, or cosine decay from `initial` to 0 over the whole run."""
    if kind == "constant":
        return initial
    return keras.optimizers.schedules.CosineDecay(initial, decay_steps=epochs * steps_per_epoch)


def fit(model, x, y, *, batch_size, epochs, initial_epoch=0, validation_data=None, callbacks=(), verbose=2, seed=0):
    """model.fit on uint8 images `x` (or float ones), that stops on a NaN loss and raises, instead of saving a broken
    model. `initial_epoch`: where a model trained before (a Hyperband round) resumes counting; `seed`: the batches'
    order."""
    batches = ScaledBatches(x, y, batch_size, seed)
    if validation_data is not None:
        validation_data = ScaledBatches(*validation_data, batch_size, shuffle=False)
    # shuffle=False: the batches shuffle themselves, by seed and epoch; Keras' own shuffle of their order draws from a
    # global generator that a resumed run (checkpoints.py) could not set back.
    history = model.fit(batches, epochs=epochs, initial_epoch=initial_epoch, validation_data=validation_data,
                        shuffle=False, callbacks=[keras.callbacks.TerminateOnNaN(), batches.follower(), *callbacks],
                        verbose=verbose)
    losses = history.history.get("loss", [])
    bad_epoch = next((i + 1 for i, loss in enumerate(losses) if not math.isfinite(loss)), None)
    if bad_epoch is not None:
        raise NonFiniteLossError(f"training loss became {losses[bad_epoch - 1]} in epoch {bad_epoch}")
    return history


class ScaledBatches(keras.utils.PyDataset):
    """Batches of images scaled as inputs.scaled does, each as it is drawn: shuffled in the order of the epoch the
    fit is in (follower() keeps count), or in their stored order. Each batch's rows are read in ascending order, which
    the disk reads fastest."""

    def __init__(self, x, y, batch_size, seed=0, shuffle=True):
        super().__init__()
        self.x, self.y, self.batch_size, self.seed, self.shuffle = x, y, batch_size, seed, shuffle
        self.start_epoch(0)

    def start_epoch(self, epoch):
        self.order = (np.random.default_rng([self.seed, epoch]).permutation(len(self.y)) if self.shuffle
                      else np.arange(len(self.y)))

    def follower(self):
        """A callback that tells these batches which epoch the fit begins."""
        return keras.callbacks.LambdaCallback(on_epoch_begin=lambda epoch, logs: self.start_epoch(epoch))

    def __len__(self):
        return inputs.batch_count(len(self.y), self.batch_size)

    def __getitem__(self, index):
        batch = np.sort(self.order[index * self.batch_size:(index + 1) * self.batch_size])
        return inputs.scaled(self.x[batch]), self.y[batch]


def history_table(epochs):
    """One row per epoch (a list of Keras' epoch logs): epoch (from 1) and every logged metric, rounded for stable,
    readable files."""
    return outputs.table([{"epoch": epoch + 1, **{name: round(float(value), 6) for name, value in sorted(logs.items())}}
                          for epoch, logs in enumerate(epochs)])


def epoch_logs(history) -> list:
    """Keras' History as a list of each epoch's logs."""
    return [{name: values[index] for name, values in history.history.items()} for index in range(len(history.epoch))]
