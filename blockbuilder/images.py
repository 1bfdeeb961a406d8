"""The one way blockbuilder reads an image: decode, check its size, normalise, convert, resize, scale.

Training (both input pipelines), ``predict``, ``features``, ``explore`` and ``embed`` all call
:func:`read_image`, so a model is served its inputs exactly as it was trained on them. The pixel count
is checked from the header before any pixel is decoded, so a decompression bomb (a small file that
claims 60000×60000 pixels) is refused at once, with the file named.

One normalisation (:func:`decode`): every image becomes float32 in [0, 1] at its own size, by its
bit depth (8-bit values / 255, 16-bit / 65535, floating-point values as they are, or / 255 when above
1, as training reads float arrays), alpha dropped (as ``tf.image`` and Keras do), palette, 1-bit and
CMYK images as RGB or grey. Then, as training converts arrays: grey <-> RGB (ITU-R 601 luma, the weights
of ``tf.image.rgb_to_grayscale``), and a bilinear, antialiased resize in float32 (the same values as
``tf.image.resize(..., antialias=True)``).
"""

from __future__ import annotations

import io
import logging
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from blockbuilder.errors import ImageError
from blockbuilder.files import not_regular

#: Most pixels an image may have before it is decoded (64 megapixels: 8192×8192).
MAX_PIXELS = 8192 * 8192
#: Most bytes an image file may have.
MAX_IMAGE_BYTES = 64 * 1024 * 1024
#: RGB to grey: ITU-R 601 luma with the weights of ``tf.image.rgb_to_grayscale`` (training's arrays use them).
GREY = np.array([0.2989, 0.5870, 0.1140], np.float32)
#: Pillow modes whose values are kept as decoded (deeper than 8 bits), and their largest value.
_DEEP_MODES = {"I": 65535.0, "I;16": 65535.0, "I;16L": 65535.0, "I;16B": 65535.0, "I;16N": 65535.0, "F": 1.0}
#: Pillow modes read as grey; every other one is read as RGB.
_GREY_MODES = ("1", "L", "LA", "La", *_DEEP_MODES)

# Pillow logs some damaged files as errors ("More samples per pixel than can be decoded"); the ImageError
# says it in one line, so nothing should reach stderr through logging's last-resort handler.
logging.getLogger("PIL").addHandler(logging.NullHandler())


@dataclass(frozen=True)
class Preprocessing:
    """How raw pixels become the model's input: ``clip(pixels * scale + offset, low, high)``.

    Attributes:
        height, width: The size images are resized to (``None`` keeps the image's own size).
        channels: 1 (grey) or 3 (RGB).
        scale, offset: Applied to 0-255 pixel values (the default gives [0, 1]).
        low, high: The range values are clipped to.
    """

    height: int | None = None
    width: int | None = None
    channels: int = 3
    scale: float = 1 / 255
    offset: float = 0.0
    low: float = 0.0
    high: float = 1.0

    @classmethod
    def for_input(cls, input_shape: tuple[int | None, ...]) -> Preprocessing:
        """The default preprocessing of a model whose input is ``(..., height, width, channels)``."""
        height, width, channels = input_shape[-3:]
        return cls(height=height, width=width, channels=int(channels or 3))

    @classmethod
    def from_metadata(cls, entry: dict[str, Any]) -> Preprocessing:
        """From the ``preprocessing`` entry of an export's metadata."""
        low, high = entry.get("range", [0.0, 1.0])
        return cls(height=entry.get("height"), width=entry.get("width"), channels=int(entry.get("channels") or 3),
                   scale=float(entry.get("scale", 1 / 255)), offset=float(entry.get("offset", 0.0)),
                   low=float(low), high=float(high))


