"""The evaluation figures. Each function returns a matplotlib Figure; `save` writes one. Text that comes from data
(class names, titles) is drawn as it is: a `$` in it is escaped, never read as mathtext."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from . import outputs  # noqa: E402


def training_curves(histories: dict):
    """Loss and accuracy per epoch for each model; `histories` maps a model name to its history rows."""
    figure, (loss_axes, accuracy_axes) = plt.subplots(1, 2, figsize=(11, 4))
    for name, rows in histories.items():
        epochs = [row["epoch"] for row in rows]
        for axes, metric in ((loss_axes, "loss"), (accuracy_axes, "accuracy")):
            axes.plot(epochs, [row[metric] for row in rows], marker="o", label=f"{name} train")
            if "val_" + metric in rows[0]:
                axes.plot(epochs, [row["val_" + metric] for row in rows], marker="o", linestyle="--",
                          label=f"{name} validation")
    for axes, title in ((loss_axes, "Loss"), (accuracy_axes, "Accuracy")):
        axes.set_title(title)
        axes.set_xlabel("epoch")
        axes.grid(alpha=0.3)
        axes.legend()
    figure.tight_layout()
    return figure


def plain(text) -> str:
    """`text` as matplotlib draws it literally: dollar signs escaped (two of them would start mathtext)."""
    return str(text).replace("$", r"\$")


def _show_image(axes, image):
    if image.shape[-1] == 1:
        axes.imshow(image.squeeze(-1), cmap="gray_r", vmin=0, vmax=1)
    else:
        axes.imshow(image)


def image_grid(images, titles, title_colors, suptitle, columns=8):
    rows = max(1, int(np.ceil(len(images) / columns)))
    figure, axes_grid = plt.subplots(rows, columns, figsize=(columns * 1.3, rows * 1.55), squeeze=False)
    for axes in axes_grid.flat:
        axes.axis("off")
    for axes, image, title, color in zip(axes_grid.flat, images, titles, title_colors):
        _show_image(axes, image)
        axes.set_title(plain(title), fontsize=7, color=color)
    figure.suptitle(plain(suptitle))
    figure.tight_layout()
    return figure


def sample_predictions(images, labels, predicted, confidence, class_names, model_name):
    titles = [f"pred {class_names[p]} ({c:.0%})\ntrue {class_names[t]}"
              for t, p, c in zip(labels, predicted, confidence)]
    colors = ["black" if t == p else "red" for t, p in zip(labels, predicted)]
    return image_grid(images, titles, colors, f"{model_name}: predictions on the first test images")


def misclassified(images, labels, predicted, confidence, class_names, model_name, total_errors):
    titles = [f"true {class_names[t]}\npred {class_names[p]} ({c:.0%})"
              for t, p, c in zip(labels, predicted, confidence)]
    shown = len(images)
    return image_grid(images, titles, ["red"] * shown,
                      f"{model_name}: {shown} of {total_errors} misclassified test images, most confident first")


def accuracy_comparison(accuracies: dict):
    figure, axes = plt.subplots(figsize=(5, 3.5))
    names, values = list(accuracies), [100 * v for v in accuracies.values()]
    bars = axes.bar(names, values, color=["#8da0cb", "#66c2a5"][: len(names)])
    axes.bar_label(bars, labels=[f"{v:.2f} %" for v in values])
    axes.set_ylim(min(values) - 1, 100)
    axes.set_ylabel("test accuracy (%)")
    axes.set_title("Test accuracy")
    figure.tight_layout()
    return figure


def filters(kernel, model_name, columns=8):
    """One square per filter of a first convolution, kernel (height, width, input channels, filters). Each is
    scaled on its own: blue negative, red positive weights for one input channel; colour for three."""
    count = kernel.shape[-1]
    rows = int(np.ceil(count / columns))
    figure, axes_grid = plt.subplots(rows, columns, figsize=(columns * 1.1, rows * 1.25), squeeze=False)
    for axes in axes_grid.flat:
        axes.axis("off")
    for index, axes in zip(range(count), axes_grid.flat):
        weights = kernel[..., index]
        if weights.shape[-1] == 1:
            limit = np.abs(weights).max() or 1.0
            axes.imshow(weights.squeeze(-1), cmap="RdBu_r", vmin=-limit, vmax=limit)
        else:
            low, high = weights.min(), weights.max()
            axes.imshow((weights - low) / ((high - low) or 1.0))
        axes.set_title(f"filter {index}", fontsize=7)
    figure.suptitle(f"{model_name}: first-layer filters ({kernel.shape[0]}x{kernel.shape[1]})")
    figure.tight_layout()
    return figure


def activations(images, labels, maps, channels, class_names, title):
    """One row per image: the image, then the activation map of each channel in `channels`, each map scaled to its
    own maximum over the rows (so rows compare, channels need not)."""
    columns = 1 + len(channels)
    figure, axes_grid = plt.subplots(len(images), columns, figsize=(columns * 1.05, len(images) * 1.1),
                                     squeeze=False)
    for axes in axes_grid.flat:
        axes.set_xticks([])
        axes.set_yticks([])
    for row, (image, label) in enumerate(zip(images, labels)):
        _show_image(axes_grid[row, 0], image)
        axes_grid[row, 0].set_ylabel(plain(class_names[label]), fontsize=8, rotation=0, ha="right", va="center")
        for column, channel in enumerate(channels, start=1):
            axes_grid[row, column].imshow(maps[row, ..., channel], cmap="viridis", vmin=0,
                                          vmax=maps[..., channel].max() or 1.0)
            if row == 0:
                axes_grid[row, column].set_title(f"ch {channel}", fontsize=7)
    figure.suptitle(plain(title))
    figure.tight_layout()
    return figure


def reliability(models: dict):
    """One panel per model: accuracy against confidence in each bin of confidence, before and after its temperature,
    beside the diagonal a calibrated model follows. `models` maps a name to {"before": rows, "after": rows, "ece":
    (before, after), "temperature": T}, rows as calibration.reliability gives them."""
    figure, axes_row = plt.subplots(1, len(models), figsize=(5 * len(models), 4.2), squeeze=False)
    for axes, (name, found) in zip(axes_row[0], models.items()):
        axes.plot([0, 1], [0, 1], color="grey", linestyle=":", label="calibrated")
        for key, style in (("before", "o--"), ("after", "s-")):
            rows = [row for row in found[key] if row[1]]
            label = (f"{'as trained' if key == 'before' else 'temperature ' + format(found['temperature'], '.3f')}: "
                     f"ECE {100 * found['ece'][0 if key == 'before' else 1]:.2f} %")
            axes.plot([row[2] for row in rows], [row[3] for row in rows], style, label=label)
        axes.set_xlabel("confidence (the top class's probability)")
        axes.set_ylabel("accuracy")
        axes.set_xlim(0, 1)
        axes.set_ylim(0, 1.01)
        axes.set_title(plain(f"{name}: reliability on the test set"))
        axes.legend(loc="upper left", fontsize=8)
        axes.grid(alpha=0.3)
    figure.tight_layout()
    return figure


def save(figure, path):
    """PNG with no software or date stamp in its metadata."""
    outputs.write_atomically(path, lambda temp: figure.savefig(temp, format="png", dpi=100,
                                                               metadata={"Software": None}))
