"""Data sources: the registry (:mod:`.registry`) and one module per kind, each registering itself.

What a source holds (class names, image files or arrays per split) is read here without TensorFlow
or Keras; :mod:`.splits` makes a run's train, validation and test parts of it, and the input
pipeline (:mod:`blockbuilder.training.pipeline`) turns those into batches. Adding a kind is adding
its module here and one import line below (docs/contributing.md, *Adding a data source*).
"""

# Built-in kinds (each module registers its kind on import), in the order messages list them.
from blockbuilder.training.sources import digits as _digits  # noqa: E402,F401,I001
from blockbuilder.training.sources import tfds as _tfds  # noqa: E402,F401
from blockbuilder.training.sources import folder as _folder  # noqa: E402,F401
from blockbuilder.training.sources import npz as _npz  # noqa: E402,F401
from blockbuilder.training.sources import csv as _csv  # noqa: E402,F401
from blockbuilder.training.sources.folder import check_folder, folder_layout
from blockbuilder.training.sources.npz import check_npz_labels
from blockbuilder.training.sources.registry import (
    IMAGE_EXTENSIONS,
    Kind,
    Part,
    Source,
    class_names_of,
    dataset_kind,
    error,
    forms,
    get_kind,
    images_array,
    kinds,
    locate,
    parse,
    read_source,
    register_kind,
)
from blockbuilder.training.sources.splits import check_model_fits, complete, role_part, source_parts, split_parts

__all__ = [
    "IMAGE_EXTENSIONS", "Kind", "Part", "Source", "check_folder", "check_model_fits", "check_npz_labels",
    "class_names_of", "complete", "dataset_kind", "error", "folder_layout", "forms", "get_kind", "images_array",
    "kinds", "locate", "parse", "read_source", "register_kind", "role_part", "source_parts", "split_parts",
]
