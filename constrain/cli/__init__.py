"""The ``constrain`` command line: each command is a thin layer over a public function.

Each command module exposes ``register(subparsers)``; adding a command means adding a module
to ``COMMAND_MODULES``.

May import every package of the library (it is the top layer); nothing imports it but ``__main__``.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import Sequence

from ..errors import ConstrainError
from ._output import Output

COMMAND_MODULES = (
    "constrain.cli._grammar_cmds",
    "constrain.cli._serve_cmds",
    "constrain.cli._authoring_cmds",
    "constrain.cli._sql_cmds",
    "constrain.cli._generate_cmds",
    "constrain.cli._json_cmds",
    "constrain.cli._batch_cmds",
    "constrain.cli._playground_cmds",
)


def _current_directory_first() -> None:
    """The installed ``constrain`` script sees the current directory's modules as ``python -m constrain`` does
    (``sys.path[0]``), so ``--model-class myapp.models:Service`` finds the user's own module."""
    here = os.getcwd()
    if "" not in sys.path and here not in sys.path:
        sys.path.insert(0, here)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="constrain",
        description="Grammar-constrained structured output: check grammars, validate outputs, generate.",
    )
    from .. import __version__

    parser.add_argument("--version", action="version", version=f"constrain {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    if argv is None:
        _current_directory_first()
    parser = build_parser()
    args = parser.parse_args(argv)
    out = Output(json_mode=getattr(args, "json", False))
    try:
        code = args.handler(args, out)
    except ConstrainError as exc:
        out.fail(exc)
        return 2
    except KeyboardInterrupt:
        out.error("interrupted")
        return 130
    except BrokenPipeError:
        return 1
    return int(code or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
