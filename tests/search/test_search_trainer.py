"""A search trains its trials in one precision: the one ``precision: auto`` chose for its first trial.

Trials are compared with each other, so they train alike; and on a CPU with bfloat16 instructions the
precision probe (seconds per network) runs once per worker, not once per trial.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import blockbuilder
from blockbuilder.search import trainer
from blockbuilder.training import api
from blockbuilder.training.plan import Run

NET = """\
name: tiny
input: [8, 8, 1]
classes: 10
network:
  - flatten
  - dense: {units: 10, activation: softmax}
train: {epochs: 1%s}
"""


def test_later_trials_train_in_the_precision_auto_chose_for_the_first(tmp_path: Path, write,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Any] = []

    def fake_train(architecture: Any, *, overrides: Any = None, **_: Any) -> Run:
        calls.append(overrides)
        chosen = (overrides or {}).get("train.precision", "mixed_bfloat16")  # what the probe chose
        return Run(tmp_path, None, {"precision": chosen}, [])

    monkeypatch.setattr(api, "train", fake_train)
    auto, fixed = blockbuilder.load(write(NET % "", "auto.yaml")), blockbuilder.load(write(NET % ", precision: float32",
                                                                                         "fixed.yaml"))
    for search, arch in (("one", auto), ("one", auto), ("one", auto), ("two", auto), ("three", fixed), ("three", fixed)):
        trainer.train_with_blockbuilder(arch, tmp_path / search / ".partial" / f"trial-{len(calls):04d}", 1,
                                        lambda epoch, logs: False)
    assert calls == [None, {"train.precision": "mixed_bfloat16"}, {"train.precision": "mixed_bfloat16"},
                     None,  # another search decides for itself
                     None, None]  # a precision the file names is its own
