"""Fitting: augmentation, learning-rate schedules, NaN detection and per-epoch history."""

import math

import keras
from keras import layers

from .errors import PipelineError


class NonFiniteLossError(PipelineError):
    pass


def augmentation(shift_fraction, rotation_degrees, zoom_fraction):
    """Small shifts, rotations and zooms, filling with black like the digits' background. Active only in training."""
    steps = []
    if shift_fraction > 0:
        steps.append(layers.RandomTranslation(shift_fraction, shift_fraction, fill_mode="constant"))
    if rotation_degrees > 0:
        steps.append(layers.RandomRotation(rotation_degrees / 360.0, fill_mode="constant"))
    if zoom_fraction > 0:
        steps.append(layers.RandomZoom(zoom_fraction, fill_mode="constant"))
    return steps


def with_augmentation(model, steps):
    """A training wrapper: augmentation in front of `model`, sharing its layers (so its weights are trained)."""
    if not steps:
        return model
    return keras.Sequential([keras.Input(model.input_shape[1:]), *steps, model], name=f"{model.name}_augmented")


def learning_rate_for(kind, initial, epochs, steps_per_epoch):
    """A constant rate, or cosine decay from `initial` to 0 over the whole run."""
    if kind == "constant":
        return initial
    return keras.optimizers.schedules.CosineDecay(initial, decay_steps=epochs * steps_per_epoch)


def steps_per_epoch(examples, batch_size):
    return math.ceil(examples / batch_size)


def fit(model, x, y, *, batch_size, epochs, initial_epoch=0, validation_data=None, callbacks=(), verbose=2):
    """model.fit that stops on a NaN loss and raises, instead of saving a broken model. `initial_epoch`: where a
    model trained before (a Hyperband round) resumes counting."""
    history = model.fit(
        x, y,
        batch_size=batch_size,
        epochs=epochs,
        initial_epoch=initial_epoch,
        validation_data=validation_data,
        shuffle=True,
        callbacks=[keras.callbacks.TerminateOnNaN(), *callbacks],
        verbose=verbose,
    )
    losses = history.history.get("loss", [])
    bad_epoch = next((i + 1 for i, loss in enumerate(losses) if not math.isfinite(loss)), None)
    if bad_epoch is not None:
        raise NonFiniteLossError(f"training loss became {losses[bad_epoch - 1]} in epoch {bad_epoch}")
    return history


def history_rows(history):
    """One dict per epoch: epoch (from 1) and every logged metric, rounded for stable, readable files."""
    logs = history.history
    return [
        {"epoch": epoch + 1, **{name: round(float(values[epoch]), 6) for name, values in sorted(logs.items())}}
        for epoch in range(len(history.epoch))
    ]
