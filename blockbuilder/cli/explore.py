"""``blockbuilder explore``: a local web page to draw a digit and watch every layer respond."""

from __future__ import annotations

import argparse

HELP = "serve a local page: draw or upload an image, see the prediction and every layer's activations"
TAKES_ARCH = False  # takes a trained run, not an architecture file
NEEDS_KERAS = False  # run() binds the port first, then imports Keras
DOCS = 'docs/visualise.md, "explore"'
EXAMPLES = (
    "blockbuilder explore runs/lenet5                       # on 127.0.0.1:8000, this machine only",
    "blockbuilder explore runs/lenet5/model.keras --port 0  # a free port, printed at start",
)


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got '{text}'") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port number from 0 to 65535, got {text}")
    return port


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the explore arguments (imports nothing heavy)."""
    parser.add_argument("model", metavar="RUN_DIR_OR_MODEL", help="a run directory or a .keras file")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to bind (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=_port, default=8000, help="port (default 8000; 0 picks a free one)")


def check(args: argparse.Namespace) -> None:
    """The model's files, before the port is bound and TensorFlow imported."""
    from blockbuilder.serving.source import inspect_source

    inspect_source(args.model)


def run(args: argparse.Namespace) -> int:
    """Bind the port (a port in use is reported at once), load the model, serve until interrupted."""
    from blockbuilder.cli.console import import_keras_quietly
    from blockbuilder.errors import CommandError
    from blockbuilder.serving.explore import attach, bind, run_until_interrupted

    try:
        server = bind(args.host, args.port)
    except (OSError, OverflowError) as exc:  # the port is taken, the address is not this machine's ...
        raise CommandError(f"cannot serve on {args.host}:{args.port}: {getattr(exc, 'strerror', None) or exc}") \
            from None
    try:
        if not args.debug:
            import_keras_quietly()
        attach(server, args.model)
    except BaseException:
        server.server_close()
        raise
    run_until_interrupted(server)
    return 0
