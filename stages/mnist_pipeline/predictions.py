"""Classifying images with a trained model the way the predict command does: each image prepared as the model's
dataset made its own (photos.py), run through the model's runtime (runners.py), and answered with its top classes
by name. One bad image is that image's error, never the batch's."""

import numpy as np

from . import datasets, photos, runners
from .errors import PipelineError


class Classifier:
    """A model (a model directory or a .tflite file) with the description of its data, ready for image files."""

    def __init__(self, model_path, threads=None):
        self.runner, self.description = runners.open_runner(model_path, threads)
        self.side, self.box = photo_box(self.description)

    def prepare(self, source, max_pixels=photos.MAX_PIXELS) -> np.ndarray:
        """`source` (a path, or a binary file with a name) as an input of the model; raises photos.PhotoError
        (photos.NoInkError when there is no ink to classify)."""
        return photos.prepare(photos.read_grey(source, max_pixels), self.side, self.box)

    def classify(self, images, top) -> list:
        """The top classes of each prepared image (see top_classes)."""
        if not len(images):
            return []
        return [top_classes(p, self.description.class_names, top) for p in self.runner.predict(np.stack(images))]


def photo_box(description):
    """(image side, ink box side) for photos of the described dataset; refuses a dataset photos cannot be made like."""
    dataset = datasets.DATASETS.get(description.name)
    height, width, channels = description.image_shape
    if dataset is None or dataset.photo_box is None or height != width or channels != 1:
        raise PipelineError(f"the model was trained on {description.title}; predict prepares photos only for the "
                            "greyscale image sets " + ", ".join(d.title for d in datasets.DATASETS.values()
                                                                if d.photo_box))
    return height, dataset.photo_box


def top_classes(probabilities, class_names, top) -> dict:
    """{label, probability, top: [{label, probability}, ...]}: the best class and the `top` best, by name."""
    best = np.argsort(-probabilities, kind="stable")[:top]
    return {"label": class_names[best[0]], "probability": round(float(probabilities[best[0]]), 4),
            "top": [{"label": class_names[i], "probability": round(float(probabilities[i]), 4)} for i in best]}
