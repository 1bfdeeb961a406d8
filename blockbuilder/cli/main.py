"""The ``blockbuilder`` command line: each command calls the public pipeline in order.

TensorFlow and Keras are imported only by the commands that build a model, so ``--help`` and
``validate`` start fast.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from blockbuilder.cli import positive_int
from blockbuilder.errors import CommandError, SpecError, UsageError

EXIT_OK, EXIT_BAD_FILE, EXIT_USAGE = 0, 1, 2
FAST_COMMANDS = ("validate", "resolve", "zoo", "schema", "draw", "compare")


def import_keras_quietly() -> None:
    """Import Keras (and TensorFlow) with the C++ start-up chatter on stderr silenced."""
    if "keras" in sys.modules:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            import keras  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)


# -- commands ----------------------------------------------------------------------------------


def cmd_validate(args: argparse.Namespace) -> int:
    from blockbuilder.report.summary import estimate
    from blockbuilder.text import human

    arch = args.architecture
    params, macs = estimate(arch)
    _out(f"{arch.name}: ok (input {list(arch.input_shape)} -> output {list(arch.output_shape)}, "
         f"depth {arch.depth}, {params:,} params, {human(macs)} MACs)")
    return EXIT_OK


def cmd_resolve(args: argparse.Namespace) -> int:
    _out(args.architecture.to_yaml().rstrip())
    return EXIT_OK


def cmd_summary(args: argparse.Namespace) -> int:
    import blockbuilder
    from blockbuilder.report.summary import render

    summary = blockbuilder.summarize(args.architecture)
    if args.json:
        _out(json.dumps(summary.to_dict(), indent=None if args.compact else 2))
        return EXIT_OK
    _console().print(render(summary, args.depth))
    return EXIT_OK


def cmd_build(args: argparse.Namespace) -> int:
    import blockbuilder
    from blockbuilder.files import atomic_path

    model = blockbuilder.build(args.architecture)
    output = args.output or f"{args.architecture.name}.keras"
    if not output.endswith(".keras"):
        raise UsageError(f"--output must end in .keras, got '{output}'")
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
        _console().print(zoo_table(rows))
    return EXIT_OK


def cmd_schema(args: argparse.Namespace) -> int:
    from blockbuilder.language.schema import json_schema

    _out(json.dumps(json_schema(), indent=2))
    return EXIT_OK


# -- parser ------------------------------------------------------------------------------------


def _add_arch(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("arch", help="an architecture file, or the name of one in the zoo (e.g. resnet50)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="PATH=VALUE",
                        help="override a value, e.g. --set classes=100 --set train.epochs=5 (repeatable)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="blockbuilder",
        description="Describe a CNN in YAML as modular blocks; validate, summarise, build, train and "
                    "export it with Keras 3.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name: str, help_text: str, handler: Callable[[argparse.Namespace], int],
                takes_arch: bool = True) -> argparse.ArgumentParser:
        cmd = sub.add_parser(name, help=help_text, description=help_text)
        if takes_arch:
            _add_arch(cmd)
        cmd.add_argument("--debug", action="store_true", help="show tracebacks for errors")
        cmd.set_defaults(handler=handler, takes_arch=takes_arch)
        return cmd

    command("validate", "check an architecture file without building it (no TensorFlow)", cmd_validate)
    command("resolve", "print the resolved document (extends merged, --set applied)", cmd_resolve)
    summary = command("summary", "print depth, parameters, MACs and the block hierarchy", cmd_summary)
    summary.add_argument("--json", action="store_true", help="print one JSON object (schema in README)")
    summary.add_argument("--compact", action="store_true", help="with --json: on one line")
    summary.add_argument("--depth", type=positive_int, default=None, metavar="N",
                         help="fold the block tree below level N")
    build = command("build", "build the Keras model and save it as a .keras file", cmd_build)
    build.add_argument("-o", "--output", metavar="FILE.keras", help="where to save (default NAME.keras)")
    zoo = command("zoo", "list the architecture zoo with params, MACs, depth and reported accuracy",
                  cmd_zoo, takes_arch=False)
    zoo.add_argument("--json", action="store_true", help="print JSON")
    command("schema", "print a JSON Schema of the language (for editors)", cmd_schema, takes_arch=False)
    for module in _plugin_commands():
        name = module.__name__.rpartition(".")[2]
        cmd = command(name, module.HELP, module.run, takes_arch=getattr(module, "TAKES_ARCH", True))
        module.configure(cmd)
    return parser


def _plugin_commands() -> list[Any]:
    """Sub-commands that live in ``blockbuilder.cli.main`` (train, export, predict ...)."""
    from blockbuilder import cli as commands

    return commands.all_commands()


def _version() -> str:
    from blockbuilder import __version__

    return __version__


def _out(text: str) -> None:
    sys.stdout.write(text + "\n")


def _console() -> Any:
    from rich.console import Console

    return Console(width=None if sys.stdout.isatty() else 140)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``blockbuilder`` script; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command not in FAST_COMMANDS and not args.debug:
            import_keras_quietly()
        if args.takes_arch:
            import blockbuilder

            args.architecture = blockbuilder.load(args.arch, args.overrides)
        return args.handler(args)
    except SpecError as exc:
        if args.debug:
            raise
        sys.stderr.write(f"{exc}\n")
        return EXIT_BAD_FILE
    except UsageError as exc:
        if args.debug:
            raise
        sys.stderr.write(f"blockbuilder {args.command}: error: {exc}\n")
        return EXIT_USAGE
    except CommandError as exc:
        if args.debug:
            raise
        sys.stderr.write(f"blockbuilder {args.command}: error: {exc}\n")
        return EXIT_BAD_FILE
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
