"""``blockbuilder search FILE --trials N --output DIR``: train the trials of the file's ``search:`` section.

Everything a user can get wrong is checked in :func:`check`, before TensorFlow is imported and before any
trial trains: the ``search:`` section, the family (some member loads and fits the budget), the search
directory and the storage (reachable, holding no other search under this name).
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from blockbuilder.cli import positive_int

HELP = "search the family of the file's search: section with Optuna: trials, Pareto front, best.yaml"
NEEDS_KERAS = True
DOCS = "docs/search.md"
EXAMPLES = (
    "blockbuilder search examples/search_lenet.yaml --trials 6 --output searches/lenet   # about a minute",
    "blockbuilder search examples/search_lenet.yaml --trials 12 --output searches/lenet  # 6 more, same study",
    "blockbuilder search examples/search_lenet.yaml --trials 6 --max-params 50K --output searches/small",
)
_QUANTITY = re.compile(r"(\d+(?:\.\d+)?)\s*([kKmMgG]?)")


def quantity(text: str) -> int:
    """An ``argparse`` type: a positive count, with an optional K, M or G (``2M`` is 2,000,000)."""
    match = _QUANTITY.fullmatch(text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"expected a count like 50000, 50K or 2.5M, got '{text}'")
    value = float(match.group(1)) * {"": 1, "k": 1e3, "m": 1e6, "g": 1e9}[match.group(2).lower()]
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive count, got '{text}'")
    return int(value)


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the search flags (``FILE``, ``--set`` and ``--debug`` come from the CLI)."""
    parser.add_argument("--trials", type=positive_int, metavar="N",
                        help="finished trials to reach, all workers together (default: search.trials)")
    parser.add_argument("--output", "-o", metavar="DIR",
                        help="the search directory: storage, trial run directories, reports "
                             "(default searches/NAME); run again to continue the search")
    parser.add_argument("--epochs", type=positive_int, metavar="E",
                        help="epochs per trial (default: search.epochs, else train.epochs)")
    parser.add_argument("--storage", metavar="URL",
                        help="an Optuna storage shared by workers: postgresql://..., mysql://..., "
                             "sqlite:///FILE or journal:FILE (default: DIR/study.db)")
    parser.add_argument("--max-params", type=quantity, metavar="P",
                        help="prune trials with more parameters, before building them (e.g. 50K)")
    parser.add_argument("--max-macs", type=quantity, metavar="M",
                        help="prune trials with more multiply-accumulates, before building them (e.g. 2M)")


def check(args: argparse.Namespace) -> None:
    """Check the section, the family, the budget, the directory and the storage; open the study."""
    from blockbuilder.errors import SpecError, UsageError
    from blockbuilder.search.directory import default_output
    from blockbuilder.search.family import check_capacity, check_family, explore_family
    from blockbuilder.search.console import Progress
    from blockbuilder.search.section import parse_space
    from blockbuilder.search.study import Search, SearchOptions
    from blockbuilder.search.trainer import train_with_blockbuilder

    arch = args.architecture
    if "search" not in arch.document:
        raise SpecError("no 'search:' section: it says which values vary (see docs/search.md)",
                        arch.document.loc, "search")
    output = Path(args.output) if args.output else default_output(arch.name)
    space = parse_space(arch.document)
    trials = args.trials or space.trials
    if trials is None:
        raise UsageError("how many trials? give --trials N (or 'trials: N' in the search section)")
    budget = space.budget.with_limits(max_params=args.max_params, max_macs=args.max_macs)
    flags = [key for key in ("max_params", "max_macs") if getattr(args, key) is not None]
    loaded = args.load_options  # each trial is loaded as the architecture was: --set, --limit
    family = explore_family(arch.source, loaded.overrides, space, limits=loaded.limits)
    check_family(family, space, budget, flags)
    check_capacity(family, space, budget, trials)
    options = SearchOptions(trials=trials, output=output, epochs=args.epochs, storage=args.storage,
                            overrides=loaded.overrides, limits=loaded.limits)
    search = Search(arch.source, arch, space, budget, options, train_with_blockbuilder, progress=None)
    search.open()
    search.progress = Progress(search.record)
    args.search = search


def run(args: argparse.Namespace) -> int:
    """Run this worker until the study has its trials; print the table; 0 on success."""
    if not hasattr(args, "search"):
        check(args)
    args.search.run()
    return 0
