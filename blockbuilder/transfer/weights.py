"""Load weights into a model by the block hierarchy, and say what was loaded and what was skipped.

Sources (``weights:`` in a file, ``--weights`` on the command line):

* ``imagenet`` -- keras.applications' file for the zoo network (:mod:`blockbuilder.transfer.imagenet`);
* a ``.keras`` file, or a run directory (its best model, ``model.keras``);
* a ``.weights.h5`` file (``model.save_weights``);
* a legacy Keras ``.h5`` file, such as keras.applications' official files.

A blockbuilder layer is named by its place in the hierarchy (``stage3.bottleneck2.conv1``), so a layer
takes the weights stored under its own name: weights move between architectures that share blocks,
and a layer whose name is missing from the file, or whose weights have other shapes, is skipped and
reported. keras.applications' legacy files name their layers their own way (``conv4_block2_1_conv``);
as Keras itself does with such files, their layers are matched in order (the zoo builds
keras.applications' layers in keras.applications' order), up to the first layer whose shapes differ.

Files are read with h5py, without building the model that wrote them (:mod:`~blockbuilder.transfer.weights_file`).
"""

from __future__ import annotations

import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from blockbuilder.errors import Location, SpecError
from blockbuilder.files import check_zip_entries, regular_file
from blockbuilder.language.document import Map
from blockbuilder.serving.source import first_line
from blockbuilder.text import listed, plural
from blockbuilder.transfer.settings import Weights
from blockbuilder.transfer.weights_file import (KERAS_WEIGHTS, StoredLayer, StoredWeights, WeightsError, file_layout,
                                                read_weights_file)

if TYPE_CHECKING:  # pragma: no cover
    from blockbuilder.language.architecture import Architecture

__all__ = ["LayerResult", "LoadReport", "StoredLayer", "StoredWeights", "WeightsError", "check_source",
           "load_weights",
           "locate", "match", "read_weights_file"]

RUN_MODEL = "model.keras"
SUFFIXES = (".keras", ".weights.h5", ".h5", ".hdf5")


@dataclass(frozen=True)
class LayerResult:
    """What happened to one layer of the model: loaded, or skipped and why."""

    layer: str
    loaded: bool
    why: str = ""
    stored_as: str = ""


@dataclass
class LoadReport:
    """What a weights source gave a model, layer by layer.

    Attributes:
        source: The source as written (``imagenet``, a path).
        path: The file read.
        results: One entry per model layer with weights, in model order.
        unused: Layers of the file that no model layer took.
        by_order: Layers were matched in order (a keras.applications file), not by name.
    """

    source: str
    path: Path
    results: list[LayerResult]
    unused: list[str] = field(default_factory=list)
    by_order: bool = False

    @property
    def loaded(self) -> int:
        return sum(result.loaded for result in self.results)

    @property
    def skipped(self) -> list[LayerResult]:
        return [result for result in self.results if not result.loaded]

    def rows(self) -> list[tuple[str, int, int, str]]:
        """Per top-level block: ``(block, layers loaded, layers skipped, why the first skip)``."""
        table: dict[str, list[LayerResult]] = {}
        for result in self.results:
            table.setdefault(result.layer.split(".", 1)[0], []).append(result)
        rows = []
        for block, results in table.items():
            skipped = [r for r in results if not r.loaded]
            why = f"{skipped[0].layer}: {skipped[0].why}" if skipped else ""
            if len(skipped) > 1:
                why += f" (+{len(skipped) - 1} more)"
            rows.append((block, len(results) - len(skipped), len(skipped), why))
        return rows

    def headline(self) -> str:
        """One line: where from, how many layers loaded and skipped, which of the file's went unused."""
        matched = " (matched in order)" if self.by_order else ""
        layers = plural(len(self.results), "layer")
        text = f"weights {self.source}: {self.loaded} of {layers} loaded from {self.path}{matched}"
        if self.skipped:
            text += f", {len(self.skipped)} skipped"
        if self.unused:
            text += f"; {plural(len(self.unused), 'layer')} of the file unused: {listed(self.unused)}"
        return text

    def render(self) -> Any:
        """A rich table of :meth:`rows` (print :meth:`headline` above it)."""
        from rich.table import Table

        table = Table()
        for column in ("block", "loaded", "skipped", "why"):
            table.add_column(column, justify="right" if column in ("loaded", "skipped") else "left", overflow="fold")
        for block, loaded, skipped, why in self.rows():
            table.add_row(block, str(loaded), str(skipped), why)
        return table

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "file": str(self.path), "by_order": self.by_order,
                "layers": len(self.results), "loaded": self.loaded,
                "skipped": [{"layer": r.layer, "why": r.why} for r in self.skipped], "unused": list(self.unused)}


