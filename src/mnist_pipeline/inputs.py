"""What a network is fed: prepare stores images as uint8 (a quarter of float32's bytes), and every caller turns them
into float32 in [0, 1] here, in one go or batch by batch, so that pixels are scaled the same way everywhere."""

import math

import numpy as np

from .settings import Int

PREDICT_BATCH = Int(min=1, max=10000)  # images a prediction step takes (params evaluate.batch_size)


def scaled(images) -> np.ndarray:
    """uint8 images (an array, or prepared.Rows read whole) as float32 in [0, 1]; float ones as they are."""
    images = np.asarray(images)
    if images.dtype != np.uint8:
        return images
    return images.astype(np.float32) / 255.0


def batch_count(examples, batch_size):
    return math.ceil(examples / batch_size)


def predict(model, images, batch_size):
    """A Keras model's outputs for `images` (uint8 or float), scaled and run batch by batch."""
    return np.concatenate([model.predict_on_batch(scaled(images[start:start + batch_size]))
                           for start in range(0, len(images), batch_size)])
