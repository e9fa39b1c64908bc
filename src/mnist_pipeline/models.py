"""The two CNNs: the notebook's baseline and the tunable one. This module knows nothing of files."""

import keras
from keras import layers, ops


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


def _output_layer(num_classes):
    # In float32 under any dtype policy: a bf16 softmax rounds small probabilities to 0 and the loss with them.
    return layers.Dense(num_classes, activation="softmax", dtype="float32")


def build_baseline_model(conv_filters, kernel_size, dense_units, dropout, learning_rate, *, image_shape, num_classes):
    """The original notebook's network: Conv2D + MaxPooling2D blocks, Flatten, Dense, softmax."""
    model = keras.Sequential([keras.Input(image_shape)], name="baseline")
    for filters in conv_filters:
        model.add(layers.Conv2D(filters, kernel_size, activation="relu"))
        model.add(layers.MaxPooling2D())
    model.add(layers.Flatten())
    model.add(layers.Dense(dense_units, activation="relu"))
    if dropout > 0:
        model.add(layers.Dropout(dropout))
    model.add(_output_layer(num_classes))
    return compile_model(model, learning_rate)


def build_baseline_from_params(section, description):
    """The baseline as the `baseline` section of params.yaml describes it (for training and for evaluation alike),
    for the images and classes of `description` (a data.Description)."""
    return build_baseline_model(section["conv_filters"], section["kernel_size"], section["dense_units"],
                                section["dropout"], section["learning_rate"],
                                image_shape=description.image_shape, num_classes=description.num_classes)


class BatchNormalization(layers.BatchNormalization):
    """Keras' BatchNormalization (axis -1), trained through TensorFlow's fused kernel on that backend.

    Keras 3 builds a training step of batch norm from separate ops (the moments, then the normalization, each with
    its own gradient), and on the CPU they took about as long as the convolutions. TensorFlow's fused op does the same
    arithmetic, forward and backward, in one kernel each (docs/results.md, Training throughput). Inference, the other
    backends and the saved model (model_files saves Keras' own layer) are Keras' BatchNormalization unchanged."""

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
    """The tunable CNN. `hp` is a keras_tuner.HyperParameters during the search, or a plain dict of the best values
    afterwards: anything whose `.get(name)` returns a value for each of params.CNN_HYPERPARAMETERS. The stages pass
    the image shape and class count of their data's description; the defaults are MNIST's, for use by hand.

    The ranges live in params.yaml (tune.space) and are declared on the HyperParameters before the search, so this
    builder only reads values. It runs several times while the tuner starts up, so it stays free of side effects.
    """
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
    model.add(_output_layer(num_classes))
    return compile_model(model, hp.get("learning_rate"))


def build_cnn_from_description(hp, description):
    """The tunable CNN for the images and classes of `description` (a data.Description)."""
    return build_cnn_model(hp, description.image_shape, description.num_classes)