# -- where the file is --------------------------------------------------------------------------


def locate(weights: Weights, architecture: Architecture | None = None, *, download: bool = True) -> Path:
    """The file a source names: keras.applications' ImageNet file, a weights file, a run's best model.

    With ``download=False`` (the check before TensorFlow), ``imagenet`` only checks that the network
    has ImageNet weights and returns the cache path the file would have.

    Raises:
        WeightsError: the source does not exist, is of no known kind, or is a folder without a run.
    """
    if weights.imagenet:
        from blockbuilder.transfer import imagenet

        if architecture is None:
            raise WeightsError("weights imagenet: needs an architecture (a zoo network, or one that extends it)")
        if not download:
            return imagenet.cache_dir() / imagenet.candidates(architecture)[0][0]
        return imagenet.fetch(architecture)
    path = Path(weights.source)
    shown = weights.written if weights.written == weights.source else f"{weights.written} ({path})"
    try:
        found, folder = path.exists(), path.is_dir()
    except OSError as exc:  # a name longer than the file system allows
        raise WeightsError(f"weights {shown}: {(exc.strerror or str(exc)).lower()}") from None
    if not found:
        raise WeightsError(f"weights {shown}: no such file or directory")
    if folder:
        if not (path / RUN_MODEL).is_file():
            raise WeightsError(f"weights {shown}: a folder that holds no run ({RUN_MODEL} is not in it)")
        return path / RUN_MODEL
    if not path.name.endswith(SUFFIXES):
        raise WeightsError(f"weights {shown}: not a weights source (expected imagenet, a .keras, .weights.h5 or "
                           f".h5 file, or a run directory)")
    return regular_file(path, WeightsError, f"weights {shown}")


def check_source(architecture: Architecture) -> None:
    """Everything about ``architecture.weights`` that can be checked without TensorFlow: the source exists,
    is a regular file of a known kind (or a run directory), and opens as the zip or HDF5 file its name says.

    Raises:
        SpecError: it is not, at the ``weights:`` line when the architecture file wrote it.
        WeightsError: it is not, for a source given on the command line (``--weights``).
    """
    weights = architecture.weights
    if weights is None:
        return
    if weights.imagenet:
        locate(weights, architecture, download=False)
        return
    try:
        _check_file(weights, locate(weights, architecture, download=False))
    except WeightsError as exc:
        where = _written_at(architecture)
        if where is None:
            raise
        raise SpecError(str(exc), where) from None


def _check_file(weights: Weights, path: Path) -> None:
    """The file opens as what its name says: a Keras archive with weights in it, or an HDF5 file."""
    import h5py

    if path.suffix == ".keras":
        if not zipfile.is_zipfile(path):
            raise WeightsError(f"weights {weights.written}: {path} is not a .keras (zip) archive (damaged, or not a "
                               "weights file)")
        with zipfile.ZipFile(path) as archive:
            if KERAS_WEIGHTS not in archive.namelist():
                raise WeightsError(f"weights {weights.written}: {path} is a zip archive without {KERAS_WEIGHTS} "
                                   "(not a Keras model)")
            check_zip_entries(archive, f"weights {weights.written}: {path}", WeightsError)
        return
    if not h5py.is_hdf5(path):
        raise WeightsError(f"weights {weights.written}: {path} is not an HDF5 file (damaged, or not a weights file)")
    try:
        with h5py.File(path, "r") as f:
            layout = file_layout(f)
    except OSError as exc:  # a truncated file has a valid signature
        raise WeightsError(f"weights {weights.written}: {path} is a damaged HDF5 file ({first_line(exc)})") from None
    if layout is None:
        raise WeightsError(f"weights {weights.written}: {path} is an HDF5 file without Keras weights in it")


def _written_at(architecture: Architecture) -> Location | None:
    """Where the architecture file wrote ``weights:`` (``None`` when it came from ``--weights`` or ``--set``)."""
    document: Any = getattr(architecture, "document", None)
    if not isinstance(document, Map) or "weights" not in document:
        return None
    value = document["weights"]
    where = value.loc_of("source") if isinstance(value, Map) and "source" in value else document.loc_of("weights")
    return where if where is not None and where.line else None


# -- matching -------------------------------------------------------------------------------------


