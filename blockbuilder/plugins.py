"""Blocks written in Python, from the command line and from installed packages.

Only Python code the user names registers blocks; a YAML file can only use them. Two ways to name it:

- ``--plugin MODULE`` on any command: a module name (``my_blocks``, found from the current folder
  first) or a ``.py`` file (``--plugin blocks/se.py``), imported before the file is read;
- an installed package declaring ``[project.entry-points."blockbuilder.blocks"]`` (``name =
  "package.module"``): imported the first time a block type is looked up.

A plugin that cannot be found, or fails while it is imported, is one line naming it (exit 2).

Nothing in an architecture file reaches this module: only the command line's ``--plugin`` (in
:mod:`blockbuilder.cli.main`) and installed entry points import code; a ``plugin:`` key in a file is an
unknown key like any other (``tests/blocks/test_plugins.py``).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import traceback
from collections.abc import Iterable
from pathlib import Path

from blockbuilder.errors import UsageError, shown

__all__ = ["ENTRY_POINTS", "import_plugin", "import_plugins", "load_entry_points"]

#: The entry-point group of installed packages that register block types.
ENTRY_POINTS = "blockbuilder.blocks"
_LOADED: list[bool] = []


def import_plugin(name: str) -> None:
    """Import ``name`` (a module name or a ``.py`` file) so that the blocks it registers exist."""
    path = Path(name)
    try:
        if path.suffix == ".py":
            if not path.is_file():
                raise UsageError(f"--plugin {shown(name)}: no such file")
            module_name = f"blockbuilder_plugin_{path.stem}"
            spec = importlib.util.spec_from_file_location(module_name, path)
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            sys.modules[module_name] = module
            spec.loader.exec_module(module)
            return
        if "" not in sys.path and str(Path.cwd()) not in sys.path:
            sys.path.insert(0, str(Path.cwd()))  # like ``python -m``: the current folder's modules first
        importlib.import_module(name)
    except UsageError:
        raise
    except ModuleNotFoundError as exc:
        if exc.name is not None and (name == exc.name or name.startswith(f"{exc.name}.")):
            raise UsageError(f"--plugin {shown(name)}: no module named {shown(exc.name)} (a module name "
                             "found from the current folder or sys.path, or a .py file)") from None
        raise UsageError(_failed(name, exc)) from None
    except Exception as exc:  # the plugin's own code failed: one line, where
        raise UsageError(_failed(name, exc)) from None


def _failed(name: str, exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" ({frames[-1].filename}:{frames[-1].lineno})" if frames else ""
    return f"--plugin {shown(name)} failed while importing: {type(exc).__name__}: {exc}{where}"


def import_plugins(names: Iterable[str]) -> None:
    """Import every ``--plugin``, in order."""
    for name in names:
        import_plugin(name)


def load_entry_points() -> None:
    """Import the modules installed packages declare in :data:`ENTRY_POINTS`, once."""
    if _LOADED:
        return
    _LOADED.append(True)
    from importlib.metadata import entry_points

    for point in entry_points(group=ENTRY_POINTS):
        point.load()
