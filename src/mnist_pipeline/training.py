"""Fitting: augmentation, learning-rate schedules, NaN detection and per-epoch history; images arrive as the uint8
prepare stores, and are scaled to [0, 1] in one go or, for images too many for that, batch by batch."""

import math

import keras
import numpy as np
from keras import layers, ops

from . import artifacts, data
from .errors import PipelineError

# Training and validation images are scaled to float32 in one go (4 bytes an image byte) up to this many bytes of
# floats; beyond it, batch by batch as they are drawn, so that a big folder of images trains in the memory of its
# uint8 copy.
SCALED_AT_ONCE_BYTES = 1 << 30


class NonFiniteLossError(PipelineError):
    pass


def augmentation(shift_fraction, rotation_degrees, zoom_fraction, flip=False, erasing=0.0):
    """The training-time distortion of the images, as a list of layers: empty when it would change nothing."""
    steps = []
    if shift_fraction or rotation_degrees or zoom_fraction or flip:
        steps.append(RandomAffine(shift_fraction, rotation_degrees, zoom_fraction, flip))
    if erasing:
        steps.append(RandomErasing(erasing))
    return steps


class RandomAffine(layers.Layer):
    """Each image shifted by up to `shift_fraction` of its size each way, rotated by up to `rotation_degrees`,
    zoomed by up to `zoom_fraction` about its centre and, with `flip`, mirrored left to right half the time, filling
    with black like the digits' background: one bilinear resampling (Keras' RandomTranslation and RandomRotation
    resample once each). Active only in training; it computes in float32 under any dtype policy, since bf16 cannot
    hold pixel coordinates."""

    def __init__(self, shift_fraction, rotation_degrees, zoom_fraction, flip=False, **kwargs):
        super().__init__(**{"dtype": "float32", **kwargs})
        self.shift_fraction, self.rotation_degrees, self.zoom_fraction = shift_fraction, rotation_degrees, zoom_fraction
        self.flip = flip
        self.seed_generator = keras.random.SeedGenerator()  # seeded by runtime.configure's global seed

    def call(self, images, training=False):
        if not training:
            return images
        batch, height, width = ops.shape(images)[0], images.shape[1], images.shape[2]

        def draw(limit):
            return keras.random.uniform((batch,), -limit, limit, seed=self.seed_generator)

        transforms = affine_transforms(draw(math.radians(self.rotation_degrees)), 1 + draw(self.zoom_fraction),
                                       draw(self.shift_fraction * height), draw(self.shift_fraction * width),
                                       height, width)
        if self.flip:  # drawn last, and only here, so that the other draws are those of a recipe without flips
            transforms = mirrored(transforms, draw(1.0) < 0, width)
        # TensorFlow has a native kernel for this. Elsewhere (JAX) Keras resamples with gathers, as cheap as these
        # matrix products on the CPU; the products keep a GPU on dense arithmetic (docs/backends.md).
        if keras.backend.backend() == "tensorflow":
            return ops.image.affine_transform(images, transforms, interpolation="bilinear", fill_mode="constant")
        return resample(images, transforms)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "shift_fraction": self.shift_fraction,
                "rotation_degrees": self.rotation_degrees, "zoom_fraction": self.zoom_fraction, "flip": self.flip}


def mirrored(transforms, flip, width):
    """The transforms (see affine_transforms) of the images where `flip` is true, followed by a left-right mirror
    of what they read: source x becomes (width - 1) - x."""
    sign = ops.expand_dims(ops.where(flip, -1.0, 1.0), 1)
    a = transforms[:, :3] * sign + ops.concatenate([ops.zeros_like(sign), ops.zeros_like(sign),
                                                      (1 - sign) * (width - 1) / 2], axis=1)
    return ops.concatenate([a, transforms[:, 3:]], axis=1)


class RandomErasing(layers.Layer):
    """With probability `probability`, a rectangle of each image (2-25 % of its area, its sides in a ratio of 0.3 to
    3.3) filled with uniform noise in [0, 1], so the network cannot lean on any one part of an object. Active only in
    training; float32 under any dtype policy."""

    AREA = (0.02, 0.25)
    RATIO = (0.3, 3.3)

    def __init__(self, probability, **kwargs):
        super().__init__(**{"dtype": "float32", **kwargs})
        self.probability = probability
        self.seed_generator = keras.random.SeedGenerator()

    def call(self, images, training=False):
        if not training:
            return images
        batch, height, width = ops.shape(images)[0], images.shape[1], images.shape[2]

        def uniform(low=0.0, high=1.0, shape=None):
            return keras.random.uniform(shape or (batch,), low, high, seed=self.seed_generator)

        area = uniform(*self.AREA) * height * width
        ratio = ops.exp(uniform(math.log(self.RATIO[0]), math.log(self.RATIO[1])))
        tall = ops.clip(ops.round(ops.sqrt(area * ratio)), 1, height)
        wide = ops.clip(ops.round(ops.sqrt(area / ratio)), 1, width)
        top, left = ops.floor(uniform() * (height - tall + 1)), ops.floor(uniform() * (width - wide + 1))
        rows, columns = ops.arange(height, dtype="float32"), ops.arange(width, dtype="float32")
        in_rows = (rows[None] >= top[:, None]) & (rows[None] < (top + tall)[:, None])
        in_columns = (columns[None] >= left[:, None]) & (columns[None] < (left + wide)[:, None])
        erased = in_rows[:, :, None] & in_columns[:, None, :] & (uniform() < self.probability)[:, None, None]
        return ops.where(erased[..., None], uniform(shape=ops.shape(images)), images)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "probability": self.probability}