def _shapes(values: Sequence[Any]) -> list[tuple[int, ...]]:
    return [tuple(int(d) for d in v.shape) for v in values]


def match(targets: Sequence[tuple[str, Sequence[Any]]], stored: StoredWeights
          ) -> tuple[list[LayerResult], list[tuple[Sequence[Any], StoredLayer]], list[str]]:
    """Pair the model's layers with the file's.

    Args:
        targets: ``(layer name, variables)`` of the model's layers with weights, in model order.
        stored: The file's layers.

    Returns:
        One result per target, the pairs to assign, and the names of the file's layers left unused.
    """
    results: list[LayerResult] = []
    pairs: list[tuple[Sequence[Any], StoredLayer]] = []
    if stored.by_order:
        broken = ""
        for index, (name, variables) in enumerate(targets):
            if broken:
                results.append(LayerResult(name, False, f"not matched: the file is matched in order, which broke at "
                                                        f"{broken}"))
                continue
            if index >= len(stored.layers):
                results.append(LayerResult(name, False, "not in the file"))
                continue
            layer = stored.layers[index]
            if _shapes(variables) != _shapes(layer.values):
                broken = name
                results.append(LayerResult(name, False, f"shape differs (file {layer.name} {_shapes(layer.values)}, "
                                                        f"model {_shapes(variables)})", layer.name))
                continue
            results.append(LayerResult(name, True, stored_as=layer.name))
            pairs.append((variables, layer))
        used = {layer.name for _, layer in pairs}
        return results, pairs, [layer.name for layer in stored.layers if layer.name not in used]
    by_name = {layer.name: layer for layer in stored.layers}
    for name, variables in targets:
        found = by_name.get(name)
        if found is None:
            results.append(LayerResult(name, False, "not in the file"))
        elif _shapes(variables) != _shapes(found.values):
            results.append(LayerResult(name, False, f"shape differs (file {_shapes(found.values)}, "
                                                    f"model {_shapes(variables)})", name))
        else:
            results.append(LayerResult(name, True, stored_as=name))
            pairs.append((variables, found))
    names = {name for name, _ in targets}
    return results, pairs, [layer.name for layer in stored.layers if layer.name not in names]


def _variances_from_stddevs(stored: StoredWeights) -> StoredWeights:
    """The file's ``Normalization`` layers (mean, variance, count) with their "variance", a standard deviation
    there, squared: ``(x - mean) / sqrt(s) / sqrt(s)``, what keras.applications computes, is ``(x - mean) / s``."""
    def fixed(layer: StoredLayer) -> StoredLayer:
        if len(layer.values) != 3 or layer.values[2].ndim or layer.values[0].shape != layer.values[1].shape:
            return layer
        mean, deviation, count = layer.values
        return StoredLayer(layer.name, (mean, np.square(deviation.astype(np.float64)).astype(deviation.dtype), count))

    return StoredWeights(stored.path, tuple(fixed(layer) for layer in stored.layers), stored.by_order)


def load_weights(model: Any, weights: Weights, architecture: Architecture | None = None) -> LoadReport:
    """Load ``weights`` into ``model``, layer by layer, by the block hierarchy.

    Raises:
        WeightsError: the source cannot be used; no layer of the model is in it; or, with ``strict``,
            a layer was skipped (the first one is named).
    """
    path = locate(weights, architecture)
    targets = [(layer.name, list(layer.weights)) for layer in model.layers if layer.weights]
    stored = read_weights_file(path, [name for name, _ in targets])
    if weights.imagenet and architecture is not None:
        from blockbuilder.transfer import imagenet

        if imagenet.IMAGENET_FILES[imagenet.network_of(architecture)].stddev_as_variance:
            stored = _variances_from_stddevs(stored)
    results, pairs, unused = match(targets, stored)
    report = LoadReport(weights.written, path, results, unused, stored.by_order)
    if not pairs:
        first = results[0] if results else None
        detail = f"; first: {first.layer}: {first.why}" if first is not None else ""
        raise WeightsError(f"weights {weights.written}: no layer of {model.name} fits {path} (the file of another "
                           f"architecture?){detail}")
    if weights.strict and report.skipped:
        first = report.skipped[0]
        raise WeightsError(f"weights {weights.written} (strict): {first.layer} was not loaded: {first.why} "
                           f"({len(report.skipped)} of {plural(len(results), 'layer')} skipped)")
    for variables, layer in pairs:
        for variable, value in zip(variables, layer.values):
            variable.assign(np.asarray(value, dtype=variable.dtype))
    return report