def read_image(source: str | Path | bytes, preprocessing: Preprocessing, *, name: str | None = None,
               max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """An image file (or its bytes) as a ``(height, width, channels)`` float32 model input.

    :func:`decode`, then :func:`to_channels`, :func:`resize` and ``preprocessing``'s scale (which is
    applied to 0-255 values, ``pixels * 255 * scale + offset``, then clipped).

    Args:
        source: A path, or the bytes of an image.
        preprocessing: Size, channels and scaling.
        name: How to call the image in errors (default: the path, or ``image``).
        max_pixels: Refuse images with more pixels than this, before decoding them.

    Raises:
        ImageError: the file is missing, empty, too large, or not an image Pillow can read.
    """
    pixels = decode(source, name=name, max_pixels=max_pixels)
    pixels = resize(to_channels(pixels, preprocessing.channels), preprocessing.height, preprocessing.width)
    if (preprocessing.scale, preprocessing.offset) != (1 / 255, 0.0):
        pixels = pixels * np.float32(255 * preprocessing.scale) + np.float32(preprocessing.offset)
    prepared: np.ndarray = np.clip(pixels, preprocessing.low, preprocessing.high).astype(np.float32)
    return prepared


def decode(source: str | Path | bytes, *, name: str | None = None, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """An image at its own size as float32 ``(height, width, 1 or 3)`` in [0, 1]: the one normalisation.

    Grey images (1-bit, 8-bit, 16-bit, 32-bit integer, floating point) keep one channel, every other
    mode (RGB, palette, CMYK ...) becomes RGB. Integers are divided by their depth's largest value:
    255, or 65535 for 16-bit and 32-bit ones (Pillow's modes ``I;16`` and ``I``). Floating-point pixels
    are taken as they are, or as 0-255 values when any is above 1 (as training reads float arrays).
    Then everything is clipped to [0, 1], NaN read as 0. Alpha is dropped, as ``tf.image.decode_image``
    and Keras drop it (a transparent pixel keeps its colour). An animation gives its first frame; EXIF
    orientation is not applied.

    Raises:
        ImageError: as :func:`read_image`.
    """
    label = name or (str(source) if not isinstance(source, bytes) else "image")
    with _opened(source, label, max_pixels) as image:
        with _decoding(label):
            mode = image.mode
            if mode not in _DEEP_MODES:
                image = image.convert("L" if mode in _GREY_MODES else "RGB")
            pixels = np.asarray(image).astype(np.float32)
    divisor = _DEEP_MODES.get(mode, 255.0)
    if mode == "F":
        pixels = np.nan_to_num(pixels, nan=0.0, posinf=1.0, neginf=0.0)
        divisor = 255.0 if pixels.size and float(pixels.max()) > 1.0 else 1.0
    if divisor != 1.0:
        pixels /= np.float32(divisor)
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    unit: np.ndarray = np.clip(pixels, 0.0, 1.0)
    return unit


def to_channels(pixels: np.ndarray, channels: int) -> np.ndarray:
    """``(..., height, width, 1 or 3)`` float images with ``channels`` (1 or 3): grey repeated, or RGB's luma."""
    if pixels.shape[-1] == channels:
        return pixels
    if channels == 3:
        return np.repeat(pixels, 3, axis=-1)
    grey: np.ndarray = (pixels[..., :3] @ GREY)[..., None]
    return grey


def resize(pixels: np.ndarray, height: int | None, width: int | None) -> np.ndarray:
    """A ``(height, width, channels)`` float32 image resized bilinearly, antialiased when it shrinks.

    Each channel is resized by Pillow in float32; the values are those of ``tf.image.resize(pixels,
    (height, width), antialias=True)`` (within 1e-5). ``None`` keeps that side's size.
    """
    from PIL import Image

    size = (width or pixels.shape[1], height or pixels.shape[0])
    if (pixels.shape[1], pixels.shape[0]) == size:
        return pixels
    planes = [np.asarray(Image.fromarray(np.ascontiguousarray(pixels[..., c], np.float32))
                         .resize(size, Image.Resampling.BILINEAR)) for c in range(pixels.shape[-1])]
    return np.stack(planes, axis=-1).astype(np.float32)


def check_image(path: str | Path, max_pixels: int = MAX_PIXELS, *, decode: bool = True) -> tuple[int, int]:
    """Check that ``path`` is a readable image of at most ``max_pixels``; return ``(width, height)``.

    With ``decode`` (the default) the whole image is decoded, so a truncated file fails here and not in
    the middle of training; without it only the header is read (what a command checks before it starts).

    Raises:
        ImageError: naming the file.
    """
    with _opened(path, str(path), max_pixels) as image:
        if decode:
            with _decoding(str(path)):
                image.load()
        return int(image.width), int(image.height)


@contextmanager
def _quiet_pillow() -> Iterator[None]:
    """Pillow warns about damaged files ("Truncated File Read") and large ones; the errors say what matters."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


@contextmanager
def _decoding(label: str) -> Iterator[None]:
    """Turn whatever Pillow raises while decoding into an ``ImageError`` naming the image."""
    try:
        with _quiet_pillow():
            yield
    except ImageError:
        raise
    except Exception as exc:  # Pillow's decoders raise many types (OSError, SyntaxError, struct.error ...)
        raise ImageError(f"{label}: cannot read image ({_first_line(exc)})") from None


class _opened:
    """``with _opened(source, label, max_pixels) as image``: a Pillow image whose size was checked."""

    def __init__(self, source: str | Path | bytes, label: str, max_pixels: int) -> None:
        self.source, self.label, self.max_pixels = source, label, max_pixels
        self.image: Any = None

    def __enter__(self) -> Any:
        from PIL import Image, UnidentifiedImageError

        data: Any = self.source
        if isinstance(data, bytes):
            if not data:
                raise ImageError(f"{self.label}: empty image")
            data = io.BytesIO(data)
        else:
            why = not_regular(data)  # a FIFO would block Pillow's open for ever
            if why is not None:
                raise ImageError(f"{self.label}: cannot read image ({why})")
            size = Path(data).stat().st_size
            if size > MAX_IMAGE_BYTES:
                raise ImageError(f"{self.label}: image file too large ({size:,} bytes, at most "
                                 f"{MAX_IMAGE_BYTES:,})")
        try:
            with _quiet_pillow():
                self.image = Image.open(data)
        except Image.DecompressionBombError as exc:  # more pixels than even Pillow's own limit
            raise ImageError(self._too_large(_claimed_pixels(exc))) from None
        except UnidentifiedImageError:
            raise ImageError(f"{self.label}: cannot read image (unknown image format)") from None
        except Exception as exc:  # a damaged header: OSError, SyntaxError, struct.error ...
            raise ImageError(f"{self.label}: cannot read image ({_first_line(exc)})") from None
        width, height = self.image.size
        if width * height > self.max_pixels:
            self.image.close()
            raise ImageError(self._too_large(width * height))
        return self.image

    def _too_large(self, pixels: int | None) -> str:
        count = f"{pixels:,} pixels" if pixels is not None else "too many pixels"
        return f"{self.label}: image too large ({count}, at most {self.max_pixels:,})"

    def __exit__(self, *exc: object) -> None:
        if self.image is not None:
            self.image.close()


def _claimed_pixels(exc: BaseException) -> int | None:
    """The pixel count in Pillow's ``DecompressionBombError`` message ("Image size (N pixels) exceeds ...")."""
    found = re.search(r"\((\d+) pixels\)", str(exc))
    return int(found.group(1)) if found else None


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0][:200] if lines else type(exc).__name__
