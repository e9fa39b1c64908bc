"""Image files (PNG, JPEG, GIF, BMP, TIFF or WebP; any size, grey or colour, 8 or 16 bits) turned into the kind of
image a model was trained on, the way MNIST's digits were made: greyscale, light ink on black, the ink cropped,
scaled into a 20x20 box keeping its aspect ratio and placed in 28x28 with its centre of mass at pixel (14, 14)
(Fashion-MNIST: a 28x28 box). An image with nothing to classify is refused rather than turned into an input that a
model would still answer with confidence: one with no ink (blank, uniform, fully transparent), one whose only marks are
specks of dust, and one whose marks vanish once scaled to the model's input. For a folder of your own images, whose
photos are resized rather than cropped, a uniform image (blank, black, one colour) is refused the same way."""

import io

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from . import guarded
from .errors import PipelineError

MAX_PIXELS = 40_000_000  # checked from the header, before any pixel is decoded
INK_LEVEL = 0.2  # of the brightest ink: fainter pixels are background when the ink is cropped
MIN_INK = 20  # grey levels (of 255) the ink must stand out from the paper by; less is no ink at all
# A connected mark smaller than this part of the image is dust, not drawing: on a 2000x1500 scan, under 300 pixels
# (a digit written with a pen covers thousands); on a 28x28 digit, nothing.
DUST_FRACTION = 1e-4
MIN_PREPARED_INK = 0.2  # the prepared input's brightest pixel: below it, what was drawn vanished in the scaling
# Pillow opens dozens of formats, some through little-used decoders: only these are tried.
DECODERS = ("PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP")
DECODER_NAMES = "PNG, JPEG, GIF, BMP, TIFF or WebP"
SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")  # Pillow's modes for 16-bit grey (and 32-bit int)


class PhotoError(PipelineError):
    pass


class NoInkError(PhotoError):
    pass


def read_grey(path, max_pixels=MAX_PIXELS) -> np.ndarray:
    """The image at `path` as float32 grey levels 0-255 (height, width), upright as its EXIF orientation says.
    Transparent pixels count as white paper; 16-bit levels are scaled to 0-255, not clipped."""
    try:
        content = guarded.read_bytes(path, guarded.IMAGE_BYTES)
    except guarded.UnsafeFile as error:
        raise PhotoError(str(error)) from None
    if not content:
        raise PhotoError(f"{path}: is empty")
    return decode(io.BytesIO(content), path, grey_levels, max_pixels)


def decode(source, name, convert, max_pixels=MAX_PIXELS):
    """`convert(image)` of the image in `source` (a path or a binary file), upright as its EXIF orientation says.
    Whatever goes wrong is a PhotoError naming `name`; more than `max_pixels` is refused before decoding."""
    try:
        with Image.open(source, formats=DECODERS) as image:
            if image.width * image.height > max_pixels:
                raise PhotoError(f"{name}: {image.width}x{image.height} pixels is more than the limit of "
                                 f"{max_pixels}")
            image.load()
            image = ImageOps.exif_transpose(image)  # a phone photo's pixels are stored sideways, with a tag saying so
            return convert(image)
    except PhotoError:
        raise
    except UnidentifiedImageError:
        raise PhotoError(f"{name}: not a {DECODER_NAMES} image") from None
    except Image.DecompressionBombError:  # Pillow's own check, made while it opens the file
        raise PhotoError(f"{name}: more than the limit of pixels Pillow opens ({2 * Image.MAX_IMAGE_PIXELS})") from None
    except Exception as error:  # cut or corrupt data: each decoder fails in its own way (OSError, SyntaxError, ...)
        raise PhotoError(f"{name}: cannot decode the image ({type(error).__name__}: {error})") from None


def grey_levels(image) -> np.ndarray:
    """float32 grey levels 0-255 of any Pillow image: transparency over white paper, 16-bit levels scaled."""
    if image.mode in SIXTEEN_BIT_MODES:  # Pillow's own conversion to L clips 16-bit levels at 255
        return np.asarray(image, dtype=np.float32) * np.float32(255 / 65535)
    if image.mode == "F":
        levels = np.nan_to_num(np.asarray(image, dtype=np.float32))
        return np.clip(levels * 255 if levels.max(initial=0) <= 1 else levels, 0, 255)
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        paper = Image.new("RGBA", image.size, "white")
        image = Image.alpha_composite(paper, image.convert("RGBA"))
    return np.asarray(image.convert("L"), dtype=np.float32)


