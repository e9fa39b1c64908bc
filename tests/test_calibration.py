"""Calibrated confidence: the temperature fit, what it may and may not change, and the calibration error."""

import numpy as np
import pytest

from mnist_pipeline import calibration


def softmax(logits):
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def overconfident(temperature, n=20_000, seed=0):
    """(probabilities, labels): labels drawn from softmax(z / temperature), the model saying softmax(z)."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 3, (n, 10))
    truth = softmax(logits / temperature)
    labels = np.array([rng.choice(10, p=row) for row in truth])
    return softmax(logits).astype(np.float32), labels


@pytest.mark.parametrize("temperature", [0.5, 1.0, 2.5])
def test_the_fitted_temperature_is_the_one_the_labels_were_drawn_with(temperature):
    probabilities, labels = overconfident(temperature)
    assert calibration.fit_temperature(probabilities, labels) == pytest.approx(temperature, rel=0.08)


def test_a_temperature_never_changes_the_likeliest_class_and_rows_stay_probabilities():
    probabilities, _ = overconfident(2.0, n=2000)
    for temperature in (0.1, 0.7, 3.0, 40.0):
        scaled = calibration.calibrated(probabilities, temperature)
        assert np.array_equal(scaled.argmax(axis=1), probabilities.argmax(axis=1))
        assert np.allclose(scaled.sum(axis=1), 1, atol=1e-5) and (scaled >= 0).all()


def test_the_calibration_error_is_small_after_the_fit_and_large_before():
    probabilities, labels = overconfident(2.5)
    before = calibration.expected_calibration_error(probabilities, labels)
    after = calibration.expected_calibration_error(
        calibration.calibrated(probabilities, calibration.fit_temperature(probabilities, labels)), labels)
    assert before > 0.1 and after < 0.02


def test_the_reliability_bins_count_every_image_once_and_a_sure_right_model_has_no_error():
    labels = np.arange(10).repeat(30)
    sure = np.eye(10, dtype=np.float32)[labels]
    rows = calibration.reliability(sure, labels)
    assert len(rows) == calibration.BINS and sum(count for _, count, _, _ in rows) == len(labels)
    assert calibration.expected_calibration_error(sure, labels) == 0.0
