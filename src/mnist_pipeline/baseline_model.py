"""The original notebook's CNN (params baseline): Conv2D + MaxPooling2D blocks, Flatten, Dense, softmax."""

import keras
from keras import layers

from . import training
from .networks import DROPOUT, FILTERS, KERNEL, LEARNING_RATE, UNITS, output_layer
from .settings import BATCH_SIZE, SEED, SUBSET, Int, ListOf, ParamsError, Section


class Baseline(Section):
    conv_filters = ListOf(FILTERS)
    kernel_size = KERNEL
    dense_units = UNITS
    dropout = DROPOUT
    learning_rate = LEARNING_RATE
    batch_size = BATCH_SIZE
    epochs = Int(min=1, max=1000)
    train_subset = SUBSET
    seed = SEED


def check_fit(settings: Baseline, image_shape):
    """Each block is a valid convolution then 2x2 pooling: every block must still get a map to work on."""
    side, kernel = min(image_shape[:2]), settings.kernel_size
    for block in range(1, len(settings.conv_filters) + 1):
        if side - kernel + 1 < 2:
            raise ParamsError(f"baseline.conv_filters: {len(settings.conv_filters)} blocks do not fit a "
                              f"{image_shape[0]}x{image_shape[1]} image with kernel_size {kernel}: block {block} "
                              f"would get a {side}x{side} map (at most {block - 1} blocks fit)")
        side = (side - kernel + 1) // 2


def build_baseline(settings: Baseline, description):
    """The network `settings` describe, compiled, for the images and classes of `description`."""
    check_fit(settings, description.image_shape)
    model = keras.Sequential([keras.Input(description.image_shape)], name="baseline")
    for filters in settings.conv_filters:
        model.add(layers.Conv2D(filters, settings.kernel_size, activation="relu"))
        model.add(layers.MaxPooling2D())
    model.add(layers.Flatten())
    model.add(layers.Dense(settings.dense_units, activation="relu"))
    if settings.dropout > 0:
        model.add(layers.Dropout(settings.dropout))
    model.add(output_layer(description.num_classes))
    return training.compile_model(model, settings.learning_rate)