def to_pixels(image, image_shape) -> np.ndarray:
    """An opened Pillow image as uint8 pixels of `image_shape` (height, width, channels: 1 for grey, 3 for RGB):
    transparency over white, 16-bit levels scaled, palettes and CMYK converted, then resized to height x width
    (bilinear, with Pillow's antialiasing when it shrinks). How a folder dataset's images are made, and so how a
    photo is prepared for a model trained on one."""
    height, width, channels = image_shape
    if channels == 1 or image.mode in SIXTEEN_BIT_MODES or image.mode == "F":
        grey = Image.fromarray(np.clip(np.rint(grey_levels(image)), 0, 255).astype(np.uint8), "L")
        image = grey if channels == 1 else grey.convert("RGB")
    elif image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        paper = Image.new("RGBA", image.size, "white")
        image = Image.alpha_composite(paper, image.convert("RGBA")).convert("RGB")
    else:
        image = image.convert("RGB")
    if image.size != (width, height):
        image = image.resize((width, height), Image.Resampling.BILINEAR)
    return np.asarray(image, dtype=np.uint8).reshape(height, width, channels)


def prepare(grey: np.ndarray, image_side: int, box: int) -> np.ndarray:
    """A (image_side, image_side, 1) float32 image in [0, 1] from grey levels: see the module's description. Raises
    NoInkError when there is nothing to classify: no ink, only dust, or marks that vanish at the input's size."""
    border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    ink = 255.0 - grey if np.median(border) > 127.5 else grey.copy()  # dark ink on light paper: invert
    ink -= np.median(np.concatenate([ink[0], ink[-1], ink[:, 0], ink[:, -1]]))
    ink = np.clip(ink, 0, None)
    if ink.max() < MIN_INK:
        raise NoInkError(f"no ink found: nothing stands out from the paper by {MIN_INK} of 255 grey levels "
                         "(a blank, uniform or fully transparent image)")
    rows, columns = np.nonzero(_without_dust(ink > INK_LEVEL * ink.max()))
    ink = ink[rows.min():rows.max() + 1, columns.min():columns.max() + 1]
    ink *= 255.0 / ink.max()

    height, width = ink.shape
    scale = box / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    scaled = np.asarray(Image.fromarray(np.ascontiguousarray(ink)).resize(size, Image.Resampling.LANCZOS),
                        dtype=np.float32)
    scaled = np.clip(scaled, 0, 255)

    # Centre of mass to pixel (14, 14) of 28x28, as far as the image's edges allow. MNIST's own digits sit there
    # (not at the geometric centre, 13.5): with it, this recipe reproduces them nearly exactly.
    total = scaled.sum()
    centre_row = (scaled.sum(axis=1) @ np.arange(scaled.shape[0])) / total
    centre_column = (scaled.sum(axis=0) @ np.arange(scaled.shape[1])) / total
    top = int(np.clip(round(image_side / 2 - centre_row), 0, image_side - scaled.shape[0]))
    left = int(np.clip(round(image_side / 2 - centre_column), 0, image_side - scaled.shape[1]))
    canvas = np.zeros((image_side, image_side), np.float32)
    canvas[top:top + scaled.shape[0], left:left + scaled.shape[1]] = scaled
    if canvas.max() < MIN_PREPARED_INK * 255:
        raise NoInkError(f"no ink found: the marks are too thin or too faint to survive scaling to {image_side}x"
                         f"{image_side} (brightest prepared pixel {canvas.max() / 255:.3f})")
    return (canvas / 255.0)[..., np.newaxis]


def _without_dust(marked: np.ndarray) -> np.ndarray:
    """`marked` with every connected mark (8 neighbours) smaller than DUST_FRACTION of the image cleared; NoInkError
    when nothing is left."""
    from scipy import ndimage

    labels, count = ndimage.label(marked, structure=np.ones((3, 3)))
    sizes = np.bincount(labels.ravel())[1:]
    kept = np.flatnonzero(sizes >= DUST_FRACTION * marked.size) + 1
    if not len(kept):
        raise NoInkError(f"no ink found: only {count} speck(s) of dust, the largest {sizes.max()} pixel(s) of "
                         f"{marked.size} (a blank page)")
    return np.isin(labels, kept)


def check_content(pixels: np.ndarray, name="the image"):
    """Refuse a uint8 image (a folder model's input) that is one flat level: nothing in it to classify."""
    if int(np.ptp(pixels.reshape(-1, pixels.shape[-1]), axis=0).max()) < MIN_INK:
        raise NoInkError(f"nothing to classify: {name} is uniform (no two pixels differ by {MIN_INK} of 255 "
                         "levels): a blank, black or single-colour image")
    return pixels
