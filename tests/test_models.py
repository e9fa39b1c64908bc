import itertools
from pathlib import Path

import numpy as np
import pytest
from helpers import start_runtime

from mnist_pipeline import prepared, settings

start_runtime()
import keras  # noqa: E402

from mnist_pipeline import augmentation, baseline_model, cnn, recipes, search_space, training  # noqa: E402

SPACE = settings.load(Path(__file__).resolve().parents[1] / "params.yaml", **{"recipes.mnist": recipes.Recipe}).space
SWITCHES = [name for name, spec in SPACE.items() if spec.get("choice") and isinstance(spec["choice"][0], bool)]


def extreme(spec, end):
    """The smallest (end=0) or largest (end=-1) value of one hyperparameter's range."""
    values = sorted(spec["choice"]) if "choice" in spec else [spec["min"], spec["max"]]
    return values[end]


def corners():
    for end, switches in itertools.product((0, -1), itertools.product((False, True), repeat=len(SWITCHES))):
        hp = {name: extreme(spec, end) for name, spec in SPACE.items()}
        hp.update(zip(SWITCHES, switches))
        yield pytest.param(hp, id=f"{'min' if end == 0 else 'max'}-" + "-".join(
            f"{name}={value}" for name, value in zip(SWITCHES, switches)))


class ReadRecorder(dict):
    """Hyperparameter values that remember which names the builder read."""

    def __init__(self, values):
        super().__init__(values)
        self.read = set()

    def get(self, name):
        self.read.add(name)
        return self[name]


def test_the_declared_hyperparameters_are_the_ones_a_trial_reads():
    hp = ReadRecorder({name: extreme(spec, -1) for name, spec in SPACE.items()})
    cnn.build_cnn_model(hp)
    assert hp.read | {"batch_size"} == set(cnn.Hyperparameters.FIELDS)  # batch_size is read by the trial's fit
    assert set(SWITCHES) == {"extra_conv", "batch_norm"}


@pytest.mark.parametrize("hp", corners())
def test_every_corner_of_the_search_space_builds_and_predicts(hp):
    model = cnn.build_cnn_model(hp)
    probabilities = model.predict(np.random.default_rng(0).random((3, 28, 28, 1), dtype=np.float32), verbose=0)
    assert probabilities.shape == (3, 10)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    conv_layers = [layer for layer in model.layers if layer.__class__.__name__ == "Conv2D"]
    assert len(conv_layers) == (3 if hp["extra_conv"] else 2)
    assert any(layer.__class__.__name__ == "BatchNormalization" for layer in model.layers) == hp["batch_norm"]


def test_the_declared_space_is_what_the_tuner_samples():
    hp = search_space.declare_search_space(SPACE)
    declared = {p.name: p.__class__.__name__ for p in hp.space}
    assert declared["batch_norm"] == "Boolean" and declared["learning_rate"] == "Float"
    assert declared["dense_units"] == "Int"
    assert hp.space[[p.name for p in hp.space].index("learning_rate")].sampling == "log"
    model = cnn.build_cnn_model(hp)  # the builder reads the declared defaults
    assert model.output_shape == (None, 10)


def test_a_choice_of_one_is_fixed_and_a_choice_of_several_is_sampled():
    kinds = {values: {p.name: p.__class__.__name__ for p in search_space.declare_search_space(
        {**SPACE, "conv1_kernel": {"choice": list(values)}}).space}["conv1_kernel"] for values in [(3,), (3, 5)]}
    assert kinds == {(3,): "Fixed", (3, 5): "Choice"}


def test_baseline_is_the_notebook_network():
    settings_ = baseline_model.Baseline(conv_filters=(32, 64), kernel_size=3, dense_units=128, dropout=0.0,
                                        learning_rate=1e-3)
    model = baseline_model.build_baseline(settings_, prepared.Description("mnist", "MNIST", (28, 28, 1),
                                                                          tuple("0123456789")))
    kinds = [layer.__class__.__name__ for layer in model.layers]
    assert kinds == ["Conv2D", "MaxPooling2D", "Conv2D", "MaxPooling2D", "Flatten", "Dense", "Dense"]
    assert model.loss == "sparse_categorical_crossentropy"
    assert model.count_params() == 225034


