"""Confidence that means what it says: a model's softmax probabilities rescaled by one temperature T,
softmax(log(p) / T), fitted on the validation split to minimise the negative log-likelihood (Guo et al. 2017). A
temperature never changes which class is likeliest, so accuracy stays as it was; label smoothing, which caps a
model's confidence near 1 - smoothing, is what it mostly corrects here. The expected calibration error (ECE) says how
far confidence is from accuracy: the gap in each of 15 equal-width bins of confidence, weighted by its images."""

import numpy as np

BINS = 15
BOUNDS = (0.02, 50.0)  # temperatures searched: sharpening up to 50x, softening up to 50x


def calibrated(probabilities, temperature) -> np.ndarray:
    """softmax(log(p) / T), row by row, in float32."""
    if temperature == 1.0:
        return probabilities
    logits = np.log(np.clip(np.asarray(probabilities, np.float64), 1e-12, 1.0)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    scaled = np.exp(logits)
    return (scaled / scaled.sum(axis=1, keepdims=True)).astype(np.float32)


def negative_log_likelihood(probabilities, labels, temperature) -> float:
    picked = calibrated(probabilities, temperature)[np.arange(len(labels)), labels].astype(np.float64)
    return float(-np.mean(np.log(np.clip(picked, 1e-12, 1.0))))


def fit_temperature(probabilities, labels) -> float:
    """The temperature that minimises the negative log-likelihood of `labels`, found by golden-section search on
    log T (the likelihood is unimodal in it), rounded to 4 digits so that saved files stay byte-stable."""
    low, high = np.log(BOUNDS[0]), np.log(BOUNDS[1])
    ratio = (np.sqrt(5) - 1) / 2
    a, b = high - ratio * (high - low), low + ratio * (high - low)
    loss_a, loss_b = (negative_log_likelihood(probabilities, labels, np.exp(x)) for x in (a, b))
    for _ in range(60):
        if loss_a < loss_b:
            high, b, loss_b = b, a, loss_a
            a = high - ratio * (high - low)
            loss_a = negative_log_likelihood(probabilities, labels, np.exp(a))
        else:
            low, a, loss_a = a, b, loss_b
            b = low + ratio * (high - low)
            loss_b = negative_log_likelihood(probabilities, labels, np.exp(b))
    return round(float(np.exp((low + high) / 2)), 4)


def card(probabilities, labels) -> dict:
    """What a trained model's dataset.json records of its calibration, from its probabilities on the validation
    split: the temperature fitted there, and its accuracy there (model_loading.Card)."""
    return {"temperature": fit_temperature(probabilities, labels),
            "validation_accuracy": round(float(np.mean(probabilities.argmax(axis=1) == labels)), 6)}


def reliability(probabilities, labels, bins=BINS):
    """Per bin of confidence (the top class's probability): (lower edge, images, mean confidence, accuracy)."""
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == labels
    which = np.minimum((confidence * bins).astype(int), bins - 1)
    rows = []
    for b in range(bins):
        members = which == b
        count = int(members.sum())
        rows.append((b / bins, count, float(confidence[members].mean()) if count else 0.0,
                     float(correct[members].mean()) if count else 0.0))
    return rows


def expected_calibration_error(probabilities, labels, bins=BINS) -> float:
    total = len(labels)
    return float(sum(count / total * abs(accuracy - confidence)
                     for _, count, confidence, accuracy in reliability(probabilities, labels, bins) if count))
