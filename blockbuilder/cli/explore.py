"""``blockbuilder explore``: a local web page to draw a digit and watch every layer respond."""

from __future__ import annotations

import argparse

HELP = "serve a local page: draw or upload an image, see the prediction and every layer's activations"
TAKES_ARCH = False  # takes a trained run, not an architecture file


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the explore arguments (imports nothing heavy)."""
    parser.add_argument("model", metavar="RUN_DIR_OR_MODEL", help="a run directory or a .keras file")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to bind (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 picks a free one)")


def run(args: argparse.Namespace) -> int:
    """Serve until interrupted."""
    from blockbuilder.errors import CommandError
    from blockbuilder.serving.explore import serve

    try:
        serve(args.model, host=args.host, port=args.port)
    except OSError as exc:  # the port is taken, say
        raise CommandError(f"cannot serve on {args.host}:{args.port}: {exc.strerror or exc}") from None
    return 0
