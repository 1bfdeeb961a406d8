"""The one way blockbuilder reads an image: decode, check its size, convert, resize, scale.

Training folders, ``predict``, ``features``, ``explore`` and ``embed`` all call :func:`read_image`, so a
model always sees its inputs prepared the same way. The pixel count is checked from the header before
any pixel is decoded, so a decompression bomb (a small file that claims 60000×60000 pixels) is refused
at once, with the file named.
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

#: Most pixels an image may have before it is decoded (64 megapixels: 8192×8192).
MAX_PIXELS = 8192 * 8192
#: Most bytes an image file may have.
MAX_IMAGE_BYTES = 64 * 1024 * 1024

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

    A transparent image is laid on black first (light strokes on black, as the digits are).

    Args:
        source: A path, or the bytes of an image.
        preprocessing: Size, channels and scaling.
        name: How to call the image in errors (default: the path, or ``image``).
        max_pixels: Refuse images with more pixels than this, before decoding them.

    Raises:
        ImageError: the file is missing, empty, too large, or not an image Pillow can read.
    """
    from PIL import Image

    label = name or (str(source) if not isinstance(source, bytes) else "image")
    with _opened(source, label, max_pixels) as image:
        with _decoding(label):
            image = _on_black(image).convert("L" if preprocessing.channels == 1 else "RGB")
            size = (preprocessing.width or image.width, preprocessing.height or image.height)
            if image.size != size:
                image = image.resize(size, Image.Resampling.BILINEAR)
            pixels = np.asarray(image, dtype=np.float32)
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    scaled = pixels * np.float32(preprocessing.scale) + np.float32(preprocessing.offset)
    prepared: np.ndarray = np.clip(scaled, preprocessing.low, preprocessing.high).astype(np.float32)
    return prepared


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
            path = Path(data)
            try:
                size = path.stat().st_size
            except OSError as exc:
                raise ImageError(f"{self.label}: cannot read image ({exc.strerror or exc})") from None
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


def _on_black(image: Any) -> Any:
    """A transparent image laid on black; other images as they are."""
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        from PIL import Image

        rgba = image.convert("RGBA")
        return Image.alpha_composite(Image.new("RGBA", rgba.size, (0, 0, 0, 255)), rgba)
    return image


def _claimed_pixels(exc: BaseException) -> int | None:
    """The pixel count in Pillow's ``DecompressionBombError`` message ("Image size (N pixels) exceeds ...")."""
    found = re.search(r"\((\d+) pixels\)", str(exc))
    return int(found.group(1)) if found else None


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0][:200] if lines else type(exc).__name__