def affine_transforms(angle, scale, shift_y, shift_x, height, width):
    """Per image, a rotation by `angle` (radians) and a zoom by `scale` about the image centre, then a shift (pixels),
    as keras.ops.image.affine_transform's 8 coefficients: output pixel (x, y) reads the input at
    (a0 x + a1 y + a2, b0 x + b1 y + b2). Shape (batch, 8)."""
    centre_y, centre_x = (height - 1) / 2, (width - 1) / 2
    cos, sin = ops.cos(angle) / scale, ops.sin(angle) / scale
    from_x, from_y = centre_x + shift_x, centre_y + shift_y
    zero = ops.zeros_like(cos)
    return ops.stack([cos, sin, centre_x - cos * from_x - sin * from_y,
                      -sin, cos, centre_y + sin * from_x - cos * from_y, zero, zero], axis=1)


def resample(images, transforms):
    """What keras.ops.image.affine_transform computes with bilinear interpolation and black fill, as two matrix
    products per image: input pixel (qy, qx) weighs max(0, 1 - |sy - qy|) * max(0, 1 - |sx - qx|) in the output pixel
    that reads the input at (sx, sy), so no gather; about 0.6 M multiply-adds per 28x28 image."""
    height, width = images.shape[1], images.shape[2]
    rows, cols = ops.arange(height, dtype="float32"), ops.arange(width, dtype="float32")
    out_y = ops.expand_dims(ops.repeat(rows, width), 0)  # (1, height*width): output pixels, row-major
    out_x = ops.expand_dims(ops.tile(cols, height), 0)
    a0, a1, a2, b0, b1, b2 = (transforms[:, i:i + 1] for i in range(6))
    source_x, source_y = a0 * out_x + a1 * out_y + a2, b0 * out_x + b1 * out_y + b2  # (batch, height*width)
    weight_x = ops.relu(1 - ops.abs(ops.expand_dims(source_x, 2) - cols))  # (batch, height*width, width)
    weight_y = ops.relu(1 - ops.abs(ops.expand_dims(source_y, 2) - rows))  # (batch, height*width, height)
    along_x = ops.einsum("bpx,byxc->bpyc", weight_x, images)
    return ops.reshape(ops.einsum("bpy,bpyc->bpc", weight_y, along_x), ops.shape(images))


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
    """model.fit on uint8 images (x) or float ones, that stops on a NaN loss and raises, instead of saving a broken
    model. `initial_epoch`: where a model trained before (a Hyperband round) resumes counting."""
    val_size = 0 if validation_data is None else validation_data[0].size
    if x.dtype == np.uint8 and 4 * (x.size + val_size) > SCALED_AT_ONCE_BYTES:
        inputs = {"x": ScaledBatches(x, y, batch_size)}
        if validation_data is not None:
            validation_data = ScaledBatches(*validation_data, batch_size, shuffle=False)
    else:
        inputs = {"x": scaled(x), "y": y, "batch_size": batch_size, "shuffle": True}
        if validation_data is not None:
            validation_data = (scaled(validation_data[0]), validation_data[1])
    history = model.fit(
        **inputs,
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


def scaled(images):
    """uint8 images as float32 in [0, 1]; float ones as they are."""
    return data.normalize(images) if images.dtype == np.uint8 else images


class ScaledBatches(keras.utils.PyDataset):
    """Batches of images scaled as `scaled` does, each as it is drawn: shuffled (a new order every epoch, the same
    orders on every run), or in their stored order."""

    def __init__(self, x, y, batch_size, seed=0, shuffle=True):
        super().__init__()
        self.x, self.y, self.batch_size, self.shuffle = x, y, batch_size, shuffle
        self.rng = np.random.default_rng(seed)
        self.order = self.rng.permutation(len(y)) if shuffle else np.arange(len(y))

    def __len__(self):
        return steps_per_epoch(len(self.y), self.batch_size)

    def __getitem__(self, index):
        batch = np.sort(self.order[index * self.batch_size:(index + 1) * self.batch_size])
        return scaled(self.x[batch]), self.y[batch]

    def on_epoch_end(self):
        if self.shuffle:
            self.order = self.rng.permutation(len(self.y))


def history_table(history):
    """One row per epoch: epoch (from 1) and every logged metric, rounded for stable, readable files."""
    logs = history.history
    return artifacts.table([
        {"epoch": epoch + 1, **{name: round(float(values[epoch]), 6) for name, values in sorted(logs.items())}}
        for epoch in range(len(history.epoch))
    ])
