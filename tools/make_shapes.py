"""A folder of generated RGB images, for trying the folder route without images of your own: circles, squares and
triangles of random colour, size and place on a noisy background, one class folder each, as PNG. The example
folder params data.images.folder names by default (examples/shapes) was made by

    python tools/make_shapes.py examples/shapes --per-class 40 --size 32

and the tests make others the same way. The same arguments give the same bytes."""

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

SHAPES = ("circle", "square", "triangle")


def draw(shape, size, rng) -> Image.Image:
    background = rng.integers(0, 256, 3)
    noise = rng.normal(0, 12, (size, size, 3))
    image = Image.fromarray(np.clip(background + noise, 0, 255).astype(np.uint8))
    colour = tuple(int(c) for c in (background + rng.integers(90, 166, 3)) % 256)
    extent = rng.uniform(0.35, 0.8) * size
    left, top = rng.uniform(0, size - extent, 2)
    box = (left, top, left + extent, top + extent)
    pen = ImageDraw.Draw(image)
    if shape == "circle":
        pen.ellipse(box, fill=colour)
    elif shape == "square":
        pen.rectangle(box, fill=colour)
    else:
        pen.polygon([(left + extent / 2, top), (left, top + extent), (left + extent, top + extent)], fill=colour)
    return image


def make(folder, per_class, size, seed=0, split=False):
    """`per_class` images of each shape under `folder`/<shape>/ (with `split`, a fifth of them under test/)."""
    rng = np.random.default_rng(seed)
    for shape in SHAPES:
        for i in range(per_class):
            where = Path(folder, "test" if i % 5 == 4 else "train") if split else Path(folder)
            path = where / shape / f"{shape}-{i:05d}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            draw(shape, size, rng).save(path, optimize=False)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder")
    parser.add_argument("--per-class", type=int, default=40)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--split", action="store_true", help="put a fifth of each class under test/, the rest train/")
    args = parser.parse_args()
    make(args.folder, args.per_class, args.size, args.seed, args.split)


if __name__ == "__main__":
    main()
