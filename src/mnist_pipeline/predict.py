"""predict: the class of each image file (PNG, JPEG, GIF, BMP, TIFF or WebP; any size, grey or colour, 8 or 16 bits,
dark ink on light paper or light on dark) by a trained model: a model directory such as models/tuned (Keras), or a
.tflite file from export (float32 or int8, run by LiteRT). Photos are prepared as the dataset's own images were made
(see photos.py). Not a pipeline stage: the `mnist-predict` command, for using what the pipeline trained; the server
(serve.py) answers with the same Classifier.

A file that cannot be read gets one error line, an image with no ink is reported as such, and the other files are
still predicted; the exit status is then 1. File names print with control characters and undecodable bytes
escaped."""

import argparse
import io
import json
import os
import sys
from pathlib import Path

import numpy as np

from . import calibration, cli, datasets, guarded, inference, inputs, photos, release
from .errors import PipelineError


class Classifier:
    """A model (a model directory or a .tflite file) with the description of its data and its card (calibration,
    measured accuracy), ready for image files. Its probabilities have the model's temperature applied: fitted on the
    validation split, it makes a confidence of 90 % mean being right about 90 % of the time, and never changes which
    class is likeliest."""

    def __init__(self, model_path, threads=None):
        self.model_path = Path(model_path)
        self.runner, self.description = inference.open_runner(model_path, threads)
        self.card = self.runner.card
        self.convert = photo_recipe(self.description)
        dataset = datasets.DATASETS.get(self.description.name)
        # A canvas to draw on where the data is grey strokes: digits, or a grey folder of your own (sketches).
        self.takes_drawings = self.description.image_shape[2] == 1 and (
            dataset.drawn if dataset else self.description.name == datasets.FOLDER)

    def prepare(self, path, max_pixels=photos.MAX_PIXELS) -> np.ndarray:
        """The image file at `path` as an input of the model; raises photos.PhotoError (photos.NoInkError when there
        is nothing in it to classify)."""
        content = guarded.read_bytes(path, guarded.IMAGE_BYTES)
        if not content:
            raise photos.PhotoError(f"{path}: is empty")
        return photos.decode(io.BytesIO(content), path, self.convert, max_pixels)

    def prepare_upload(self, file, name, max_pixels=photos.MAX_PIXELS) -> np.ndarray:
        """As prepare, for an image that arrives as a binary file (the server's uploads), `name` naming it."""
        return photos.decode(file, name, self.convert, max_pixels)

    def probabilities(self, images) -> np.ndarray:
        """Calibrated class probabilities of a batch of prepared images."""
        return calibration.calibrated(self.runner.predict(np.asarray(images, dtype=np.float32)),
                                      self.card.temperature)

    def classify(self, images, top) -> list:
        """The top classes of each prepared image (see top_classes)."""
        if not len(images):
            return []
        return [top_classes(p, self.description.class_names, top) for p in self.probabilities(np.stack(images))]

    def model_card(self) -> dict:
        """What a person is told of the model: the data it was trained on, its format and size, its accuracy as
        measured when it was saved or exported, and its calibration."""
        path = self.model_path
        size = sum(f.stat().st_size for f in path.iterdir() if f.is_file()) if path.is_dir() else path.stat().st_size
        kind = ("a Keras model directory" if path.is_dir() else
                f"TFLite {'int8' if getattr(self.runner, 'input', {}).get('dtype') == np.int8 else 'float32'}")
        accuracy = self.card.accuracy
        return {"dataset": f"{self.description.title} ({'x'.join(map(str, self.description.image_shape))}, "
                           f"{self.description.num_classes} classes)",
                "format": f"{kind}: {path.name}", "size": f"{size / 1e6:.2f} MB",
                "accuracy": f"{accuracy[1]:.2%} on the {accuracy[0]} split" if accuracy else "",
                "calibration": f"temperature {self.card.temperature:.3f}, fitted on the validation split"
                if self.card.temperature != 1.0 else "not calibrated (temperature 1)"}