SMALL_HP = {"conv1_filters": 4, "conv1_kernel": 3, "conv2_filters": 4, "conv2_kernel": 3, "extra_conv": False,
            "conv3_filters": 4, "conv3_kernel": 3, "batch_norm": True, "dense_units": 8, "dropout": 0.0,
            "learning_rate": 1e-3, "batch_size": 32}


@pytest.mark.parametrize("frozen_epochs, epochs", [(1, 1), (1, 2)])
def test_fine_tuning_keeps_the_base_frozen_for_its_epochs_then_trains_it(frozen_epochs, epochs):
    from mnist_pipeline import transfer

    description = prepared.Description("toy", "Toy", (28, 28, 1), tuple("abcdefghij"))
    source = cnn.build_from_description(SMALL_HP, description)
    rng = np.random.default_rng(0)
    x, y = rng.random((64, 28, 28, 1), dtype=np.float32), rng.integers(0, 10, 64)
    tuned, steps = transfer.fine_tune(source, SMALL_HP, description, x, y, transfer.SameEpochs(epochs),
                                      frozen_epochs=frozen_epochs, unfrozen_learning_rate_factor=0.1, batch_size=32,
                                      seed=3)
    assert steps == epochs * 2  # 64 images in batches of 32
    base = list(zip(transfer.convolutional_base(tuned), transfer.convolutional_base(source)))
    assert [layer.__class__.__name__ for layer, _ in base] == ["Conv2D", "BatchNormalization", "Activation",
                                                                "MaxPooling2D"] * 2
    same = all(np.array_equal(a, b) for layer, trained in base
               for a, b in zip(layer.get_weights(), trained.get_weights()))
    assert same == (epochs == frozen_epochs)  # frozen: the source's weights exactly; unfrozen: they moved
    assert all(layer.trainable for layer, _ in base)
    head = tuned.layers[len(base) + 1]  # the Dense after Flatten: new, trained from its own random start
    assert not np.array_equal(head.get_weights()[0], source.layers[len(base) + 1].get_weights()[0])


def test_trained_to_its_best_a_network_stops_when_the_held_out_images_stop_improving_and_keeps_its_best():
    from mnist_pipeline import transfer

    description = prepared.Description("toy", "Toy", (28, 28, 1), tuple("ab"))
    rng = np.random.default_rng(1)
    x, y = rng.random((100, 28, 28, 1), dtype=np.float32), rng.integers(0, 2, 100)  # nothing to learn: it overfits
    train, held = transfer.held_out(x, y, 0.2, seed=3)
    assert len(held[1]) == 20 and set(held[1]) == {0, 1}

    def held_out_accuracy(model):
        return float(np.mean(model.predict(held[0], verbose=0).argmax(axis=1) == held[1]))

    rule = transfer.ToItsBest(held, max_steps=600, patience_steps=40, check_steps=10)
    best, steps = transfer.from_scratch(SMALL_HP, description, *train, rule, batch_size=32, seed=3)
    assert 0 < steps < 600 and steps % 10 == 0  # it stopped before its budget, at a check
    longer, _ = transfer.from_scratch(SMALL_HP, description, *train, transfer.SameEpochs(200), batch_size=32, seed=3)
    assert held_out_accuracy(best) >= held_out_accuracy(longer)  # its best check, never the overfitted end


def test_search_trials_are_built_in_runtime_precision_though_keras_tuner_clears_the_session():
    description = prepared.Description("mnist", "MNIST", (28, 28, 1), tuple(str(d) for d in range(10)))
    hp = {name: extreme(spec, 0) for name, spec in SPACE.items()}
    keras.mixed_precision.set_global_policy("mixed_bfloat16")  # as runtime.start does for runtime.precision
    try:
        hypermodel = search_space.CnnHyperModel(description)
        keras.backend.clear_session()  # what Keras Tuner does before it builds each trial's model
        model = hypermodel.build(hp)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert model.layers[0].compute_dtype == "bfloat16"
    assert model.layers[-1].compute_dtype == "float32"  # the softmax output, under any policy


