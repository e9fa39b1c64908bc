"""Reading and writing the IDX format of the original MNIST files (big-endian uint32 header, then uint8 data)."""

import math
import struct

import numpy as np

from .errors import PipelineError

IMAGES_MAGIC = 2051  # 0x00000803: unsigned bytes, 3 dimensions (count, rows, columns)
LABELS_MAGIC = 2049  # 0x00000801: unsigned bytes, 1 dimension (count)


class IdxFormatError(PipelineError, ValueError):
    """A file that is not a well-formed IDX file of the expected kind."""


def _header(data: bytes, name: str, magic: int, dimensions: int):
    size = 4 * (1 + dimensions)
    if len(data) >= 4 and struct.unpack(">I", data[:4])[0] != magic:
        raise IdxFormatError(f"{name}: magic number {struct.unpack('>I', data[:4])[0]}, expected {magic}")
    if len(data) < size:
        raise IdxFormatError(f"{name}: {len(data)} bytes is shorter than the {size}-byte IDX header")
    shape = struct.unpack(f">{dimensions}I", data[4:size])
    expected = size + math.prod(shape)  # Python integers: huge header dimensions cannot overflow
    if len(data) != expected:
        problem = "truncated" if len(data) < expected else "has trailing bytes"
        raise IdxFormatError(
            f"{name}: {problem}: header promises {'x'.join(map(str, shape))} values "
            f"({expected} bytes in all), file has {len(data)} bytes"
        )
    return shape, data[size:]


def parse_images(data: bytes, name: str = "images") -> np.ndarray:
    """uint8 array of shape (count, rows, columns)."""
    shape, body = _header(data, name, IMAGES_MAGIC, 3)
    return np.frombuffer(body, dtype=np.uint8).reshape(shape)


def parse_labels(data: bytes, name: str = "labels") -> np.ndarray:
    """uint8 array of shape (count,)."""
    shape, body = _header(data, name, LABELS_MAGIC, 1)
    return np.frombuffer(body, dtype=np.uint8).reshape(shape)


def encode_images(images: np.ndarray) -> bytes:
    return struct.pack(">4I", IMAGES_MAGIC, *images.shape) + images.astype(np.uint8).tobytes()


def encode_labels(labels: np.ndarray) -> bytes:
    return struct.pack(">2I", LABELS_MAGIC, len(labels)) + labels.astype(np.uint8).tobytes()
