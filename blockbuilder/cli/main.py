"""The ``blockbuilder`` command line: each command calls the public pipeline in order.

Arguments first, TensorFlow second: every command loads its architecture (TensorFlow-free) and runs its
``check`` (paths, outputs, formats) before Keras is imported, so a mistake is reported in a fraction of
a second. Only the commands that need a model import Keras at all, so ``--help`` and ``validate`` start
fast. Errors are mapped to exit codes here: a bad file or failed work exits 1, bad usage 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any, NamedTuple

from blockbuilder.cli import arguments, options, positive_int, weights
from blockbuilder.cli.console import console, import_keras_quietly
from blockbuilder.errors import BlockbuilderError, SpecError, UsageError, did_you_mean, shown
from blockbuilder.plugins import import_plugins

EXIT_OK, EXIT_BAD_FILE, EXIT_USAGE = 0, 1, 2
Handler = Callable[[argparse.Namespace], int]
Check = Callable[[argparse.Namespace], None]
NeedsKeras = bool | Callable[[argparse.Namespace], bool]


# -- commands ----------------------------------------------------------------------------------


def cmd_validate(args: argparse.Namespace) -> int:
    from blockbuilder.report.latency import predictions
    from blockbuilder.report.summary import estimate
    from blockbuilder.text import human
    from blockbuilder.training.api import check_data

    arch = args.architecture
    check_data(arch, written_only=True)
    params, macs = estimate(arch)
    latency = predictions(arch.root)
    if args.json:
        _out(json.dumps({"name": arch.name, "input_shape": list(arch.input_shape),
                         "output_shape": list(arch.output_shape), "depth": arch.depth, "params": params,
                         "macs": macs, "latency": latency}))
        return EXIT_OK
    predicted = "".join(f", predicted {p['ms']:.1f} ms ({p['for']})" for p in latency)
    _out(f"{arch.name}: ok (input {list(arch.input_shape)} -> output {list(arch.output_shape)}, "
         f"depth {arch.depth}, {params:,} params, {human(macs)} MACs{predicted})")
    if "search" in arch.document:
        from blockbuilder.search import describe_space

        _out(describe_space(arch, args.load_options.overrides, args.load_options.limits))
    return EXIT_OK


def cmd_resolve(args: argparse.Namespace) -> int:
    """The merged document, also when it does not validate: then the error follows it (exit 1)."""
    from blockbuilder.language.architecture import resolve_report

    text, error = resolve_report(args.arch, args.load_options.overrides, args.load_options.limits)
    _out(text.rstrip())
    if error is not None:
        sys.stderr.write(f"{error}\n")
        return EXIT_BAD_FILE
    return EXIT_OK


def cmd_summary(args: argparse.Namespace) -> int:
    from blockbuilder.cli import weights
    from blockbuilder.report.summary import render, summarize

    model, report = weights.build(args.architecture, show=False, shapes_only=True)
    summary = summarize(args.architecture, model)
    if args.json:
        loaded = {"weights": report.to_dict()} if report is not None else {}
        _out(json.dumps({**summary.to_dict(), **loaded}, indent=None if args.compact else 2))
        return EXIT_OK
    console().print(render(summary, args.depth))
    if report is not None:
        weights.print_report(report)
    return EXIT_OK


def check_build(args: argparse.Namespace) -> None:
    args.output = args.output or f"{args.architecture.name}.keras"
    arguments.suffix(args.output, (".keras",), ignore_case=False)  # Keras itself insists on ".keras"
    arguments.writable(args.output)
    weights.check(args)


def cmd_build(args: argparse.Namespace) -> int:
    from blockbuilder.files import atomic_path

    model, _ = weights.build(args.architecture)
    output = args.output
    with atomic_path(output) as temporary:
        model.save(temporary)
    _out(f"wrote {output} ({model.count_params():,} params)")
    return EXIT_OK


def cmd_zoo(args: argparse.Namespace) -> int:
    from blockbuilder.report.zoo import zoo_rows, zoo_table

    rows = zoo_rows()
    if args.json:
        _out(json.dumps(rows, indent=2))
    else:
        console().print(zoo_table(rows))
    return EXIT_OK


def cmd_schema(args: argparse.Namespace) -> int:
    from blockbuilder.language.schema import json_schema

    _out(json.dumps(json_schema(), indent=2))
    return EXIT_OK


# -- parser ------------------------------------------------------------------------------------

DOCS = ('README.md (the language, errors, budgets, what the summary counts, the zoo) and docs/*.md (training, '
        'export, transfer, visualise, search, zoo); "blockbuilder COMMAND --help" ends with the docs and examples '
        'of that command')


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Prose is wrapped, indented lines (the examples) are kept as written; real defaults are shown."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        fill = super()._fill_text
        return "\n".join(line if line.startswith(" ") or not line.strip() else fill(line, width, indent)
                         for line in text.splitlines())

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if not _has_default(action) or "(default" in (action.help or ""):
            return action.help  # no "(default: None)" noise; a help that names its default says it better
        return super()._get_help_string(action)


def _has_default(action: argparse.Action) -> bool:
    """Whether ``--help`` should show the default: not for None, flags, empty lists or strings."""
    default = action.default
    if default is None or default is argparse.SUPPRESS or isinstance(default, bool):
        return False
    return not (isinstance(default, str | list | tuple) and len(default) == 0)


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` that answers an unknown command with one line and a did-you-mean (exit 2)."""

    def _check_value(self, action: argparse.Action, value: Any) -> None:
        # where Python 3.14's suggest_on_error suggests too; argparse 3.11 prints the usage and no suggestion
        choices = action.choices
        if isinstance(action, argparse._SubParsersAction) and choices is not None and value not in choices:
            self.exit(EXIT_USAGE, f"{self.prog}: error: unknown command {shown(value)}"
                                  f"{did_you_mean(value, choices)}\n")
        super()._check_value(action, value)


