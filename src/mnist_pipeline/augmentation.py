"""Training-time distortions of the images (the recipe's augmentation: params recipes.<dataset>.augmentation), as
Keras layers placed in front of a network while it trains; they pass images through unchanged otherwise."""

import math

import keras
from keras import layers, ops

from .settings import Bool, Float, Section


class Augmentation(Section):
    """How much each image is distorted: shifts (a fraction of its size, each way), rotations, zooms, left-right
    flips, and erasing (the chance that a random rectangle of it is replaced by noise)."""
    shift_fraction = Float(min=0, max=0.5)
    rotation_degrees = Float(min=0, max=45)
    zoom_fraction = Float(min=0, max=0.5)
    flip = Bool()  # left to right, half the images
    erasing = Float(min=0, max=1)


def layers_for(settings: Augmentation | None) -> list:
    """The distortion `settings` describe, as a list of layers: empty when it would change nothing (or for None)."""
    steps = []
    if settings is None:
        return steps
    if settings.shift_fraction or settings.rotation_degrees or settings.zoom_fraction or settings.flip:
        steps.append(RandomAffine(settings.shift_fraction, settings.rotation_degrees, settings.zoom_fraction,
                                  settings.flip))
    if settings.erasing:
        steps.append(RandomErasing(settings.erasing))
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
