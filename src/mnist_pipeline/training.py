"""Fitting a network: the optimizer and loss it is compiled with, learning-rate schedules, NaN detection and
per-epoch history. Images arrive as the uint8 prepare stores (inputs.py scales them)."""

import math

import keras
import numpy as np
from keras import ops

from . import inputs, outputs
from .errors import PipelineError

# Training and validation images are scaled to float32 in one go (4 bytes an image byte) up to this many bytes of
# floats; beyond it, batch by batch as they are drawn, so that a big folder of images trains in the memory of its
# uint8 copy.
SCALED_AT_ONCE_BYTES = 1 << 30


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


def fit(model, x, y, *, batch_size, epochs, initial_epoch=0, validation_data=None, callbacks=(), verbose=2):
    """model.fit on uint8 images (x) or float ones, that stops on a NaN loss and raises, instead of saving a broken
    model. `initial_epoch`: where a model trained before (a Hyperband round) resumes counting."""
    val_size = 0 if validation_data is None else validation_data[0].size
    if x.dtype == np.uint8 and 4 * (x.size + val_size) > SCALED_AT_ONCE_BYTES:
        data = {"x": ScaledBatches(x, y, batch_size)}
        if validation_data is not None:
            validation_data = ScaledBatches(*validation_data, batch_size, shuffle=False)
    else:
        data = {"x": inputs.scaled(x), "y": y, "batch_size": batch_size, "shuffle": True}
        if validation_data is not None:
            validation_data = (inputs.scaled(validation_data[0]), validation_data[1])
    history = model.fit(
        **data,
        epochs=epochs,
        initial_epoch=initial_epoch,
        validation_data=validation_data,
        callbacks=[keras.callbacks.TerminateOnNaN(), *callbacks],
        verbose=verbose,
    )
    losses = history.history.get("loss", [])
    bad_epoch = next((i + 1 for i, loss in enumerate(losses) if not math.isfinite(loss)), None)
    if bad_epoch is not None:
        raise NonFiniteLossError(f"training loss became {losses[bad_epoch - 1]} in epoch {bad_epoch}")
    return history


class ScaledBatches(keras.utils.PyDataset):
    """Batches of images scaled as inputs.scaled does, each as it is drawn: shuffled (a new order every epoch, the
    same orders on every run), or in their stored order."""

    def __init__(self, x, y, batch_size, seed=0, shuffle=True):
        super().__init__()
        self.x, self.y, self.batch_size, self.shuffle = x, y, batch_size, shuffle
        self.rng = np.random.default_rng(seed)
        self.order = self.rng.permutation(len(y)) if shuffle else np.arange(len(y))

    def __len__(self):
        return inputs.batch_count(len(self.y), self.batch_size)

    def __getitem__(self, index):
        batch = np.sort(self.order[index * self.batch_size:(index + 1) * self.batch_size])
        return inputs.scaled(self.x[batch]), self.y[batch]

    def on_epoch_end(self):
        if self.shuffle:
            self.order = self.rng.permutation(len(self.y))


def history_table(history):
    """One row per epoch: epoch (from 1) and every logged metric, rounded for stable, readable files."""
    logs = history.history
    return outputs.table([
        {"epoch": epoch + 1, **{name: round(float(values[epoch]), 6) for name, values in sorted(logs.items())}}
        for epoch in range(len(history.epoch))
    ])
