"""What a trained CNN looks at: its first layer's filters, and the activation maps of each convolutional block."""

import numpy as np
from keras import layers

from .settings import Int, Section

POOLING = (layers.MaxPooling2D, layers.AveragePooling2D)


class Explain(Section):
    channels_shown = Int(min=1, max=64)  # per convolutional block: the channels most active on the images shown


def block_outputs(model):
    """The layer that ends each convolutional block before its pooling: a Conv2D with its activation, or the
    Activation after a Conv2D and its BatchNorm."""
    return [previous for previous, layer in zip(model.layers, model.layers[1:]) if isinstance(layer, POOLING)]


def activations(model, images):
    """{block layer name: activations (N, height, width, channels)} for `images`."""
    import keras

    blocks = block_outputs(model)
    probe = keras.Model(model.inputs, [layer.output for layer in blocks])
    return {layer.name: maps for layer, maps in zip(blocks, probe.predict(images, verbose=0))}


def first_filters(model):
    """The first Conv2D's kernel, (kernel height, kernel width, input channels, filters)."""
    conv = next(layer for layer in model.layers if isinstance(layer, layers.Conv2D))
    return conv.get_weights()[0]


def one_per_class(labels, num_classes):
    """Indices of the first example of each class, in class order (classes absent from `labels` are skipped)."""
    return [int(np.flatnonzero(labels == label)[0]) for label in range(num_classes) if np.any(labels == label)]


def most_active(maps, count):
    """Indices of the `count` channels with the highest mean activation over `maps`, highest first."""
    means = maps.mean(axis=(0, 1, 2))
    return np.argsort(-means, kind="stable")[:count]