def photo_recipe(description):
    """How a photo becomes an input of a model trained on the described data, as a function of the decoded image:
    MNIST's way for the digit and clothes sets (the ink cropped and centred), or for a folder of your own images the
    way prepare made them (resized; floats in [0, 1]). Refuses a dataset photos cannot be made like."""
    if description.name == datasets.FOLDER:
        return lambda image: inputs.scaled(photos.check_content(photos.to_pixels(image, description.image_shape)))
    dataset = datasets.DATASETS.get(description.name)
    height, width, channels = description.image_shape
    if dataset is None or dataset.photo_box is None or height != width or channels != 1:
        raise PipelineError(f"the model was trained on {description.title}; predict prepares photos only for "
                            + ", ".join(d.title for d in datasets.DATASETS.values() if d.photo_box)
                            + " and folders of your own images")
    return lambda image: photos.prepare(photos.grey_levels(image), height, dataset.photo_box)


def top_classes(probabilities, class_names, top) -> dict:
    """{label, probability, top: [{label, probability}, ...]}: the best class and the `top` best, by name."""
    best = np.argsort(-probabilities, kind="stable")[:top]
    return {"label": class_names[best[0]], "probability": round(float(probabilities[best[0]]), 4),
            "top": [{"label": class_names[i], "probability": round(float(probabilities[i]), 4)} for i in best]}


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"%(prog)s {release.version()}")
    parser.add_argument("images", nargs="+", metavar="IMAGE")
    parser.add_argument("--model", required=True, metavar="PATH",
                        help="models/tuned, models/baseline, models/export/float32.tflite or models/export/int8.tflite")
    parser.add_argument("--json", action="store_true", help="one JSON document on stdout instead of lines of text")
    parser.add_argument("--top", type=int, default=3, metavar="K", help="how many classes to list (default 3)")
    parser.add_argument("--max-pixels", type=int, default=photos.MAX_PIXELS, metavar="N",
                        help=f"refuse larger images before decoding them (default {photos.MAX_PIXELS})")
    args = parser.parse_args()
    if args.top < 1 or args.max_pixels < 1:
        parser.error("--top and --max-pixels must be at least 1")
    return args


def shown(name: str) -> str:
    """A file name as it can be printed anywhere: undecodable bytes as \\xNN, control characters escaped."""
    text = os.fsencode(name).decode("utf-8", "backslashreplace")
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


def main():
    args = parse_args()
    sys.stdout.reconfigure(errors="backslashreplace")  # an answer is never lost to the terminal's encoding
    classifier = Classifier(args.model)
    rows, prepared = [], {}
    for index, file in enumerate(args.images):
        rows.append({"file": shown(file)})
        try:
            prepared[index] = classifier.prepare(file, args.max_pixels)
        except photos.NoInkError as error:
            rows[-1]["no_ink"] = str(error)
        except (photos.PhotoError, guarded.UnsafeFile) as error:
            rows[-1]["error"] = str(error)
        except OSError as error:
            rows[-1]["error"] = f"{file}: {error.strerror or error}"
        if "error" in rows[-1]:
            rows[-1]["error"] = shown(rows[-1]["error"])
            print(f"{cli.program()}: error: {rows[-1]['error']}", file=sys.stderr)
    for index, answer in zip(prepared, classifier.classify(list(prepared.values()), args.top)):
        rows[index].update(answer)
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        for row in rows:
            if "label" in row:
                top = ", ".join(f"{t['label']} {t['probability']:.2%}" for t in row["top"])
                print(f"{row['file']}: {row['label']} ({row['probability']:.2%}); top {len(row['top'])}: {top}")
            elif "no_ink" in row:
                print(f"{row['file']}: not classified: {row['no_ink']}")
    if any("label" not in row for row in rows):
        sys.exit(1)


def command():
    """The mnist-predict entry point."""
    cli.run(main)


if __name__ == "__main__":
    command()
