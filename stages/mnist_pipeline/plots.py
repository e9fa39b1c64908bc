"""The evaluation figures. Each function returns a matplotlib Figure; saving is the caller's business."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


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


def image_grid(images, titles, title_colors, suptitle, columns=8):
    rows = max(1, int(np.ceil(len(images) / columns)))
    figure, axes_grid = plt.subplots(rows, columns, figsize=(columns * 1.3, rows * 1.55), squeeze=False)
    for axes in axes_grid.flat:
        axes.axis("off")
    for axes, image, title, color in zip(axes_grid.flat, images, titles, title_colors):
        if image.shape[-1] == 1:
            axes.imshow(image.squeeze(-1), cmap="gray_r", vmin=0, vmax=1)
        else:
            axes.imshow(image)
        axes.set_title(title, fontsize=7, color=color)
    figure.suptitle(suptitle)
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
