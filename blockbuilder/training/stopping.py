"""When a run stops early: a non-finite loss (at once), or a metric that stopped improving."""

from __future__ import annotations

import math
from typing import Any, Optional

import keras

from blockbuilder.training.checkpoint import test_hook

__all__ = ["NanGuard", "improved"]


class NanGuard(keras.callbacks.Callback):  # type: ignore[misc]
    """Stops ``fit`` at the first non-finite loss."""

    def __init__(self) -> None:
        super().__init__()
        self.bad_step: Optional[int] = None
        self.epoch = 0

    def on_train_batch_end(self, batch: int, logs: Optional[dict[str, Any]] = None) -> None:
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.bad_step = batch
            self.model.stop_training = True
        if batch == 1:  # tests: a kill inside an epoch
            test_hook("batch", self.epoch + 1)


def improved(value: Optional[float], best: Optional[float], larger_is_better: bool, delta: float = 0.0,
             ties: bool = False) -> bool:
    """Whether ``value`` beats ``best`` by more than ``delta`` (a tie counts when ``ties``)."""
    if value is None or not math.isfinite(value):
        return False
    if best is None:
        return True
    if ties and value == best:
        return True
    return value > best + delta if larger_is_better else value < best - delta
