"""The tunable CNN: the hyperparameters it is built from (what a search space gives a range for, and what
models/best_hyperparameters.json holds), and the network itself. It knows nothing of files but that one."""

import json
from pathlib import Path

import keras
from keras import layers, ops

from . import training
from .errors import quote
from .networks import DROPOUT, FILTERS, KERNEL, LEARNING_RATE, UNITS, output_layer
from .settings import BATCH_SIZE, Bool, ParamsError, Section


class Hyperparameters(Section):
    """Every hyperparameter build_cnn_model reads (and batch_size, for fit), with the values it may take."""
    conv1_filters = FILTERS
    conv1_kernel = KERNEL
    conv2_filters = FILTERS
    conv2_kernel = KERNEL
    extra_conv = Bool()
    conv3_filters = FILTERS
    conv3_kernel = KERNEL
    batch_norm = Bool()
    dense_units = UNITS
    dropout = DROPOUT
    learning_rate = LEARNING_RATE
    batch_size = BATCH_SIZE

    def get(self, name):
        return getattr(self, name)


def load_hyperparameters(path) -> Hyperparameters:
    """The best hyperparameters tune wrote (models/best_hyperparameters.json), which a person may also edit: exactly
    the keys of Hyperparameters, each a value the network can be built with."""
    try:
        raw = json.loads(Path(path).read_bytes().decode("utf-8"))
        if not isinstance(raw, dict):
            raise ParamsError(f"expected a JSON object of hyperparameters, got {quote(raw)}")
        return Hyperparameters.check(raw, "")
    except (UnicodeDecodeError, ValueError) as error:  # JSONDecodeError and ParamsError are ValueErrors
        problem = error if isinstance(error, ParamsError) else f"not JSON ({error})"
        raise ParamsError(f"{path}: {problem}") from None


class BatchNormalization(layers.BatchNormalization):
    """Keras' BatchNormalization (axis -1), trained through TensorFlow's fused kernel on that backend.

    Keras 3 builds a training step of batch norm from separate ops (the moments, then the normalization, each with
    its own gradient), and on the CPU they took about as long as the convolutions. TensorFlow's fused op does the same
    arithmetic, forward and backward, in one kernel each (docs/results.md, Training throughput). Inference, the other
    backends and the saved model (model_files._as_saved saves Keras' own layer) are Keras' BatchNormalization."""

    def call(self, inputs, training=None, mask=None):
        if keras.backend.backend() != "tensorflow" or not (training and self.trainable) or mask is not None:
            return super().call(inputs, training=training, mask=mask)
        import tensorflow as tf

        channels = inputs.shape[-1]
        images = ops.reshape(ops.cast(inputs, "float32"), (-1, 1, 1, channels))  # the op takes NHWC only
        outputs, mean, variance = tf.compat.v1.nn.fused_batch_norm(
            images, self.gamma, self.beta, epsilon=self.epsilon, is_training=True)
        # The op returns the unbiased variance; Keras' moving variance averages the biased one.
        count = ops.cast(ops.size(images) // channels, "float32")
        variance = variance * (count - 1) / count
        self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1 - self.momentum))
        self.moving_variance.assign(self.moving_variance * self.momentum + variance * (1 - self.momentum))
        return ops.cast(ops.reshape(outputs, ops.shape(inputs)), self.compute_dtype)


def _batch_norm():
    # Keras' default momentum (0.99) needs several hundred steps before the moving statistics used at inference
    # settle; a short search trial ends before that and scores near chance. 0.9 settles in a few dozen steps.
    return BatchNormalization(momentum=0.9)


def _conv_block(model, filters, kernel_size, batch_norm):
    # With BatchNorm after it, a convolution's bias is redundant.
    model.add(layers.Conv2D(filters, kernel_size, padding="same", use_bias=not batch_norm))
    if batch_norm:
        model.add(_batch_norm())
    model.add(layers.Activation("relu"))
    model.add(layers.MaxPooling2D())


def build_cnn_model(hp, image_shape=(28, 28, 1), num_classes=10):
    """The tunable CNN, compiled. `hp` is a keras_tuner.HyperParameters during the search, or Hyperparameters
    afterwards: anything whose `.get(name)` returns a value for each of Hyperparameters' keys. The defaults are
    MNIST's images and classes, for use by hand; the stages pass those of their data's description.

    The ranges live in params.yaml (recipes.<dataset>.space) and are declared on the HyperParameters before the
    search, so this builder only reads values. It runs several times while the tuner starts up, so it stays free of
    side effects."""
    batch_norm = hp.get("batch_norm")
    model = keras.Sequential([keras.Input(image_shape)], name="tuned_cnn")
    _conv_block(model, hp.get("conv1_filters"), hp.get("conv1_kernel"), batch_norm)
    _conv_block(model, hp.get("conv2_filters"), hp.get("conv2_kernel"), batch_norm)
    if hp.get("extra_conv"):
        _conv_block(model, hp.get("conv3_filters"), hp.get("conv3_kernel"), batch_norm)
    model.add(layers.Flatten())
    model.add(layers.Dense(hp.get("dense_units"), use_bias=not batch_norm))
    if batch_norm:
        model.add(_batch_norm())
    model.add(layers.Activation("relu"))
    model.add(layers.Dropout(hp.get("dropout")))
    model.add(output_layer(num_classes))
    return training.compile_model(model, hp.get("learning_rate"))


def build_from_description(hp, description):
    """The tunable CNN for the images and classes of `description` (a prepared.Description)."""
    return build_cnn_model(hp, description.image_shape, description.num_classes)