@pytest.mark.parametrize("initial_epoch", [0, 1])
def test_a_trial_can_train_as_retrain_does_behind_the_augmentation_with_the_rate_decaying_to_zero(initial_epoch):
    description = prepared.Description("toy", "Toy", (28, 28, 1), tuple("abcdefghij"))
    distortion = augmentation.Augmentation(shift_fraction=0.1, rotation_degrees=8, zoom_fraction=0.0, flip=False,
                                           erasing=0.0)
    hypermodel = search_space.CnnHyperModel(description, distortion, "cosine")
    model = hypermodel.build(SMALL_HP)
    assert isinstance(model.layers[0], augmentation.RandomAffine)
    rng = np.random.default_rng(0)
    images, labels = rng.random((64, 28, 28, 1), dtype=np.float32), rng.integers(0, 10, 64)
    # A Hyperband round that resumes at epoch 1 decays over its own epochs, from a fresh optimizer.
    history = hypermodel.fit(SMALL_HP, model, images, labels, epochs=3, initial_epoch=initial_epoch, verbose=0)
    assert len(history.epoch) == 3 - initial_epoch
    assert int(model.optimizer.iterations) == (3 - initial_epoch) * 2
    assert float(model.optimizer.learning_rate) == pytest.approx(0, abs=1e-9)


@pytest.mark.parametrize("ema_momentum", [0.0, 0.999999])
def test_with_a_weight_average_fit_ends_on_the_average_not_on_the_last_step(ema_momentum):
    description = prepared.Description("toy", "Toy", (28, 28, 1), tuple("abcdefghij"))
    model = cnn.build_from_description(SMALL_HP, description)
    training.compile_model(model, learning_rate=0.01, ema_momentum=ema_momentum)
    start = [weight.numpy() for weight in model.trainable_weights]
    rng = np.random.default_rng(0)
    model.fit(rng.random((64, 28, 28, 1), dtype=np.float32), rng.integers(0, 10, 64), batch_size=16, verbose=0)
    moved = max(np.abs(weight.numpy() - before).max() for weight, before in zip(model.trainable_weights, start))
    # An Adam step moves a weight by at most the learning rate, so four steps by up to 0.04. Keras starts the average
    # at the first step's weights; one that keeps 0.999999 of itself per step stays there, one step from the start.
    assert moved <= 0.0101 if ema_momentum else moved > 0.02


@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
def test_label_smoothing_moves_that_much_of_each_target_evenly_onto_all_classes(label_smoothing):
    description = prepared.Description("toy", "Toy", (28, 28, 1), tuple("abcdefghij"))
    model = training.compile_model(cnn.build_from_description(SMALL_HP, description), 0.001,
                                 label_smoothing=label_smoothing)
    rng = np.random.default_rng(0)
    images, labels = rng.random((32, 28, 28, 1), dtype=np.float32), rng.integers(0, 10, 32)
    loss, _ = model.evaluate(images, labels, batch_size=32, verbose=0)
    targets = np.full((32, 10), label_smoothing / 10)
    targets[np.arange(32), labels] += 1 - label_smoothing
    expected = -(targets * np.log(model.predict(images, verbose=0))).sum(axis=1).mean()
    assert loss == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("shape", [(32, 7, 7, 4), (32, 8)], ids=["after-a-convolution", "after-the-dense-layer"])
def test_the_fused_batch_norm_trains_as_keras_own_does(shape):
    """The same outputs, gradients and moving statistics as Keras' BatchNormalization, within float32 rounding."""
    import tensorflow as tf
    from keras import layers

    rng = np.random.default_rng(0)
    inputs = tf.constant(rng.normal(2.0, 3.0, shape).astype(np.float32))
    upstream = tf.constant(rng.normal(size=shape).astype(np.float32))
    results = []
    for layer in (layers.BatchNormalization(momentum=0.9), cnn.BatchNormalization(momentum=0.9)):
        layer.build(shape)
        layer.gamma.assign(np.linspace(0.5, 1.5, shape[-1], dtype=np.float32))
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            outputs = layer(inputs, training=True)
            loss = tf.reduce_sum(outputs * upstream)
        gradients = tape.gradient(loss, [inputs, layer.gamma, layer.beta])
        results.append([outputs, *gradients, layer.moving_mean, layer.moving_variance, layer(inputs, training=False)])
    keras_own, fused = results
    for expected, actual in zip(keras_own, fused):
        expected, actual = np.asarray(expected), np.asarray(actual)
        np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())
