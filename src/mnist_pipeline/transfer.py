"""Transfer learning: the convolutional base of a CNN trained on one image set, reused on another of the same image
shape, against the same network trained from scratch for as many epochs on as many labelled images."""

import keras
from keras import layers

from . import models, training


def convolutional_base(model):
    """The layers before Flatten: the convolutions (with their BatchNorm and pooling) that learned the features."""
    flatten = next(i for i, layer in enumerate(model.layers) if isinstance(layer, layers.Flatten))
    return model.layers[:flatten]


def fine_tune(source, hp, description, x, y, *, epochs, frozen_epochs, unfrozen_learning_rate_factor, batch_size,
              seed):
    """A new network of `source`'s architecture for the classes of `description`, whose convolutional base starts
    from `source`'s weights. It trains `frozen_epochs` with that base frozen (only the new head learns, at the tuned
    learning rate), then the rest with everything unfrozen at a lower rate, so the base adapts without being
    overwritten by the large early gradients of a random head."""
    keras.utils.set_random_seed(seed)
    model = models.build_cnn_from_description(hp, description)
    base = convolutional_base(model)
    for target, trained in zip(base, convolutional_base(source)):
        target.set_weights(trained.get_weights())
        target.trainable = False
    if frozen_epochs:
        models.compile_model(model, hp["learning_rate"])
        training.fit(model, x, y, batch_size=batch_size, epochs=frozen_epochs)
    for layer in base:
        layer.trainable = True
    models.compile_model(model, hp["learning_rate"] * unfrozen_learning_rate_factor)
    if epochs > frozen_epochs:
        training.fit(model, x, y, batch_size=batch_size, epochs=epochs, initial_epoch=frozen_epochs)
    return model


def from_scratch(hp, description, x, y, *, epochs, batch_size, seed):
    """The same network from random weights, trained for `epochs` at the tuned learning rate."""
    keras.utils.set_random_seed(seed)
    model = models.build_cnn_from_description(hp, description)
    training.fit(model, x, y, batch_size=batch_size, epochs=epochs)
    return model
