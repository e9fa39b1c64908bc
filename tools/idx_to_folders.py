"""A dataset's raw files written out as a folder of images, the layout the folder route reads: one PNG per image
under train/<class>/ and test/<class>/. Class folders are named `<label>-<class name>` (with "/" as "-"), so that
their sorted order is the labels' order, and files `<index>.png` by their place in the raw files, so that each
class keeps its order: the folder route then splits off the same validation images as the raw route. Usage
(repository root, environment active), for the parity check of docs/datasets.md:

    python tools/idx_to_folders.py fashion_mnist data/transfer/raw data/fashion-png
"""

import argparse
from pathlib import Path

from PIL import Image

from mnist_pipeline import datasets


def write(dataset, raw, folder):
    for split in ("train", "test"):
        images, labels = dataset.read_split(raw, split)
        for label, name in enumerate(dataset.class_names):
            Path(folder, split, f"{label}-{name.replace('/', '-')}").mkdir(parents=True, exist_ok=False)
        for index, (image, label) in enumerate(zip(images, labels)):
            name = dataset.class_names[label].replace("/", "-")
            Image.fromarray(image.squeeze(-1) if image.shape[-1] == 1 else image).save(
                Path(folder, split, f"{label}-{name}", f"{index:05d}.png"))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset", choices=list(datasets.DATASETS))
    parser.add_argument("raw", help="the dataset's raw files, as download writes them")
    parser.add_argument("folder", help="a new folder")
    args = parser.parse_args()
    write(datasets.DATASETS[args.dataset], args.raw, args.folder)


if __name__ == "__main__":
    main()
