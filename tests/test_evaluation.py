import numpy as np
import pytest

from mnist_pipeline import datasets, evaluation

NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


@pytest.fixture
def predictions():
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 10, 500)
    logits = rng.normal(size=(500, 10))
    logits[np.arange(500), labels] += 2.5  # mostly right, some wrong
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return probabilities.astype(np.float32), labels


def test_scores_are_consistent_with_each_other(predictions):
    probabilities, labels = predictions
    result = evaluation.score(probabilities, labels)
    counts = result["confusion"]
    assert counts.sum() == len(labels)
    assert counts.sum(axis=1).tolist() == np.bincount(labels, minlength=10).tolist()
    assert result["accuracy"] == pytest.approx(np.trace(counts) / len(labels))
    assert result["accuracy"] == pytest.approx(np.mean(probabilities.argmax(axis=1) == labels))
    assert result["errors"] == len(labels) - np.trace(counts)
    assert 0.5 < result["accuracy"] < 1.0


def test_cross_entropy_matches_its_definition(predictions):
    probabilities, labels = predictions
    expected = -np.mean([np.log(float(p[label])) for p, label in zip(probabilities, labels)])
    assert evaluation.cross_entropy(probabilities, labels) == pytest.approx(expected, rel=1e-6)


def test_per_class_scores_by_hand():
    actual = np.array([0, 0, 0, 1, 1, 2])
    predicted = np.array([0, 0, 1, 1, 1, 0])
    rows = evaluation.per_class_table(evaluation.confusion_matrix(actual, predicted, 10), NAMES).to_dict("records")
    assert len(rows) == 10
    assert rows[0] == {"class": "zero", "precision": pytest.approx(2 / 3), "recall": pytest.approx(2 / 3),
                       "f1": pytest.approx(2 / 3), "support": 3}
    assert rows[1]["precision"] == pytest.approx(2 / 3) and rows[1]["recall"] == 1.0
    assert rows[2] == {"class": "two", "precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert rows[9]["support"] == 0


def test_confusion_rows_are_one_per_example(predictions):
    probabilities, labels = predictions
    rows = evaluation.confusion_table(labels, probabilities.argmax(axis=1), NAMES).to_dict("records")
    assert len(rows) == len(labels) and set(rows[0]) == {"actual", "predicted"}
    assert [row["actual"] for row in rows[:3]] == [NAMES[label] for label in labels[:3]]


def test_figures_name_the_classes_and_show_colour_images_in_colour():
    from mnist_pipeline import plots

    names = datasets.DATASETS["fashion_mnist"].class_names
    grey = np.random.default_rng(0).random((3, 28, 28, 1), dtype=np.float32)
    figure = plots.sample_predictions(grey, np.array([0, 9, 6]), np.array([0, 9, 2]), np.array([0.9, 0.8, 0.7]),
                                      names, "tuned")
    titles = [axes.get_title() for axes in figure.axes if axes.get_title()]
    assert titles == ["pred T-shirt/top (90%)\ntrue T-shirt/top", "pred Ankle boot (80%)\ntrue Ankle boot",
                      "pred Pullover (70%)\ntrue Shirt"]
    colour = np.random.default_rng(0).random((2, 32, 32, 3), dtype=np.float32)
    figure = plots.misclassified(colour, np.array([3, 5]), np.array([5, 3]), np.array([0.6, 0.5]),
                                 datasets.DATASETS["cifar10"].class_names, "tuned", 2)
    assert figure.axes[0].get_title() == "true cat\npred dog (60%)"
    assert figure.axes[0].get_images()[0].get_array().shape == (32, 32, 3)


def test_class_names_with_dollar_signs_are_drawn_as_written_not_as_math(tmp_path):
    from mnist_pipeline import plots

    names = ("$\\frac{a$", "a$b$c")  # an unclosed command, and two signs that would start mathtext
    images = np.random.default_rng(0).random((2, 28, 28, 1), dtype=np.float32)
    figure = plots.sample_predictions(images, np.array([0, 1]), np.array([1, 0]), np.array([0.9, 0.8]), names,
                                      "tuned")
    figure.savefig(tmp_path / "drawn.png")  # mathtext would raise here on the first name
    assert figure.axes[0].get_title() == "pred a\\$b\\$c (90%)\ntrue \\$\\frac{a\\$"
