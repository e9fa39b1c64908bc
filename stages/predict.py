"""predict: the class of each image file (PNG, JPEG, ...; any size, grey or colour, dark ink on light paper or light
on dark) by a trained model: a model directory such as models/tuned (Keras), or a .tflite file from export (float32
or int8, run by LiteRT). Photos are prepared as the dataset's own images were made (see mnist_pipeline/photos.py).
Not a pipeline stage: a command for using what the pipeline trained. A file that cannot be read gets one error
line and the others are still predicted; the exit status is then 1."""

import argparse
import json
import sys

import numpy as np

from mnist_pipeline import cli, datasets, photos
from mnist_pipeline.errors import PipelineError


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
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


def photo_box(description):
    dataset = datasets.DATASETS.get(description.name)
    height, width, channels = description.image_shape
    if dataset is None or dataset.photo_box is None or height != width or channels != 1:
        raise PipelineError(f"the model was trained on {description.title}; predict prepares photos only for the "
                            "greyscale image sets " + ", ".join(d.title for d in datasets.DATASETS.values()
                                                                if d.photo_box))
    return height, dataset.photo_box


def result(file, probabilities, class_names, top):
    best = np.argsort(-probabilities, kind="stable")[:top]
    return {"file": file, "label": class_names[best[0]], "probability": round(float(probabilities[best[0]]), 4),
            "top": [{"label": class_names[i], "probability": round(float(probabilities[i]), 4)} for i in best]}


def main():
    args = parse_args()
    from mnist_pipeline import runners

    description = runners.description_for(args.model)
    side, box = photo_box(description)
    runner = runners.open_runner(args.model, threads=None)
    prepared, errors = {}, {}
    for file in args.images:
        try:
            prepared[file] = photos.prepare(photos.read_grey(file, args.max_pixels), side, box)
        except (photos.PhotoError, OSError) as error:
            errors[file] = str(error) if isinstance(error, photos.PhotoError) else f"{file}: {error.strerror or error}"
            print(f"predict: error: {errors[file]}", file=sys.stderr)
    probabilities = runner.predict(np.stack(list(prepared.values()))) if prepared else []
    results = {file: result(file, p, description.class_names, args.top) for file, p in zip(prepared, probabilities)}
    ordered = [results.get(file) or {"file": file, "error": errors[file]} for file in args.images]
    if args.json:
        print(json.dumps(ordered, indent=2))
    else:
        for row in ordered:
            if "label" in row:
                top = ", ".join(f"{t['label']} {t['probability']:.2%}" for t in row["top"])
                print(f"{row['file']}: {row['label']} ({row['probability']:.2%}); top {len(row['top'])}: {top}")
    if errors:
        sys.exit(1)


if __name__ == "__main__":
    cli.run(main)