class HelpEnd(NamedTuple):
    """What a command's ``--help`` ends with: the docs that cover it, then command lines to copy."""

    docs: str
    examples: tuple[str, ...]

    @classmethod
    def of(cls, module: Any) -> HelpEnd:
        """A command module's ``DOCS`` and ``EXAMPLES``."""
        return cls(getattr(module, "DOCS", ""), tuple(getattr(module, "EXAMPLES", ())))

    def epilog(self) -> str:
        """``docs: ...`` then the ``examples:`` block, indented (so the formatter keeps each line whole)."""
        parts = [f"docs: {self.docs}"] if self.docs else []
        if self.examples:
            parts.append("\n".join(["examples:", *(f"  {line}" for line in self.examples)]))
        return "\n\n".join(parts)


def _add_arch(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("arch", help="an architecture file, or the name of one in the zoo (e.g. resnet50)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="PATH=VALUE",
                        help="override a value, e.g. --set classes=100 --set train.epochs=5 (repeatable)")
    parser.add_argument("--limit", dest="limits", action="append", default=[], metavar="BUDGET=N",
                        help="raise (or lower) a model budget on purpose, e.g. --limit params=5e9 "
                             "(budgets: params, activation_bytes, blocks; README, *Budgets*)")


BUILT_IN = {  # the --help ends of the commands defined here; the others declare DOCS and EXAMPLES
    "validate": HelpEnd('README.md, "The language", "Errors" and "Budgets"', (
        "blockbuilder validate lenet5",
        "blockbuilder validate architectures/resnet50.yaml",
        "blockbuilder validate resnet20_cifar --set classes=100",
        "blockbuilder validate examples/search_lenet.yaml  # also the search space and its range",
    )),
    "resolve": HelpEnd('README.md, "Composition: extends and --set"', (
        "blockbuilder resolve resnet56_cifar  # extends resnet20_cifar.yaml: merged",
        "blockbuilder resolve architectures/resnet20_cifar.yaml --set classes=100",
    )),
    "summary": HelpEnd('README.md, "What the summary counts"; docs/transfer.md for --weights', (
        "blockbuilder summary resnet50",
        "blockbuilder summary resnet50 --depth 2               # fold the tree below level 2",
        "blockbuilder summary resnet50 --json --compact",
        "blockbuilder summary examples/finetune_resnet50.yaml  # the new head, which blocks are frozen",
    )),
    "build": HelpEnd('README.md, "Quick start"; docs/transfer.md for --weights', (
        "blockbuilder build resnet50 -o resnet50.keras",
        "blockbuilder build lenet5 --set classes=7 --weights runs/lenet5 -o lenet7.keras",
    )),
    "zoo": HelpEnd('docs/zoo.md; README.md, "The zoo"', (
        "blockbuilder zoo",
        "blockbuilder zoo --json",
    )),
    "schema": HelpEnd('README.md, "Every block type"', (
        "blockbuilder schema > blockbuilder.schema.json  # for an editor's YAML support",
    )),
}


def build_parser() -> argparse.ArgumentParser:
    """The ``blockbuilder`` parser: the built-in commands, then those of :func:`all_commands`.

    Every command's ``--help`` gets the same formatter (defaults shown) and ends with its docs and examples.
    """
    parser = Parser(
        prog="blockbuilder",
        description="Describe a CNN in YAML as modular blocks; validate, summarise, build, train and "
                    "export it with Keras 3.",
        epilog=f"docs: {DOCS}", formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name: str, help_text: str, handler: Handler, takes_arch: bool = True,
                check: Check | None = None, needs_keras: NeedsKeras = True, end: HelpEnd | None = None,
                overrides: options.OverridesHook | None = None) -> argparse.ArgumentParser:
        end = BUILT_IN[name] if end is None else end
        cmd = sub.add_parser(name, help=help_text, description=help_text, epilog=end.epilog(),
                             formatter_class=HelpFormatter)
        cmd.add_argument("--plugin", action="append", default=[], metavar="MODULE",
                         help="import a Python module (a name, or a .py file) that registers block types, "
                              "before anything is read (repeatable)")
        if takes_arch:
            _add_arch(cmd)
        cmd.add_argument("--debug", action="store_true", help="show tracebacks for errors")
        cmd.set_defaults(handler=handler, takes_arch=takes_arch, check=check, needs_keras=needs_keras,
                         command_overrides=overrides)
        return cmd

    validate = command("validate", "check an architecture file without building it (no TensorFlow)", cmd_validate,
                       check=weights.check, needs_keras=False)  # a 'weights:' file exists and is one
    validate.add_argument("--json", action="store_true",
                          help="print the figures as one JSON object (with the predicted latency)")
    resolve = command("resolve", "print the resolved document (extends merged, --set applied), even one that "
                      "does not validate", cmd_resolve, takes_arch=False, needs_keras=False)
    _add_arch(resolve)
    summary = command("summary", "print depth, parameters, MACs and the block hierarchy", cmd_summary,
                      check=weights.check)
    weights.add_argument(summary)
    summary.add_argument("--json", action="store_true", help="print one JSON object (schema in README)")
    summary.add_argument("--compact", action="store_true", help="with --json: on one line")
    summary.add_argument("--depth", type=positive_int, default=None, metavar="N",
                         help="fold the block tree below level N")
    build = command("build", "build the Keras model and save it as a .keras file", cmd_build, check=check_build)
    build.add_argument("-o", "--output", metavar="FILE.keras", help="where to save (default NAME.keras)")
    weights.add_argument(build)
    zoo = command("zoo", "list the architecture zoo with params, MACs, depth and reported accuracy",
                  cmd_zoo, takes_arch=False, needs_keras=False)
    zoo.add_argument("--json", action="store_true", help="print JSON")
    command("schema", "print a JSON Schema of the language (for editors)", cmd_schema, takes_arch=False,
            needs_keras=False)
    for module in all_commands():
        name = module.__name__.rpartition(".")[2].replace("_", "-")  # search_report -> search-report
        cmd = command(name, module.HELP, module.run, takes_arch=getattr(module, "TAKES_ARCH", True),
                      check=getattr(module, "check", None), needs_keras=getattr(module, "NEEDS_KERAS", True),
                      end=HelpEnd.of(module), overrides=getattr(module, "overrides", None))
        module.configure(cmd)
    return parser


def all_commands() -> list[ModuleType]:
    """The command modules of :mod:`blockbuilder.cli` (train, export ...), in the order ``--help`` lists them."""
    from blockbuilder.cli import (
        compare,
        draw,
        embed,
        evaluate,
        explore,
        export,
        features,
        predict,
        profile,
        report,
        search,
        search_report,
        train,
    )

    return [train, report, evaluate, export, predict, profile, draw, features, embed, explore, compare, search,
            search_report]


def _version() -> str:
    from blockbuilder.version import __version__

    return __version__


def _out(text: str) -> None:
    sys.stdout.write(text + "\n")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``blockbuilder`` script; returns the exit code.

    The steps, in this order: parse the command line, turn the options that change the architecture into
    overrides and limits (:mod:`blockbuilder.cli.options`, once) and load it with them (no TensorFlow), run
    the command's ``check`` (paths, outputs, formats; no TensorFlow), import Keras when the command needs
    it, and only then run the command.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        import_plugins(args.plugin)
        if hasattr(args, "overrides"):  # the commands with --set (an architecture, or maybe one: embed)
            args.load_options = options.from_args(args)
        if args.takes_arch:
            args.architecture = args.load_options.load(args.arch)
        if args.check is not None:
            args.check(args)
        needs_keras = args.needs_keras(args) if callable(args.needs_keras) else args.needs_keras
        if needs_keras and not args.debug:
            import_keras_quietly()
        return int(args.handler(args))
    except BlockbuilderError as exc:
        if args.debug:
            raise
        sys.stderr.write(_error_line(args.command, exc) + "\n")
        return EXIT_USAGE if isinstance(exc, UsageError) else EXIT_BAD_FILE
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return 130


def _error_line(command: str, error: BlockbuilderError) -> str:
    """``FILE:LINE:COL: PATH: message`` for a bad file, ``blockbuilder CMD: error: message`` otherwise."""
    if isinstance(error, SpecError):
        return str(error)
    return f"blockbuilder {command}: error: {error}"


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
