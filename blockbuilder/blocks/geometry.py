"""Sliding-window arithmetic shared by the blocks that move a window over an image (no Keras)."""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal, Union

from pydantic import Field as Bounded

from blockbuilder.blocks.registry import Field, Shape, Site

PositiveInt = Annotated[int, Bounded(gt=0)]
NonNegativeInt = Annotated[int, Bounded(ge=0)]
Size = Union[PositiveInt, tuple[PositiveInt, PositiveInt]]
PadPair = tuple[NonNegativeInt, NonNegativeInt]
#: ``same``, ``valid``, or explicit zeros: ``1``, ``[h, w]`` or ``[[top, bottom], [left, right]]``.
#: Explicit amounts of pixels at the edges: ``1``, ``[h, w]`` or ``[[top, bottom], [left, right]]``.
Amounts = Union[NonNegativeInt, PadPair, tuple[PadPair, PadPair]]
Padding = Union[Literal["same", "valid"], NonNegativeInt, PadPair, tuple[PadPair, PadPair]]
MAX_WIDTH = 1 << 20
Width = Annotated[int, Bounded(gt=0, le=MAX_WIDTH)]


def pair(value: int | tuple[int, ...]) -> tuple[int, int]:
    """``3`` -> ``(3, 3)``; ``(3, 1)`` stays."""
    if isinstance(value, int):
        return value, value
    return int(value[0]), int(value[1])


def padding_amounts(padding: Any) -> tuple[tuple[int, int], tuple[int, int]]:
    """Explicit zero padding as ``((top, bottom), (left, right))``."""
    if isinstance(padding, int):
        return (padding, padding), (padding, padding)
    if isinstance(padding[0], int):
        return (padding[0], padding[0]), (padding[1], padding[1])
    return (padding[0][0], padding[0][1]), (padding[1][0], padding[1][1])


def window_output(size: int, kernel: int, stride: int, padding: str, dilation: int = 1) -> int:
    """Output length of a sliding window, following Keras' ``same``/``valid`` rules."""
    if padding == "same":
        return math.ceil(size / stride)
    return (size - dilation * (kernel - 1) - 1) // stride + 1


def require_image(shape: Shape, site: Site) -> None:
    """An error at the block unless ``shape`` is ``(height, width, channels)``."""
    if len(shape) != 3:
        raise site.error(f"expects an image input (height, width, channels), got shape {list(shape)}")


def spatial_output(site: Site, shape: Shape, kernel: Any, stride: Any, padding: Any,
                   dilation: Any = 1) -> tuple[int, int]:
    """Height and width after a window op; an error at the block when one reaches zero."""
    require_image(shape, site)
    h, w = shape[0], shape[1]
    mode = padding
    if not isinstance(padding, str):
        (top, bottom), (left, right) = padding_amounts(padding)
        h, w, mode = h + top + bottom, w + left + right, "valid"
    (kh, kw), (sh, sw), (dh, dw) = pair(kernel), pair(stride), pair(dilation)
    out = (window_output(h, kh, sh, mode, dh), window_output(w, kw, sw, mode, dw))
    if min(out) <= 0:
        raise site.error(f"a {kh}x{kw} window on a {h}x{w} input gives an output of "
                         f"{out[0]}x{out[1]}: the spatial size shrinks to zero")
    return out


def window_field(field: Field, kernel: Any, stride: Any, dilation: Any = 1) -> Field:
    """Receptive field ``(size, jump)`` after a sliding window (the larger of height and width)."""
    if field is None:
        return None
    size, jump = field
    span = max(d * (k - 1) for k, d in zip(pair(kernel), pair(dilation)))
    return size + span * jump, jump * max(pair(stride))


def widest(*fields: Field) -> Field:
    """The larger receptive field of parallel paths (undefined if any path's is)."""
    if not fields or any(f is None for f in fields):
        return None
    return max(f[0] for f in fields if f), max(f[1] for f in fields if f)


def size_text(value: Any) -> str:
    """``3`` -> ``3×3``; ``(3, 1)`` -> ``3×1`` (for diagrams)."""
    h, w = pair(value)
    return f"{h}×{w}"


def stride_text(value: Any) -> str:
    """`` /2`` for a stride of 2, nothing for 1 (for diagrams)."""
    first = pair(value)[0]
    return f" /{first}" if first != 1 else ""
