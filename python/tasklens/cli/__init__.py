"""The ``tasklens`` command.

Each module in this package that defines ``register(subparsers)`` adds one subcommand; the subcommand's
handler is stored as ``func`` in its parser defaults and returns an exit code. :func:`main` turns every error
into one line on stderr: exit code 1 for bad input or a failure while running, 2 for a usage error.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pickle
import pkgutil
import sys

from ._args import Parser, UsageError, int_type
from ._io import INPUT_HELP, one_line

MAX_THREADS = 1024


def build_parser() -> argparse.ArgumentParser:
    from tasklens import __version__

    parser = Parser(
        prog="tasklens",
        description="Measure and map relationships between machine-learning tasks and datasets.",
        epilog=INPUT_HELP,
    )
    parser.add_argument("--version", action="version", version=f"tasklens {__version__}")
    parser.add_argument("--threads", type=int_type(min=1, max=MAX_THREADS), default=None, metavar="N",
                        help=f"threads for the CPU kernels, 1 to {MAX_THREADS} (default: the environment "
                             "variable TASKLENS_NUM_THREADS, else all cores)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for mod in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if mod.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{mod.name}")
        if hasattr(module, "register"):
            module.register(sub)
    return parser


def _command(args) -> str:
    parts = [args.command] + [v for k, v in vars(args).items() if k.endswith("_command") and v]
    return " ".join(parts)


def _fail(what: str, message: str, code: int) -> int:
    print(f"tasklens {what}: error: {message}", file=sys.stderr)
    return code


def main(argv: list[str] | None = None) -> int:
    """Run the ``tasklens`` command line; returns the exit code (0 success, 1 error, 2 usage error).

    Like every argparse program, ``--help``, ``--version`` and a malformed command line raise ``SystemExit``
    (code 0, 0 and 2) after printing.
    """
    parser = build_parser()
    args = parser.parse_args(argv)  # --help, --version and usage errors exit here (SystemExit 0 or 2)
    if args.command is None:
        parser.print_help()
        return 2
    what = _command(args)
    try:
        if args.threads is not None:
            from tasklens import set_num_threads

            set_num_threads(args.threads)
        return int(args.func(args) or 0)
    except UsageError as exc:
        return _fail(what, one_line(exc), 2)
    except (ValueError, TypeError, KeyError, IndexError, OSError, EOFError, pickle.UnpicklingError) as exc:
        if os.environ.get("TASKLENS_DEBUG"):
            raise
        return _fail(what, one_line(exc), 1)
    except KeyboardInterrupt:
        return _fail(what, "interrupted", 130)
    except Exception as exc:  # a bug, not bad input: still one line; TASKLENS_DEBUG=1 shows the traceback
        if os.environ.get("TASKLENS_DEBUG"):
            raise
        return _fail(what, f"unexpected {type(exc).__name__}: {one_line(exc)} (set TASKLENS_DEBUG=1 for the "
                           "traceback)", 1)
